"""``hangup``: optional goodbye prompts, then the menu ends the call.

goodbye:
  kind: hangup
  prompts: [hotline/goodbye]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next, Step
from ivr.nodes.common import Cue, Prompts, cues

# Every call a menu hangs up ends the same way (an `End` is frozen: one serves them all).
HUNG_UP = End("hangup", outcome="completed")


@dataclass(frozen=True)
class HangupNode:
    kind: ClassVar[str] = "hangup"
    id: str
    at: Location
    files: Prompts
    _cues: tuple[Cue, ...] = field(init=False, repr=False, compare=False)
    _hung_up: Step = field(init=False, repr=False, compare=False)  # what the path notes

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cues", cues(self.id, self.files))  # see `Cue`
        object.__setattr__(self, "_hung_up", Step("hangup", "", self.id))

    def targets(self) -> Iterable[tuple[str, Location]]:
        return ()

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        channel, path = call.channel, call.path
        for name, fixed, step in self._cues:
            played = await channel.stream_file(name if fixed else call.expand(name), "")
            path.append(step)
            if played.digit is not None:
                call.note("input", played.digit)
                break  # as `play`: a key pressed ends the goodbye
        await channel.hangup()
        path.append(self._hung_up)
        return HUNG_UP


def parse(node_id: str, fields: Fields) -> HangupNode:
    return HangupNode(id=node_id, at=fields.at, files=fields.prompts("prompts", required=False))
