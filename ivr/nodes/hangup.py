"""``hangup``: optional goodbye prompts, then the menu ends the call.

goodbye:
  kind: hangup
  prompts: [hotline/goodbye]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import Prompts, play


@dataclass(frozen=True)
class HangupNode:
    kind: ClassVar[str] = "hangup"
    id: str
    at: Location
    files: Prompts

    def targets(self) -> Iterable[tuple[str, Location]]:
        return ()

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        await play(call, self.files)
        await call.channel.hangup()
        call.note("hangup")
        return End("hangup", outcome="completed")


def parse(node_id: str, fields: Fields) -> HangupNode:
    return HangupNode(id=node_id, at=fields.at, files=fields.prompts("prompts", required=False))
