"""``goto``: continue at another node (a named junction several branches share).

back-to-main:
  kind: goto
  to: main-menu
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next


@dataclass(frozen=True)
class GotoNode:
    kind: ClassVar[str] = "goto"
    id: str
    at: Location
    to: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.to,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    def run(self, call: Call) -> Next:
        return self.to[0]


def parse(node_id: str, fields: Fields) -> GotoNode:
    return GotoNode(id=node_id, at=fields.at, to=fields.target("to"))
