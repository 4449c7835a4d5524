"""``set``: give variables values (``${other}`` is expanded).

mark-topic:
  kind: set
  values: {topic: "регистрация и вход"}
  next: operator
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.menu.fields import FieldError, Fields, scalar_text
from ivr.menu.model import Call, Location, Next, Step


@dataclass(frozen=True)
class SetNode:
    kind: ClassVar[str] = "set"
    id: str
    at: Location
    values: Mapping[str, str]
    next: tuple[str, Location]
    # Each value as the node writes it, worked out when the menu is loaded: (name, value,
    # the path's step) for a value written out in full, (name, template, None) for one with
    # ``${...}`` in it, expanded and noted as each call runs the node.
    _writes: tuple[tuple[str, str, Step | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        writes = tuple(
            (name, value, None if "${" in value else Step("set", f"{name}={value}", self.id))
            for name, value in self.values.items()
        )
        object.__setattr__(self, "_writes", writes)

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    def run(self, call: Call) -> Next:
        variables, path = call.variables, call.path
        for name, value, step in self._writes:
            if step is not None:
                variables[name] = value
                path.append(step)
            else:
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
