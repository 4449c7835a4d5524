"""Voice messages left in the menus (the ``record`` node), handed to the parts that keep them
(`ivr.menu.model.VoiceMessages`, plugged in by `controller.node`).

A message is personal data: when the recorder is on, the menus write it into the recorder's
spool as ``<call id>-message.wav`` (no clash with the call's own MixMonitor file), and
`received` hands it to the recorder's pipeline at once, like a finished call recording:
encrypted, shipped, verified, the spool file removed, kept for the ``voice_message``
retention category of dialplans/retention.yaml and played back only through the recorder's
audited access. It is a contact of its own in the workspace's registry (channel
``voice_message``, with a number the operator can quote) and a work item of the group: a
callback (`routing.callbacks`) to the number the caller gave or called from, within the
callback rules, listed for operators with ``voice_message`` (the message's recording id) and
``contact`` among its data. One still open past the group's ``message_deadline_minutes``
(groups.yaml) raises an alarm (`OverdueMessages`).

`received` returns False (the caller hears the message was not kept) when no part took it in
hand: the callback was refused and the message reached no store either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from recorder.pipeline import CallInfo
from routing.callbacks.model import ACTIVE, Callback
from routing.groups import Group

__all__ = ["MESSAGE_CATEGORY", "MessageIntake", "OverdueMessages", "message_id"]

log = logging.getLogger("hotline.voice_messages")

# The retention category of voice messages (dialplans/retention.yaml).
MESSAGE_CATEGORY = "voice_message"
# What the data of the message's callback names the recording by, and its contact.
MESSAGE_DATA_KEY = "voice_message"
CONTACT_DATA_KEY = "contact"


class MessageRecorder(Protocol):
    """The recorder's pipeline (`recorder.pipeline.Recorder`)."""

    spool_dir: Path

    async def finished(self, call_id: str, info: CallInfo | None = None) -> None: ...


class MessageContacts(Protocol):
    """The workspace's contact registry (`workspace.part.WorkspaceService.voice_message`)."""

    async def voice_message(
        self, call_id: str, *, line: str, phone: str, group: str, topic: str, recording: str
    ) -> str | None: ...


class CallbackBooking(Protocol):
    """The ACD's callbacks (`routing.part.CallbackService`)."""

    async def request(
        self, call_id: str, *, phone: str, group: str, number: str, data: Mapping[str, str]
    ) -> bool: ...


def message_id(path: str) -> str:
    """The recording id of a message file: its name without ``.wav``."""
    return Path(path).name.removesuffix(".wav")


@dataclass
class MessageIntake:
    """`ivr.menu.model.VoiceMessages` for a running controller; either part may be absent."""

    recorder: MessageRecorder | None
    callbacks: CallbackBooking | None
    contacts: MessageContacts | None = None

    def __post_init__(self) -> None:
        # Resolved once, here: the menus write into the resolved spool path.
        spool = self.recorder.spool_dir if self.recorder is not None else None
        self._spool = Path(spool).resolve() if spool is not None else None

    async def received(
        self,
        call_id: str,
        *,
        path: str,
        group: str,
        phone: str,
        number: str,
        data: Mapping[str, str],
    ) -> bool:
        recording = message_id(path)
        stored = await self._store(recording, path)
        contact = await self._contact(call_id, recording, group=group, phone=phone, data=data)
        if self.callbacks is None:
            return stored
        extra = {MESSAGE_DATA_KEY: recording} | ({CONTACT_DATA_KEY: contact} if contact else {})
        booked = await self.callbacks.request(
            call_id, phone=phone, group=group, number=number, data={**data, **extra}
        )
        if not booked:
            log.error("voice message with no callback", extra={"call": call_id, "group": group})
        return booked or stored

    async def _contact(
        self, call_id: str, recording: str, *, group: str, phone: str, data: Mapping[str, str]
    ) -> str | None:
        """The message's contact number in the registry (None without a workspace)."""
        if self.contacts is None:
            return None
        return await self.contacts.voice_message(
            call_id,
            line=data.get("line", ""),
            phone=phone,
            group=group,
            topic=data.get("topic", ""),
            recording=recording,
        )

    async def _store(self, recording: str, path: str) -> bool:
        recorder = self.recorder
        if recorder is None:
            log.warning("voice message left on the PBX: the recorder is off")
            return False
        if Path(path).parent != self._spool:
            log.error("voice message outside the recorder's spool: not encrypted or shipped")
            return False
        info = CallInfo(retention_category=MESSAGE_CATEGORY)
        await recorder.finished(recording, info)
        return True


# --- the deadline: a message nobody has called back about ---------------------------------

VOICE_MESSAGES_OVERDUE = Gauge(
    "hotline_voice_messages_overdue",
    "Voice messages whose call back is still open past the group's message_deadline_minutes",
    ["group"],
)


@dataclass
class OverdueMessages:
    """Counts, per group with a ``message_deadline_minutes`` (groups.yaml), the voice
    messages whose callback is still open (pending, reserved or dialling) past the deadline,
    into `VOICE_MESSAGES_OVERDUE`, which the ``HotlineVoiceMessageOverdue`` alert watches
    (monitoring/rules.yml). `check` runs periodically in the controller."""

    engine: AsyncEngine
    groups: Callable[[], Mapping[str, Group]]  # the ACD's groups as they are now (admin edits)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def count(self) -> dict[str, int]:
        groups = {
            g.id: timedelta(minutes=g.message_deadline_minutes)
            for g in self.groups().values()
            if g.message_deadline_minutes is not None
        }
        counts = dict.fromkeys(groups, 0)
        now = self.clock()
        stmt = select(Callback.group_id, Callback.requested_at, Callback.data).where(
            Callback.state.in_(ACTIVE), Callback.group_id.in_(list(groups))
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(stmt)).all()
        for group_id, requested_at, data in rows:
            late = now - _aware(requested_at) > groups[group_id]
            counts[group_id] += bool(late and (data or {}).get(MESSAGE_DATA_KEY))
        return counts

    async def check(self) -> None:
        for group_id, overdue in (await self.count()).items():
            VOICE_MESSAGES_OVERDUE.labels(group_id).set(overdue)
            if overdue:
                log.error("voice messages waiting past the deadline", extra={"group": group_id})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
