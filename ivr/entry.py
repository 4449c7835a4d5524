"""Where every hotline call starts: which number was dialled and which group it belongs to.

Until the per-number menus (dialplans/) take over this step, the entry answers, tags the call
with its number and group so the operator's screen and the call log know them, and queues the
caller to that number's operator group. A number the hotline does not know goes to the general
group rather than being dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from hotline.agi.session import AgiSession
from hotline.store.db import CallLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HotlineNumber:
    """One toll-free number and the operator group that serves it."""

    number: str
    title: str
    group: str


NUMBERS: Mapping[str, HotlineNumber] = {
    entry.number: entry
    for entry in (
        HotlineNumber("88001000001", "общая линия", "general"),
        HotlineNumber("88002000002", "документы", "documents"),
        HotlineNumber("88003000003", "предприниматели и юридические лица", "business"),
        HotlineNumber("88004000004", "социальные программы", "social"),
    )
}
FALLBACK = NUMBERS["88001000001"]
# How long a caller may wait in the queue before Asterisk moves on (seconds).
QUEUE_MAX_WAIT = 1800


def dialled_number(session: AgiSession) -> str:
    """The hotline number: the dialplan passes it as ``?did=``; the extension is the backup."""
    did = session.request.query.get("did") or session.env.get("agi_extension", "")
    return "".join(ch for ch in did if ch.isdigit())


def queue_outcome(queue_status: str | None) -> str:
    """What became of the call once ``Queue()`` returned. app_queue sets QUEUESTATUS only when
    nobody answered (TIMEOUT, FULL, JOINEMPTY, ...); an answered call leaves it unset."""
    return "answered" if not queue_status else queue_status.lower()


class CallEntry:
    """The ``hotline`` FastAGI script."""

    def __init__(self, call_log: CallLog | None, node: str) -> None:
        self._call_log = call_log
        self._node = node

    async def __call__(self, session: AgiSession) -> None:
        number = dialled_number(session)
        line = NUMBERS.get(number, FALLBACK)
        log.info("call entered", extra={"dialled": number, "group": line.group})
        await self._record_start(session, number)
        outcome = "hangup"
        try:
            await session.answer()
            await session.set_variable("HOTLINE_DID", number)
            await session.set_variable("HOTLINE_GROUP", line.group)
            await session.exec("Queue", line.group, "t", "", "", str(QUEUE_MAX_WAIT))
            outcome = queue_outcome(await session.get_variable("QUEUESTATUS"))
        finally:
            await self._record_end(session, outcome)

    async def _record_start(self, session: AgiSession, number: str) -> None:
        if self._call_log is None:
            return
        await self._call_log.call_started(
            session.call_id,
            channel=session.env.get("agi_channel", ""),
            dialled_number=number,
            caller_id=session.env.get("agi_callerid", ""),
            script=session.request.script,
            node=self._node,
        )

    async def _record_end(self, session: AgiSession, outcome: str) -> None:
        if self._call_log is not None:
            await self._call_log.call_ended(session.call_id, outcome)
