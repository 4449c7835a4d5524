"""`CallFacts`: each call's events gathered as they happen, one fact written as the call ends.

The reporting part imports no other part; the composition root (`controller.node`) feeds it
through these methods, each a port it plugs another part's listener into:

* `queued`, `offered`, `answered`, `left_queue`: the ACD's queue, offer, answer and result
  listeners (`routing.part.AcdService`);
* `operator_moved`: the ACD's operator listeners. An operator's stay in each state is written
  to `operator_time` (occupancy); a stay in ``talking`` is the call's talk, one in ``wrap_up``
  its wrap-up (a transferred call has two of each, the ACD's one call all the same);
* `callback_booked`, `escalated`, `rated`, `contact_changed`: the menus' callback port, the
  agencies' transfers, the menus' rating and the workspace's contact registry;
* `call_finished`: the menus' entry, as the call log's row is closed. The fact is written
  then (a `reporting.fact_store.NewFact`); news that comes later (the wrap-up ends, the
  operator marks the contact resolved) updates it.

Listeners must not block: each method only notes the event; writes go, in order, to a
`reporting.fact_writer.FactWriter` that commits them in batches on its own task. A database
that is away delays facts (kept in memory, then journaled on local disk, and tried again,
logged), never a call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from hotline.clock import wall_clock
from hotline.validators import validate_phone
from reporting.fact_store import Fact, FactNews, FactStore, NewFact, OperatorStay, WrapUpAdded
from reporting.fact_writer import FactWriter

__all__ = ["CallFacts", "MenuEnd"]


# A call whose entry never reported its end (lost with a node) is forgotten after this.
_FORGET_SECONDS: Final = 6 * 3600.0
_MAX_PATH: Final = 1000
_NOT_STAYS: Final = frozenset({"logged_out"})


@dataclass(frozen=True)
class MenuEnd:
    """How the menus' entry saw the call (what `call_finished` needs of it)."""

    call_id: str
    line: str
    caller_id: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # the call log's
    path: tuple[str, ...] = ()  # the menu's nodes in order
    exit: str = ""  # "queue general", "hangup", "caller_hangup", "transfer 112"...
    topic: str | None = None
    group: str | None = None  # the group the menu queued to


@dataclass
class _Draft:
    """What is known of a call in progress."""

    seen: float
    queued_at: float | None = None
    group: str | None = None
    offers: list[str] = field(default_factory=list)
    widened: bool = False
    ringing: str | None = None  # the operator whose phone rings now
    answered_at: float | None = None
    answered_by: str | None = None
    answer_group: str | None = None
    answers: int = 0
    talk: float = 0.0
    wrap: float | None = None
    overflowed: bool = False
    overflow_reason: str | None = None
    abandoned_at: float | None = None
    abandoned_ringing: bool = False
    callback_booked: bool = False
    escalated: bool = False
    rating: int | None = None
    contact: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Stay:
    state: str
    since: float
    call_id: str | None


