"""``record``: the caller leaves a voice message (a callback request, a complaint).

    leave-message:
      kind: record
      prompts: [hotline/leave-message]
      store: message        # ${message} = the recording's path on the PBX
      max_seconds: 120
      silence: 5            # seconds of silence that end the message
      phone: callback_phone # optional: the variable holding the number to call back
                            # (default, or when it is empty: the caller's own number)
      next: thanks          # the message is kept
      failure: not-saved    # optional: it could not be kept (default: the caller hears
                            # hotline/message-not-saved, hotline/call-later; the call ends)

What the caller entered before (the callback number, say) is set on the channel first, so it
is kept with the call's record. `next` runs only when Asterisk wrote the message (RECORD FILE
ended on a key, the time limit, silence or the caller hanging up) and the controller's voice
messages (`Services.messages`, when on) took it: a message that was not saved (the directory
missing on the PBX, the beep failing...) never hears "message saved".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from hotline.agi.session import CallerHungUp, Recording
from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import Prompts, export_variables, play
from ivr.nodes.queue import operator_data

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# What the caller hears when the message could not be kept and the node has no `failure`.
NOT_SAVED_PROMPTS = ("hotline/message-not-saved", "hotline/call-later")


@dataclass(frozen=True)
class RecordNode:
    kind: ClassVar[str] = "record"
    id: str
    at: Location
    files: Prompts
    store: str
    max_seconds: int
    silence: int
    phone: str | None
    next: tuple[str, Location]
    failure: tuple[str, Location] | None = None

    def targets(self) -> Iterable[tuple[str, Location]]:
        return tuple(t for t in (self.next, self.failure) if t is not None)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        if self.failure is not None:
            return self.files
        return (*self.files, *((name, self.at) for name in NOT_SAVED_PROMPTS))

    async def run(self, call: Call) -> Next:
        await play(call, self.files)
        await export_variables(call)
        # The call id comes from Asterisk; only safe characters go into a file name. The suffix
        # keeps it apart from the call's own recording when both share the recorder's spool.
        path = f"{call.services.recordings_dir}/{_UNSAFE.sub('_', call.channel.call_id)}-message"
        recording = await call.channel.record_file(
            path, "wav", "#", self.max_seconds * 1000, beep=True, silence_s=self.silence
        )
        kept = recording.saved and await self._hand_over(call, f"{path}.wav")
        call.note("record", f"{path}.wav ({_how(recording, kept)})")
        if not kept:
            return await self._not_saved(call, recording)
        call.variables[self.store] = f"{path}.wav"
        await call.channel.set_variable("HOTLINE_MESSAGE", f"{path}.wav")
        return self.next[0]

    async def _hand_over(self, call: Call, path: str) -> bool:
        """Give the message to the controller's voice messages, if on: before anything else
        touches the channel, so a caller who hung up to end the message still leaves it."""
        messages = call.services.messages
        if messages is None:
            return True
        phone = (call.value(self.phone) if self.phone else "") or call.caller_id
        try:
            return await messages.received(
                call.channel.call_id,
                path=path,
                group=call.menu.group,
                phone=phone,
                number=call.caller_id,
                data=operator_data(call, None),
            )
        except Exception:  # the store is away: the caller is told, the call goes on
            log.exception("voice message not taken", extra={"call": call.channel.call_id})
            return False

    async def _not_saved(self, call: Call, recording: Recording) -> Next:
        if recording.reason == "hangup":
            raise CallerHungUp("caller hung up; the message could not be kept")
        log.error(
            "voice message not saved", extra={"call": call.channel.call_id, "why": recording.reason}
        )
        if self.failure is not None:
            return self.failure[0]
        await play(call, tuple((name, self.at) for name in NOT_SAVED_PROMPTS))
        return End("hangup", self.id, "message_not_saved")


def _how(recording: Recording, kept: bool) -> str:
    if kept:
        return recording.reason or "ended"
    return f"not saved: {recording.reason or 'failure'}"


def parse(node_id: str, fields: Fields) -> RecordNode:
    return RecordNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        store=fields.text("store", "message"),
        max_seconds=fields.whole("max_seconds", 120, 5, 600),
        silence=fields.whole("silence", 5, 1, 30),
        phone=fields.optional_text("phone"),
        next=fields.target("next"),
        failure=fields.optional_target("failure"),
    )
