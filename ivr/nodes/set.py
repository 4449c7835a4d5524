"""``set``: give variables values (``${other}`` is expanded).

mark-topic:
  kind: set
  values: {topic: "регистрация и вход"}
  next: operator
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import FieldError, Fields, scalar_text
from ivr.menu.model import Call, Location, Next


@dataclass(frozen=True)
class SetNode:
    kind: ClassVar[str] = "set"
    id: str
    at: Location
    values: Mapping[str, str]
    next: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    def run(self, call: Call) -> Next:
        variables = call.variables
        for name, value in self.values.items():
            variables[name] = text = call.expand(value)
            call.note("set", f"{name}={text}")
        return self.next[0]


def parse(node_id: str, fields: Fields) -> SetNode:
    values: dict[str, str] = {}
    for key, value in fields.mapping("values"):
        text = scalar_text(value)
        if text is None:
            raise FieldError(fields.loc(value), f"node '{node_id}': values: expected text")
        values[str(key.value)] = text
    if not values:
        raise fields.error("values", "needs at least one variable")
    return SetNode(id=node_id, at=fields.at, values=values, next=fields.target("next"))
