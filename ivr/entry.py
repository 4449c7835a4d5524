"""Where every hotline call starts: which number was dialled, and that number's menu.

The entry answers, tags the call with its number (HOTLINE_DID, for the operator's screen and
the CDR), records the call's start and end in the call log, and runs the number's menu through
the engine. A number with no menu of its own gets the general menu rather than being dropped;
if no menu could be loaded at all, the caller is queued straight to the general group.

When the menu has ended (hang-up node, transfer, queue and conversation, rating...) the entry
sets ``HOTLINE_DONE=1``: the dialplan hangs such a call up. A call left any other way (the
server cancelled the session because the controller is stopping, the controller crashed) is
handed back: the dialplan retries the AGI with hold music, on this controller once restarted
or another (``&reentry=N`` on the URL counts the tries). The menu leaves checkpoints on the
channel as the call goes (`ivr.menu.resume`): a handed-back call resumes at its last safe node
with what the caller had entered, not at the greeting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from hotline import say_ru
from hotline.agi import carry
from hotline.agi.hooks import AnsweredHook
from hotline.agi.session import AgiSession, CallerHungUp
from hotline.store.db import CallLog
from hotline.validators import VALIDATORS
from ivr.menu.engine import CallResult, Engine
from ivr.menu.history import CallLogHistory
from ivr.menu.library import MenuLibrary, Surge, load_library
from ivr.menu.model import Menu, OperatorQueue, Services
from ivr.menu.resume import RESUME_VARIABLE, Resume, resume_from
from ivr.menu.status import HttpStatusService
from ivr.nodes.queue import asterisk_queue, queue_outcome
from ivr.settings import IvrSettings

log = logging.getLogger(__name__)

# The operator group of last resort when no menu is available at all.
FALLBACK_GROUP = "general"
# The channel variable that tells the dialplan the controller has finished the call.
DONE_VARIABLE = "HOTLINE_DONE"


@dataclass(frozen=True)
class FinishedCall:
    """A call as the entry saw it when its log row was closed (the reports' call facts)."""

    call_id: str
    line: str
    caller_id: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # the call log's; "handed_back" when the dialplan takes the call on
    path: tuple[str, ...]  # the menu nodes the call went through, in order
    exit: str  # where it left the menu: "queue general", "hangup", "transfer 112"...
    topic: str | None  # the menu's `topic` variable, when a node set one
    group: str | None  # the group the menu queued the caller to


# Told each call as it ends (`CallEntry.on_finished`); must not raise.
CallFinished = Callable[[FinishedCall], Awaitable[None]]


def dialled_number(session: AgiSession) -> str:
    """The hotline number: the dialplan passes it as ``?did=``; the extension is the backup."""
    did = session.request.query.get("did") or session.env.get("agi_extension", "")
    if did.isdigit():
        return did  # the usual case: nothing to drop
    return "".join(ch for ch in did if ch.isdigit())


def base_services(
    settings: IvrSettings, call_log: CallLog | None, queue: OperatorQueue | None = None
) -> Services:
    """What every menu's nodes may use (each menu adds its own opening hours). `queue` is the
    controller's ACD; without it groups are served by Asterisk's Queue()."""
    # CallLog keeps its engine private; the history query needs the same database.
    engine = getattr(call_log, "_engine", None) if call_log is not None else None
    return Services(
        status=HttpStatusService(settings.status_url),
        history=CallLogHistory(engine) if engine is not None else None,
        validators=VALIDATORS,
        say=say_ru,
        transfer_channel=settings.transfer_channel,
        recordings_dir=settings.recordings_dir,
        queue_max_wait=settings.queue_max_wait,
        queue=queue,
    )


class CallEntry:
    """The ``hotline`` FastAGI script."""

    def __init__(
        self,
        call_log: CallLog | None,
        node: str,
        *,
        settings: IvrSettings | None = None,
        library: MenuLibrary | None = None,
        clock: Callable[[], datetime] | None = None,
        surge: Surge | None = None,
        on_answered: Sequence[AnsweredHook] = (),
        queue: OperatorQueue | None = None,
        on_finished: Sequence[CallFinished] = (),
    ) -> None:
        self._call_log = call_log
        # Told each call as it ends (the root plugs in the reports' call facts).
        self.on_finished = list(on_finished)
        # What other parts start the moment the line connects (the recorder's MixMonitor).
        self._on_answered = tuple(on_answered)
        self._node = node
        self._settings = settings or IvrSettings()
        self._engine = Engine(self._settings.max_steps)
        zone = ZoneInfo(self._settings.timezone)
        self._clock = clock or (lambda: datetime.now(zone))
        if library is None:
            services = base_services(self._settings, call_log, queue)
            library, problems = load_library(
                self._settings.dialplans_dir, services, self._settings.general_number, surge
            )
            if problems:
                log.error("some menus were rejected", extra={"rejected": len(problems)})
        self.library = library
        self._queue = queue

    async def __call__(self, session: AgiSession) -> None:
        number = dialled_number(session)
        picked = self.library.pick(number)
        reentry = session.request.query.get("reentry", "0")
        if log.isEnabledFor(logging.INFO):
            log.info(
                "call entered",
                extra={"dialled": number, "menu": picked and picked[0].number, "reentry": reentry},
            )
        started = datetime.now(UTC)  # `utc_now`, with no frame of its own
        # Without a call log (tests, `hotline menus try`) nothing is written: no coroutine.
        logged = self._call_log is None or await self._record_start(session, number, started)
        outcome = "hangup"
        result: CallResult | None = None
        try:
            await session.answer()
            for hook in self._on_answered:
                await hook(session)
            await session.set_variable("HOTLINE_DID", number)
            if picked is None:
                outcome = await self._queue_without_menu(session)
            else:
                menu, services = picked
                caller_id = session.env.get("agi_callerid", "")
                resume = await _resume(session, menu) if reentry != "0" else None
                result = await self._engine.run(
                    session,
                    menu,
                    services,
                    self._clock(),
                    caller_id=caller_id,
                    resume=resume,
                    checkpoints=True,
                )
                outcome = result.outcome
            # Tell the dialplan the call is finished (it hangs up rather than bringing the
            # caller back); a caller already gone has no channel left to tell.
            if not session.hung_up:
                try:
                    await session.set_variable(DONE_VARIABLE, "1")
                except CallerHungUp:
                    pass
        except asyncio.CancelledError:
            log.info("call handed back to the dialplan")  # the server is stopping
            outcome = "handed_back"
            raise
        finally:
            if self._call_log is not None:
                await self._record_end(session, outcome, None if logged else (number, started))
            if self.on_finished:
                await self._tell_finished(session, number, started, outcome, result)

    async def _tell_finished(
        self,
        session: AgiSession,
        number: str,
        started: datetime,
        outcome: str,
        result: CallResult | None,
    ) -> None:
        path: list[str] = []
        for step in result.path if result is not None else ():
            if not path or path[-1] != step.node:
                path.append(step.node)
        variables = result.variables if result is not None else {}
        call = FinishedCall(
            call_id=session.call_id,
            line=number,
            caller_id=session.env.get("agi_callerid", ""),
            started_at=started,
            ended_at=datetime.now(UTC),
            outcome=outcome,
            path=tuple(path),
            exit=str(result.end) if result is not None else "",
            topic=variables.get("topic") or None,
            group=result.queued[0] if result is not None and result.queued else None,
        )
        for listener in self.on_finished:
            try:
                await listener(call)
            except Exception:  # the reports' bookkeeping never costs the call
                log.exception("call end listener failed")

    async def _queue_without_menu(self, session: AgiSession) -> str:
        log.error("no menu loaded: caller queued to the general group")
        await session.set_variable("HOTLINE_GROUP", FALLBACK_GROUP)
        if self._queue is not None:
            number = session.env.get("agi_callerid", "")
            return await self._queue.connect(
                session, FALLBACK_GROUP, number=number, priority=0, data={}
            )
        max_wait = str(self._settings.queue_max_wait)
        await session.exec("Queue", asterisk_queue(FALLBACK_GROUP), "t", "", "", max_wait)
        return queue_outcome(await session.get_variable("QUEUESTATUS"))

    async def _record_start(self, session: AgiSession, number: str, at: datetime) -> bool:
        """The call's row, before anything else; False when the store could not take it
        (busy or away): the caller goes on to the menu all the same, and the row is
        written whole at the end (`_record_end`)."""
        if self._call_log is None:
            return True
        try:
            fields = self._call_fields(session, number)
            await self._call_log.call_started(session.call_id, started_at=at, **fields)
        except (SQLAlchemyError, OSError):
            log.exception("call log unavailable at the start of a call: it goes on unlogged")
            return False
        return True

    async def _record_end(
        self, session: AgiSession, outcome: str, unlogged: tuple[str, datetime] | None
    ) -> None:
        """The call's outcome; with `unlogged` (the number dialled and when the call came in),
        the row the start could not write comes first."""
        if self._call_log is None:
            return
        try:
            if unlogged is not None:
                number, at = unlogged
                fields = self._call_fields(session, number)
                await self._call_log.call_started(session.call_id, started_at=at, **fields)
            await self._call_log.call_ended(session.call_id, outcome)
        except (SQLAlchemyError, OSError):
            log.exception("call log unavailable: the call's outcome is not logged")

    def _call_fields(self, session: AgiSession, number: str) -> dict[str, str]:
        return {
            "channel": session.env.get("agi_channel", ""),
            "dialled_number": number,
            "caller_id": session.env.get("agi_callerid", ""),
            "script": session.request.script,
            "node": self._node,
        }


async def _resume(session: AgiSession, menu: Menu) -> Resume | None:
    """The checkpoint a previous controller left on this handed-back call, if any that this
    controller understands and that fits the menu."""
    text = await session.get_variable(RESUME_VARIABLE)
    fields = carry.decode(text)
    if text and fields is None:
        log.warning("a checkpoint in a format this controller does not know: starting over")
    resume = resume_from(fields, menu)
    if resume is not None:
        log.info("call resumed", extra={"dialled": menu.number, "node": resume.node})
    return resume