class CallFacts:
    """The reporting part's recorder of call facts."""

    def __init__(
        self,
        store: FactStore,
        zone: ZoneInfo,
        clock: Callable[[], float] = wall_clock,
        serves: Callable[[str, str], bool] | None = None,
        writer: FactWriter | None = None,
    ) -> None:
        self.store = store
        self._zone = zone
        self._clock = clock
        # serves(operator, group): the operator is skilled for the group (else: widened)
        self._serves = serves
        self._drafts: dict[str, _Draft] = {}
        self._stays: dict[str, _Stay] = {}
        self.writer = writer or FactWriter(store)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        """Write everything noted, then stop."""
        await self.writer.stop()

    async def idle(self) -> None:
        """Return once every noted write is committed (tests, stop)."""
        await self.writer.idle()

    @property
    def lost(self) -> int:
        """Writes lost: refused by the database, past a full journal, or (a writer without a
        journal) still waiting for the database at stop."""
        return self.writer.lost

    def _draft(self, call_id: str) -> _Draft:
        draft = self._drafts.get(call_id)
        if draft is None:
            draft = self._drafts[call_id] = _Draft(self._clock())
        return draft

    # --- the ACD ---------------------------------------------------------------------------

    def queued(self, call_id: str, group: str, at: float | None = None) -> None:
        draft = self._draft(call_id)
        if draft.queued_at is None:
            draft.queued_at = self._clock() if at is None else at
        draft.group = group

    def offered(self, call_id: str, operator_id: str, group: str) -> None:
        draft = self._draft(call_id)
        if operator_id not in draft.offers:
            draft.offers.append(operator_id)
        draft.ringing = operator_id
        draft.group = group
        if self._serves is not None and not self._serves(operator_id, group):
            draft.widened = True

    def answered(self, call_id: str) -> None:
        """The operator rung last picked up; a second answer is a transfer's (one call)."""
        draft = self._draft(call_id)
        draft.answers += 1
        if draft.answered_at is None:
            draft.answered_at = self._clock()
            draft.answered_by = draft.ringing
            draft.answer_group = draft.group
        draft.ringing = None

    def left_queue(self, call_id: str, outcome: str, overflow_reason: str | None = None) -> None:
        """The ACD is done with the caller: ``answered``, ``overflow`` or ``caller_gone``."""
        draft = self._draft(call_id)
        if outcome == "overflow":
            draft.overflowed = True
            draft.overflow_reason = overflow_reason
        elif outcome == "caller_gone" and draft.answered_at is None:
            draft.abandoned_at = self._clock()
            draft.abandoned_ringing = draft.ringing is not None

    def operator_moved(self, operator_id: str, state: str, call_id: str | None) -> None:
        """An operator's new state: the stay that ended is written (and counted to its call:
        talk or wrap-up)."""
        now = self._clock()
        stay = self._stays.get(operator_id)
        if stay is not None and stay.state == state and stay.call_id == call_id:
            return
        self._stays[operator_id] = _Stay(state, now, call_id)
        if stay is None:
            return
        seconds = max(0.0, now - stay.since)
        if stay.state not in _NOT_STAYS:
            slots = hour_slots(stay.since, now, self._zone)
            self.writer.note(OperatorStay(operator_id, stay.state, tuple(slots)))
        if stay.call_id is None:
            return
        draft = self._drafts.get(stay.call_id)
        if stay.state == "talking" and draft is not None:
            draft.talk += seconds
        elif stay.state == "wrap_up":
            if draft is not None:
                draft.wrap = (draft.wrap or 0.0) + seconds
            else:
                self.writer.note(WrapUpAdded(stay.call_id, seconds))

    # --- the menus, agencies, the registry --------------------------------------------------

    def callback_booked(self, call_id: str) -> None:
        self._draft(call_id).callback_booked = True

    def escalated(self, call_id: str) -> None:
        self._draft(call_id).escalated = True

    def rated(self, call_id: str, mark: int) -> None:
        self.contact_changed(call_id, rating=mark)

    def contact_changed(self, call_id: str, **values: Any) -> None:
        """News of the call's contact: ``contact_number``, ``fcr_operator``, ``application``,
        ``topic``, ``rating`` (None values are not news)."""
        news = {k: v for k, v in values.items() if v is not None}
        if not news:
            return
        draft = self._drafts.get(call_id)
        if draft is not None:
            draft.contact.update(news)
        else:
            self.writer.note(FactNews(call_id, news))

    async def call_finished(self, end: MenuEnd) -> None:
        """The entry closed the call's log row: the fact is written (not for a call handed
        back to the dialplan: it goes on, on this node or another, and ends there)."""
        draft = self._drafts.pop(end.call_id, None) or _Draft(self._clock())
        self._forget_old()
        if end.outcome == "handed_back":
            return
        fact = self.fact_of(end, draft)
        self.writer.note(NewFact(fact))

    def _forget_old(self) -> None:
        """Drop the drafts older than `_FORGET_SECONDS`: the oldest come first (a draft is
        made when its call is first heard of), so this stops at the first young one instead
        of reading every call in progress at every end (hundreds at a peak; a clock stepped
        back only delays the forgetting)."""
        oldest = self._clock() - _FORGET_SECONDS
        while self._drafts:
            call_id, draft = next(iter(self._drafts.items()))
            if draft.seen >= oldest:
                return
            del self._drafts[call_id]

    def fact_of(self, end: MenuEnd, draft: _Draft) -> Fact:
        """The fact of a finished call from the entry's view and the events noted."""
        started = end.started_at.astimezone(UTC)
        local = started.astimezone(self._zone)
        fact = Fact(
            call_id=end.call_id,
            line=end.line,
            started_at=started,
            local_day=local.date(),
            local_hour=local.hour,
            ended_at=end.ended_at.astimezone(UTC),
            menu_path=" ".join(end.path)[:_MAX_PATH],
            menu_exit=end.exit,
            topic=end.topic,
            group_name=draft.answer_group or draft.group or end.group,
            queued=draft.queued_at is not None,
            overflowed=draft.overflowed,
            overflow_reason=draft.overflow_reason,
            widened=draft.widened,
            ringing_operators=",".join(draft.offers) or None,
            operator_id=draft.answered_by,
            answered=draft.answered_at is not None,
            wrap_seconds=draft.wrap,
            callback_booked=draft.callback_booked,
            transferred=draft.answers > 1 or end.exit.startswith("transfer"),
            escalated=draft.escalated,
            caller_number=validate_phone(end.caller_id).normalized or None,
        )
        _timings(fact, draft, end)
        for name, value in draft.contact.items():
            setattr(fact, name, value)
        fact.outcome = _outcome(fact)
        return fact


def hour_slots(since: float, until: float, zone: ZoneInfo) -> list[tuple[date, int, float]]:
    """(local day, local hour, seconds) of the span `since`..`until`, split at each hour."""
    slots: list[tuple[date, int, float]] = []
    at = since
    while at < until:
        local = datetime.fromtimestamp(at, UTC).astimezone(zone)
        next_hour = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        end = min(until, next_hour.timestamp())
        slots.append((local.date(), local.hour, end - at))
        at = end
    return slots


def _timings(fact: Fact, draft: _Draft, end: MenuEnd) -> None:
    started = end.started_at.timestamp()
    menu_until = draft.queued_at if draft.queued_at is not None else end.ended_at.timestamp()
    fact.menu_seconds = max(0.0, menu_until - started)
    if draft.answered_at is not None:
        fact.talk_seconds = draft.talk
        fact.hold_seconds = 0.0  # the product has no hold yet: a call's hold is none
    if draft.queued_at is None:
        return
    until = draft.answered_at or draft.abandoned_at
    if until is not None:
        fact.wait_seconds = max(0.0, until - draft.queued_at)
    if draft.abandoned_at is not None and draft.answered_at is None:
        fact.abandoned_at = datetime.fromtimestamp(draft.abandoned_at, UTC)
        fact.abandoned_ringing = draft.abandoned_ringing


def _outcome(fact: Fact) -> str:
    """One outcome per call, the first that applies (`fact_store.OUTCOMES`' order)."""
    if fact.escalated:
        return "escalated"
    if fact.transferred:
        return "transferred"
    if fact.answered:
        return "answered"
    if fact.callback_booked:
        return "callback_booked"
    if fact.abandoned_at is not None:
        return "abandoned"
    if fact.overflowed:
        return "overflowed"
    return "self_service"
