"""``play``: prompts in order; a barge-in key stops them and is kept for the next node (which
reads it as the caller's choice). A key already pressed during an earlier prompt that is one of
this node's barge-in keys skips it.

welcome:
  kind: play
  prompts: [hotline/general-welcome]
  barge_in: "0123456789"
  next: main-menu
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next
from ivr.nodes.common import Cue, KeySteps, Prompts, cues


@dataclass(frozen=True)
class PlayNode:
    kind: ClassVar[str] = "play"
    id: str
    at: Location
    files: Prompts
    barge_in: str
    next: tuple[str, Location]
    _cues: tuple[Cue, ...] = field(init=False, repr=False, compare=False)
    _inputs: KeySteps = field(init=False, repr=False, compare=False)  # the key that stopped it

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cues", cues(self.id, self.files))  # see `Cue`
        object.__setattr__(self, "_inputs", KeySteps("input", self.id))

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        if call.pending and call.pending[0] in self.barge_in:
            return self.next[0]  # the caller already chose during an earlier prompt
        channel, keys, path = call.channel, self.barge_in, call.path
        for name, fixed, step in self._cues:
            played = await channel.stream_file(name if fixed else call.expand(name), keys)
            path.append(step)
            if played.digit is not None:
                path.append(self._inputs[played.digit])
                call.pending = played.digit
                break
        return self.next[0]


def parse(node_id: str, fields: Fields) -> PlayNode:
    return PlayNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        barge_in=fields.digits("barge_in"),
        next=fields.target("next"),
    )
