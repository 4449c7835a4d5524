"""``record``: the caller leaves a voice message (a callback request, a complaint).

    leave-message:
      kind: record
      prompts: [hotline/leave-message]
      store: message        # ${message} = the recording's path on the PBX
      max_seconds: 120
      silence: 5            # seconds of silence that end the message
      next: thanks

What the caller entered before (the callback number, say) is set on the channel first, so it
is kept with the call's record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next
from ivr.nodes.common import Prompts, export_variables, play

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class RecordNode:
    kind: ClassVar[str] = "record"
    id: str
    at: Location
    files: Prompts
    store: str
    max_seconds: int
    silence: int
    next: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        await play(call, self.files)
        await export_variables(call)
        # The call id comes from Asterisk; only safe characters go into a file name.
        path = f"{call.services.recordings_dir}/{_UNSAFE.sub('_', call.channel.call_id)}"
        recording = await call.channel.record_file(
            path, "wav", "#", self.max_seconds * 1000, beep=True, silence_s=self.silence
        )
        call.variables[self.store] = f"{path}.wav"
        await call.channel.set_variable("HOTLINE_MESSAGE", f"{path}.wav")
        call.note("record", f"{path}.wav ({recording.reason or 'ended'})")
        return self.next[0]


def parse(node_id: str, fields: Fields) -> RecordNode:
    return RecordNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        store=fields.text("store", "message"),
        max_seconds=fields.whole("max_seconds", 120, 5, 600),
        silence=fields.whole("silence", 5, 1, 30),
        next=fields.target("next"),
    )
