"""Callbacks: the ACD calls a caller back instead of keeping them on hold.

Two ways in:

- From a call (the menu's overflow path: "press 1 and we will call you back"): the menu calls
  ``await scheduler.request_from_call(session.call_id, phone=..., group=...)`` after
  `routing.connect.connect_call` returned an overflow (or while the caller still waits). The
  caller's place (arrival number, priority, first arrival) is taken from the ACD, the caller
  leaves the queue, and the callback later re-enters the queue *at that place*.
- From the HTTP API (the mobile app, `routing.callbacks_http`): phone, application id, group
  and a preferred window; the callback joins the group's queue when its window opens.

How one callback is served (`CallbackScheduler`, one per controller node):

1. ``run_due`` (every ``poll_seconds``) expires callbacks whose window has ended, then picks
   pending ones that are due (``next_attempt_at`` reached, inside their window, group open by
   its hours, somebody logged in) in queue order (priority, then arrival), and *claims* each
   with ``UPDATE callbacks SET state='reserved', node=<me> WHERE id=? AND state='pending'``:
   one row, one winner, whatever number of nodes race for it (at-most-once).
2. The callback enters the ACD core as a caller ``callback-<id>`` with its kept place, so live
   callers who came after it wait behind it and those before it go first. When its turn comes,
   the core picks an operator and `AcdNode` confirms the pairing with its atomic store claim
   (in process or Redis): that operator is reserved and nobody else gets them.
3. Originate (AMI, ``Async: true``, each with its own ActionID; the result is the
   ``OriginateResponse`` event carrying that ActionID: ``Response: Success|Failure`` and
   ``Reason``) first to the **operator's** device. Not answered: the operator is paused "no
   answer" exactly as for a live call and the callback, still first, gets the next operator.
4. Operator answered: Originate to the **caller**. Answered: state ``connected``; the operator
   is "talking" until the operator leg's ``Hangup`` event. Not answered /
   busy / failed: the operator leg is hung up, the operator released (wrap-up ends at
   once), and the callback goes back to ``pending`` with
   ``next_attempt_at = now + retry_seconds * backoff^(n-1)``; after ``max_attempts`` calls
   the citizen did not take it is ``failed``.

Why the operator first, then the caller: a citizen who picks up must hear a person at once. A
caller-first order would make the citizen answer a government number and then wait (or hear
nobody if the reserved operator fails to pick up): that is the "abandoned call" of predictive
diallers, and for a public service it reads as a scam call. The price is operator time: the
operator waits through the citizen's ring (``caller_ring_seconds``); an operator's missed
ring costs the citizen nothing. The operator also sees the callback's data before the citizen
answers.

States: pending -> reserved (claimed by a node, waiting for / holding an operator) -> dialing
-> connected; back to pending after a failed attempt or an overflow; failed, cancelled
(DELETE or the caller), expired (window over) are final.

Asterisk dialplan the Originates need: asterisk-conf/extensions.conf, contexts
``hotline-callback-operator``, ``hotline-callback-caller`` and ``hotline-callback-out``. Both
legs meet in a ConfBridge as marked users with ``end_marked_any``: whoever hangs up first ends
the other leg, so the controller only follows the operator leg's ``Hangup``. If the operator
hangs up while the citizen's phone rings, the citizen's leg hears an apology and ends (its
dialplan finds the conference empty); the controller notices the operator left, frees them and
puts the callback back to pending without counting the attempt against the citizen.

Crash and restart: ``start()`` puts this node's reserved/dialing rows back to pending (the
attempt in flight died with the process). A node that never comes back: a claim carries a lease
(``lease_until``, ``lease_seconds`` ahead) that the owning node renews on every pass while it
works on the callback; any node's ``run_due`` puts reserved/dialing rows whose lease ran out
back to pending (attempts unchanged: the dead node's attempt is not counted against the
citizen). Every later state change of the owner is guarded by ``node = <me>``, so a node that
was only cut off from the database for longer than the lease cannot overwrite the row another
node took over. The lease is compared with each node's wall clock: keep it far above the clock
skew between nodes (NTP keeps that well under a second).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from sqlalchemy import JSON, BigInteger, Index, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiError
from hotline.ami.protocol import AmiMessage
from hotline.hours import HoursStatus
from hotline.store.db import Base, UTCDateTime, require_utc, utc_now
from hotline.store.state import StateUnavailable
from hotline.validators import validate_application, validate_phone
from routing.acd import AcdError, Offer
from routing.groups import Group
from routing.node import AcdNode

__all__ = [
    "Callback",
    "CallbackRefused",
    "CallbackScheduler",
    "CallbackSettings",
    "CallbackState",
    "CallbackStore",
    "OriginateOutcome",
    "window_overlaps_hours",
]

log = logging.getLogger("hotline.routing.callbacks")

# Asterisk's OriginateResponse Reason codes (channel.h AST_CONTROL_*).
REASONS: Final[Mapping[int, str]] = {
    0: "failed",
    1: "hung_up",
    3: "no_answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


class CallbackState(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    DIALING = "dialing"
    CONNECTED = "connected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = CallbackState
ACTIVE: Final = (S.PENDING.value, S.RESERVED.value, S.DIALING.value)
HELD: Final = (S.RESERVED.value, S.DIALING.value)  # claimed by a node, under its lease


class Callback(Base):
    """One callback request. Schema owned by migrations ``0002_acd`` (branch "acd") and
    ``0005_callback_lease``."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_state_next", "state", "next_attempt_at"),
        Index("ix_callbacks_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String)  # 11 digits starting with 7 (validate_phone)
    application_id: Mapped[str | None] = mapped_column(String, nullable=True)
    group_id: Mapped[str] = mapped_column(String)
    priority: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String)  # ivr | api
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queue_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # ACD arrival no.
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)  # first arrival: orders the queue
    state: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer)  # calls to the citizen made so far
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_result: Mapped[str | None] = mapped_column(String, nullable=True)
    operator: Mapped[str | None] = mapped_column(String, nullable=True)
    node: Mapped[str | None] = mapped_column(String, nullable=True)  # the node holding the claim
    # until when the claim holds without renewal (migration 0005_callback_lease)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # collected in the menu / from the app
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "state": self.state,
            "group": self.group_id,
            "application_id": self.application_id,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_result": self.last_result,
        }


@dataclass(frozen=True)
class CallbackSettings:
    """Tunables of callbacks (the lead wires them in as ``[callbacks]``)."""

    max_attempts: int = 3  # calls to the citizen before the callback is failed
    retry_seconds: float = 300.0  # wait before the 2nd attempt
    retry_backoff: float = 2.0  # each further wait is this many times longer
    caller_ring_seconds: float = 30.0  # how long the citizen's phone rings
    poll_seconds: float = 5.0  # how often run() looks for due callbacks
    max_in_flight: int = 10  # callbacks one node holds in the queue at once
    default_window_hours: float = 24.0  # API request without window_end: start + this
    max_days_ahead: float = 14.0  # a window may not start later than this
    caller_channel: str = "Local/{phone}@hotline-callback-out"  # how the citizen is dialled
    operator_context: str = "hotline-callback-operator"
    caller_context: str = "hotline-callback-caller"
    caller_id: str = "88001000001"  # the number the citizen's phone shows
    response_grace_seconds: float = 10.0  # OriginateResponse later than Timeout + this: lost
    # A claimed callback's owner renews its lease every poll; a lease not renewed for this
    # long (the node died) lets any node put the callback back to pending.
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        # controller.settings turns these into a ConfigError naming the [callbacks] section
        if self.max_attempts < 1 or self.max_in_flight < 1:
            raise ValueError("max_attempts and max_in_flight must be at least 1")
        positive = ("retry_seconds", "caller_ring_seconds", "poll_seconds",
                    "default_window_hours", "max_days_ahead", "response_grace_seconds",
                    "lease_seconds")  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0")
        if self.retry_backoff < 1:
            raise ValueError("retry_backoff must be at least 1 (waits never shrink)")
        if self.lease_seconds <= self.poll_seconds:
            # renewed once per poll: a shorter lease would expire under a live node
            raise ValueError("lease_seconds must be greater than poll_seconds")


class CallbackRefused(ValueError):
    """A request that cannot be accepted; the message is Russian, for the app's screen."""

    def __init__(self, message: str, *, existing: int | None = None) -> None:
        super().__init__(message)
        self.existing = existing


class HoursLike(Protocol):
    """`hotline.hours.OpenHours` (what a group's schedule resolves to)."""

    def status(self, at: datetime) -> HoursStatus: ...


HoursFor = Callable[[Group], HoursLike | None]
"""A group's hours; None means round the clock. The lead maps ``group.schedule`` to hours."""


def window_overlaps_hours(hours: HoursLike | None, start: datetime, end: datetime) -> bool:
    """Is the group open at some moment in [start, end)?"""
    if hours is None:
        return True
    status = hours.status(start)
    if status.open:
        return True
    return status.opens_at is not None and status.opens_at < end


def _is_open(hours: HoursLike | None, at: datetime) -> bool:
    return hours is None or hours.status(at).open


# --- the table --------------------------------------------------------------------------------


class CallbackStore:
    """Rows of the callbacks table; every state change is a compare-and-set on ``state``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def add(self, **values: Any) -> Callback:
        row = Callback(**values)
        async with self._sessions.begin() as session:
            session.add(row)
        return row

    async def get(self, callback_id: int) -> Callback | None:
        async with self._sessions() as session:
            return await session.get(Callback, callback_id)

    async def active_for(self, phone: str, group_id: str) -> Callback | None:
        stmt = select(Callback).where(
            Callback.phone == phone, Callback.group_id == group_id, Callback.state.in_(ACTIVE)
        )
        async with self._sessions() as session:
            return (await session.execute(stmt.limit(1))).scalar_one_or_none()

    async def candidates(self, now: datetime, limit: int) -> list[Callback]:
        """Pending callbacks due now, in queue order (priority, then first arrival)."""
        stmt = (
            select(Callback)
            .where(
                Callback.state == S.PENDING.value,
                Callback.next_attempt_at <= now,
                (Callback.window_start.is_(None)) | (Callback.window_start <= now),
            )
            .order_by(Callback.priority.desc(), Callback.arrived_at, Callback.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def move(
        self,
        callback_id: int,
        expect: tuple[str, ...],
        state: str,
        now: datetime,
        *,
        owner: str | None = None,
        **values: Any,
    ) -> bool:
        """Set `state` (and `values`) only if the row is in one of `expect` (and, with `owner`,
        still held by that node); True if it was."""
        stmt = update(Callback).where(Callback.id == callback_id, Callback.state.in_(expect))
        if owner is not None:
            stmt = stmt.where(Callback.node == owner)
        stmt = stmt.values(state=state, updated_at=now, **values)
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def claim(
        self, callback_id: int, node: str, now: datetime, lease: timedelta = timedelta(minutes=1)
    ) -> bool:
        """The at-most-once step: exactly one node moves a pending row to reserved."""
        return await self.move(
            callback_id,
            (S.PENDING.value,),
            S.RESERVED.value,
            now,
            node=node,
            lease_until=now + lease,
        )

    async def renew(
        self, callback_ids: list[int], node: str, now: datetime, lease: timedelta
    ) -> int:
        """The owner is still working on these: push their leases forward."""
        if not callback_ids:
            return 0
        stmt = (
            update(Callback)
            .where(
                Callback.id.in_(callback_ids),
                Callback.node == node,
                Callback.state.in_(HELD),
            )
            .values(lease_until=now + lease)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0))

    async def take_back_expired(self, now: datetime) -> int:
        """Rows whose owner stopped renewing (a dead node) go back to pending, attempts kept."""
        stmt = (
            update(Callback)
            .where(Callback.state.in_(HELD), Callback.lease_until < now)
            .values(
                state=S.PENDING.value,
                node=None,
                operator=None,
                lease_until=None,
                last_result="node_lost",
                updated_at=now,
            )
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0))

    async def expire(self, now: datetime) -> int:
        stmt = (
            update(Callback)
            .where(Callback.state == S.PENDING.value, Callback.window_end <= now)
            .values(state=S.EXPIRED.value, updated_at=now, last_result="window_over")
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0))

    async def release_node(self, node: str, now: datetime) -> int:
        """A restarted node gives back what it held: its attempts died with the process."""
        stmt = (
            update(Callback)
            .where(Callback.node == node, Callback.state.in_(HELD))
            .values(
                state=S.PENDING.value, node=None, operator=None, lease_until=None, updated_at=now
            )
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0))


# --- originating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginateOutcome:
    answered: bool
    result: str  # answered | no_answer | busy | failed | congestion | hung_up | ami_error...
    channel: str = ""
    uniqueid: str = ""


class _Originator:
    """AMI Originate with the result of the call, correlated by ActionID."""

    def __init__(self, ami: AmiClient, grace: float) -> None:
        self._ami = ami
        self._grace = grace
        self._waiting: dict[str, asyncio.Future[OriginateOutcome]] = {}
        ami.on("OriginateResponse", self._on_response)

    def close(self) -> None:
        self._ami.off("OriginateResponse", self._on_response)

    def _on_response(self, event: AmiMessage) -> None:
        future = self._waiting.get(event.action_id or "")
        if future is None or future.done():
            return
        try:
            reason = int(event.get("Reason") or "0")
        except ValueError:
            reason = 0
        answered = (event.get("Response") or "").lower() == "success"
        future.set_result(
            OriginateOutcome(
                answered,
                "answered" if answered else REASONS.get(reason, f"reason_{reason}"),
                event.get("Channel") or "",
                event.get("Uniqueid") or "",
            )
        )

    async def call(
        self, tag: str, headers: list[tuple[str, str]], timeout_seconds: float
    ) -> OriginateOutcome:
        action_id = f"{tag}-{uuid.uuid4().hex[:12]}"
        future: asyncio.Future[OriginateOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = future  # before sending: the event may beat our await
        headers = [*headers, ("Timeout", str(max(1000, round(timeout_seconds * 1000))))]
        try:
            await self._ami.action("Originate", headers, ActionID=action_id, Async="true")
            async with asyncio.timeout(timeout_seconds + self._grace):
                return await future
        except TimeoutError:
            return OriginateOutcome(False, "ami_error: no OriginateResponse")
        except AmiError as exc:
            return OriginateOutcome(False, f"ami_error: {exc}"[:200])
        finally:
            self._waiting.pop(action_id, None)

    async def hang_up(self, channel: str) -> None:
        """Best effort: the dialplan also ends the operator's bridge on its own."""
        if not channel:
            return
        try:
            await self._ami.action("Hangup", Channel=channel)
        except AmiError as exc:
            # "No such channel": it ended first (its own dialplan, or the other side left).
            level = logging.DEBUG if "No such channel" in str(exc) else logging.WARNING
            log.log(level, "could not hang up %s: %s", channel, exc)


# --- the scheduler ----------------------------------------------------------------------------


class CallbackScheduler:
    """Accepts callback requests and places the calls; one per controller node."""

    def __init__(
        self,
        store: CallbackStore,
        node: AcdNode,
        ami: AmiClient,
        *,
        settings: CallbackSettings | None = None,
        hours_for: HoursFor | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.node = node
        self.settings = settings or CallbackSettings()
        self._hours_for = hours_for or (lambda group: None)
        self._now = now
        self._originator = _Originator(ami, self.settings.response_grace_seconds)
        self._ami = ami
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._operator_legs: dict[str, _OperatorLeg] = {}  # by uniqueid (or channel)
        ami.on("Hangup", self._on_hangup)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    # --- requests ---------------------------------------------------------------------

    async def request(
        self,
        *,
        phone: str,
        group: str,
        application_id: str | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        data: Mapping[str, str] | None = None,
        priority: int = 0,
    ) -> Callback:
        """A callback asked for through the API; raises `CallbackRefused` (Russian)."""
        number = self._phone(phone)
        group_def = self._group(group)
        app_id = None
        if application_id is not None and str(application_id).strip():
            checked = validate_application(str(application_id))
            if not checked:
                raise CallbackRefused(f"Номер заявления: {checked.reason}.")
            app_id = checked.normalized
        start, end = self._window(group_def, window_start, window_end)
        existing = await self.store.active_for(number, group)
        if existing is not None:
            raise CallbackRefused(
                "Обратный звонок на этот номер уже заказан.", existing=existing.id
            )
        now = self._now()
        return await self.store.add(
            phone=number,
            application_id=app_id,
            group_id=group,
            priority=priority,
            source="api",
            requested_at=now,
            window_start=start,
            window_end=end,
            queue_seq=None,
            arrived_at=start,
            state=S.PENDING.value,
            attempts=0,
            next_attempt_at=start,
            data=dict(data or {}),
            updated_at=now,
        )

    async def request_from_call(
        self,
        call_id: str,
        *,
        phone: str,
        group: str | None = None,
        data: Mapping[str, str] | None = None,
        caller_number: str = "",
    ) -> Callback:
        """The caller accepted the callback offer in the menu. Their place in the queue (and
        priority, group, collected data) is taken from the ACD if the call is still there
        (waiting, or overflowed: call this after ``connect_call`` returned an overflow); the
        call then leaves the queue. If the call already left the ACD, the place it left is
        taken from the ACD store's remembered places by `caller_number` (the ``number`` the
        call was queued with, its caller ID). Raises `CallbackRefused` for a number that cannot be
        called back. If the number already has a callback pending in the group, that one is
        returned (a caller pressing "1" twice gets one callback)."""
        number = self._phone(phone)
        caller = self.node.acd.callers.get(call_id)
        group_id = group or (caller.group if caller is not None else "")
        self._group(group_id)
        now = self._now()
        seq, priority, arrived, collected = None, 0, now, dict(data or {})
        if caller is not None and caller.group == group_id:
            seq, priority = caller.seq, caller.priority
            arrived = min(now, datetime.fromtimestamp(caller.first_arrival, now.tzinfo))
            collected = {**caller.data, **collected}
        if caller is not None and caller.state != "talking":
            await self.node.abandon(call_id)  # the callback now holds the place
        elif caller is None and caller_number:
            seq, priority, arrived = await self._left_place(caller_number, group_id, seq, now)
        existing = await self.store.active_for(number, group_id)
        if existing is not None:
            return existing
        return await self.store.add(
            phone=number,
            application_id=collected.get("application_id"),
            group_id=group_id,
            priority=priority,
            source="ivr",
            requested_at=now,
            window_start=None,
            window_end=None,
            queue_seq=seq,
            arrived_at=arrived,
            state=S.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            data={**collected, "call_id": call_id},
            updated_at=now,
        )

    async def _left_place(
        self, number: str, group_id: str, seq: int | None, now: datetime
    ) -> tuple[int | None, int, datetime]:
        """The place a call that already left the queue remembered under its number."""
        try:
            place = await self.node.store.recall_place(number)
        except StateUnavailable:
            place = None
        if place is None or place.get("group") != group_id:
            return seq, 0, now
        first = datetime.fromtimestamp(float(place.get("first_arrival", "0")), now.tzinfo)
        return int(place["seq"]), int(place.get("priority", "0")), min(now, first)

    def _phone(self, phone: str) -> str:
        checked = validate_phone(str(phone))
        if not checked:
            raise CallbackRefused(f"Неверный номер телефона: {checked.reason}.")
        return checked.normalized

    def _group(self, group_id: str) -> Group:
        group = self.node.acd.groups.get(group_id)
        if group is None:
            raise CallbackRefused("Неизвестная группа операторов.")
        return group

    def _window(
        self, group: Group, start: datetime | None, end: datetime | None
    ) -> tuple[datetime, datetime]:
        now = self._now()
        try:
            start = require_utc(start) if start is not None else now
            end = require_utc(end) if end is not None else None
        except ValueError:
            raise CallbackRefused(
                "Укажите время окна с часовым поясом, например 2026-12-01T10:00:00+03:00."
            ) from None
        if end is None:
            end = max(start, now) + timedelta(hours=self.settings.default_window_hours)
        if start >= end:
            raise CallbackRefused("Начало окна для звонка должно быть раньше его конца.")
        if end <= now:
            raise CallbackRefused("Окно для звонка уже прошло: выберите время в будущем.")
        if start > now + timedelta(days=self.settings.max_days_ahead):
            days = round(self.settings.max_days_ahead)
            raise CallbackRefused(f"Звонок можно заказать не более чем на {days} дней вперёд.")
        start = max(start, now)
        if not window_overlaps_hours(self._hours_for(group), start, end):
            raise CallbackRefused(
                "В выбранное время операторы этой группы не работают: выберите другое окно."
            )
        return start, end

    async def get(self, callback_id: int) -> Callback | None:
        return await self.store.get(callback_id)

    async def cancel(self, callback_id: int) -> bool:
        """Cancel a callback not yet dialling; False if it is already placed or over."""
        now = self._now()
        expect = (S.PENDING.value, S.RESERVED.value)
        if not await self.store.move(callback_id, expect, S.CANCELLED.value, now):
            return False
        task = self._tasks.get(callback_id)
        if task is not None:
            # Still queued for an operator here: stop it now. A task already reserving an
            # operator notices at its reserved->dialing step (also across nodes) and lets go.
            task.cancel()
        return True

    # --- scheduling -------------------------------------------------------------------

    async def start(self) -> int:
        """Take back this node's rows from before a restart; returns how many."""
        return await self.store.release_node(self.node.node_id, self._now())

    async def run_due(self) -> list[int]:
        """One pass: expire, then claim due callbacks and start serving them. Returns the ids
        this node claimed."""
        now = self._now()
        # Renew first: a slow pass must not let this node's own leases run out.
        await self.store.renew(list(self._tasks), self.node.node_id, now, self._lease)
        taken = await self.store.take_back_expired(now)
        if taken:
            log.warning("took back %s callback(s) of a node that stopped renewing", taken)
        await self.store.expire(now)
        free = self.settings.max_in_flight - len(self._tasks)
        if free <= 0:
            return []
        claimed: list[int] = []
        for row in await self.store.candidates(now, limit=free * 4):
            if len(claimed) >= free:
                break
            group = self.node.acd.groups.get(row.group_id)
            if group is None:
                await self.store.move(
                    row.id, (S.PENDING.value,), S.FAILED.value, now, last_result="unknown_group"
                )
                continue
            if not _is_open(self._hours_for(group), now):
                continue
            if self.node.acd.overflow_reason(row.group_id) is not None:
                continue  # closed or nobody logged in: leave it for later (or another node)
            if not await self.store.claim(row.id, self.node.node_id, now, self._lease):
                continue  # another node was quicker
            claimed.append(row.id)
            row.state, row.node = S.RESERVED.value, self.node.node_id
            task = asyncio.create_task(self._serve(row))
            self._tasks[row.id] = task
            task.add_done_callback(functools.partial(self._forget, row.id))
        return claimed

    def _forget(self, callback_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(callback_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll for due callbacks until `stop` is set; a database error is logged, not fatal."""
        while not stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("callback scheduling pass failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.poll_seconds)
            except TimeoutError:
                pass

    async def drain(self) -> None:
        """Wait until every callback this node is serving is done (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await self.drain()
        self._originator.close()
        self._ami.off("Hangup", self._on_hangup)

    # --- serving one callback ------------------------------------------------------------

    async def _serve(self, row: Callback) -> None:
        call_id = f"callback-{row.id}"
        queued = False
        try:
            await self._queue(row, call_id)
            queued = True
            offer = await self._next_offer(call_id)
            while offer is not None:
                outcome = await self._attempt(row, call_id, offer)
                if outcome is not None:
                    queued = outcome == "talking"
                    return
                offer = await self._next_offer(call_id)
            await self._leave_queue(call_id)
            queued = False
            await self._move(row, (S.RESERVED,), S.PENDING, node=None, last_result="overflow")
        except asyncio.CancelledError:
            if queued:
                await asyncio.shield(self._leave_queue(call_id))
            raise
        except Exception as exc:
            log.exception("callback %s: serving failed", row.id)
            if queued:
                await self._leave_queue(call_id)
            await self._move(
                row,
                (S.RESERVED, S.DIALING),
                S.PENDING,
                node=None,
                operator=None,
                last_result=f"error: {type(exc).__name__}",
                next_attempt_at=self._now() + timedelta(seconds=self.settings.retry_seconds),
            )

    async def _queue(self, row: Callback, call_id: str) -> None:
        """Put the callback into the ACD's queue at its kept place."""
        if row.queue_seq is None:
            try:
                row.queue_seq = await self.node.store.next_seq()
            except StateUnavailable as exc:
                log.warning("callback %s: no arrival number (%s); joins at the back", row.id, exc)
                await self.node.enqueue(call_id, row.group_id, priority=row.priority)
                return
            await self.store.move(
                row.id,
                (S.RESERVED.value,),
                S.RESERVED.value,
                self._now(),
                owner=self.node.node_id,
                queue_seq=row.queue_seq,
            )
        data = {
            **{k: str(v) for k, v in row.data.items()},
            "callback_id": str(row.id),
            "callback_phone": row.phone,
        }
        if row.application_id:
            data["application_id"] = row.application_id
        fields = {
            "group": row.group_id,
            "seq": str(row.queue_seq),
            "priority": str(row.priority),
            "number": "",
            "first_arrival": repr(row.arrived_at.timestamp()),
            "data": json.dumps(data, ensure_ascii=False),
            "history": "[]",
            "node": self.node.node_id,
        }
        try:
            # AcdNode.enqueue resumes a stored caller's place: this is how the kept place
            # reaches the core (and the other nodes, on Redis).
            await self.node.store.put_caller(call_id, fields)
        except StateUnavailable as exc:
            log.warning("callback %s: place not stored (%s); joins at the back", row.id, exc)
        await self.node.enqueue(call_id, row.group_id, priority=row.priority, data=data)

    async def _next_offer(self, call_id: str) -> Offer | None:
        picked = await self.node.wait_for_operator(call_id)
        return picked if isinstance(picked, Offer) else None

    async def _leave_queue(self, call_id: str) -> None:
        caller = self.node.acd.callers.get(call_id)
        if caller is None:
            return
        if caller.state == "talking":
            await self._release(call_id, caller.operator or "")
        else:
            await self.node.abandon(call_id)  # a ringing operator goes back to ready

    async def _release(self, call_id: str, op_id: str) -> None:
        """The operator talked to nobody: free them at once (no wrap-up to do)."""
        await self.node.end_call(call_id)
        if op_id:
            await self.node.wrap_up_done(op_id)

    async def _attempt(self, row: Callback, call_id: str, offer: Offer) -> str | None:
        """One try with a reserved operator. Returns None to try the next operator, or what
        became of the callback ("talking", "done")."""
        if not await self._move(row, (S.RESERVED,), S.DIALING, operator=offer.operator_id):
            await self.node.abandon(call_id)  # cancelled meanwhile: the operator is free again
            return "done"
        group = self.node.acd.groups[row.group_id]
        operator_leg = await self._originator.call(
            f"cb{row.id}-op",
            self._operator_headers(row),
            max(1.0, group.ring_seconds - 1.0),  # end before the ACD's own ring timer
        )
        operator_leg = _with_channel(operator_leg, offer.device)
        if not operator_leg.answered:
            return await self._operator_missed(row, call_id, operator_leg)
        try:
            await self.node.answer(call_id)
        except AcdError:  # the ring timer won the race: the ACD already moved on
            await self._originator.hang_up(operator_leg.channel)
            await self._move(row, (S.DIALING,), S.RESERVED, operator=None)
            return None
        # Follow the operator leg from now on: they may hang up while the citizen's phone rings.
        leg = _OperatorLeg(call_id)
        key = _leg_key(operator_leg)
        self._operator_legs[key] = leg
        try:
            caller_leg = await self._originator.call(
                f"cb{row.id}-caller", self._caller_headers(row), self.settings.caller_ring_seconds
            )
        except asyncio.CancelledError:
            self._operator_legs.pop(key, None)
            raise
        if leg.gone.is_set():
            return await self._operator_left(row, call_id, offer.operator_id, caller_leg)
        if caller_leg.answered:
            leg.connected = True  # no await since the check above: a Hangup now ends the talk
            await self._move(row, (S.DIALING,), S.CONNECTED, last_result="answered")
            log.info("callback %s connected to operator %s", row.id, offer.operator_id)
            return "talking"
        self._operator_legs.pop(key, None)
        await self._originator.hang_up(operator_leg.channel)
        await self._release(call_id, offer.operator_id)
        await self._retry_or_fail(row, caller_leg.result)
        return "done"

    async def _operator_left(
        self, row: Callback, call_id: str, op_id: str, caller_leg: OriginateOutcome
    ) -> str:
        """The operator hung up before the citizen answered. The conversation never began:
        the operator is ready again at once, and the citizen is called again soon, the attempt
        not counted against them (their leg, if it answered, was ended by its dialplan; the
        Hangup here is for a PBX without that guard)."""
        if caller_leg.answered:
            await self._originator.hang_up(caller_leg.channel)
        await self._release(call_id, op_id)
        log.warning("callback %s: operator %s hung up before the citizen answered", row.id, op_id)
        await self._move(
            row,
            (S.DIALING,),
            S.PENDING,
            node=None,
            operator=None,
            last_result="operator_left",
            next_attempt_at=self._now() + timedelta(seconds=self.settings.retry_seconds),
        )
        return "done"

    async def _operator_missed(
        self, row: Callback, call_id: str, leg: OriginateOutcome
    ) -> str | None:
        if leg.result.startswith("ami_error"):
            # Not the operator's fault: free them, and try the callback again later.
            await self.node.abandon(call_id)
            await self._move(
                row,
                (S.DIALING,),
                S.PENDING,
                node=None,
                operator=None,
                last_result=leg.result,
                next_attempt_at=self._now() + timedelta(seconds=self.settings.retry_seconds),
            )
            return "done"
        # As for a live call: the operator is paused "no answer", the callback stays first.
        await self.node.no_answer(call_id)
        await self._move(
            row, (S.DIALING,), S.RESERVED, operator=None, last_result=f"operator_{leg.result}"
        )
        return None

    async def _retry_or_fail(self, row: Callback, result: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self.settings.max_attempts:
            await self._move(
                row, (S.DIALING,), S.FAILED, attempts=attempts, last_result=result, node=None
            )
            log.info("callback %s failed after %s attempts (%s)", row.id, attempts, result)
            return
        wait = self.settings.retry_seconds * self.settings.retry_backoff ** (attempts - 1)
        await self._move(
            row,
            (S.DIALING,),
            S.PENDING,
            attempts=attempts,
            last_result=result,
            node=None,
            operator=None,
            next_attempt_at=self._now() + timedelta(seconds=wait),
        )

    async def _move(
        self, row: Callback, expect: tuple[CallbackState, ...], state: CallbackState, **values: Any
    ) -> bool:
        moved = await self.store.move(
            row.id,
            tuple(s.value for s in expect),
            state.value,
            self._now(),
            owner=self.node.node_id,  # a row taken back after a lost lease is no longer ours
            **values,
        )
        if moved:
            row.state = state.value
            for key, value in values.items():
                setattr(row, key, value)
        return moved

    def _variables(self, row: Callback) -> list[tuple[str, str]]:
        return [
            ("Variable", f"CALLBACK_ID={row.id}"),
            ("Variable", f"CALLBACK_BRIDGE=hotline-callback-{row.id}"),
        ]

    def _operator_headers(self, row: Callback) -> list[tuple[str, str]]:
        assert row.operator is not None
        device = self.node.acd.operators[row.operator].spec.device
        return [
            ("Channel", device),
            ("Context", self.settings.operator_context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", f'"Обратный звонок" <{row.phone}>'),
            *self._variables(row),
        ]

    def _caller_headers(self, row: Callback) -> list[tuple[str, str]]:
        return [
            ("Channel", self.settings.caller_channel.format(phone=row.phone)),
            ("Context", self.settings.caller_context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", f"<{self.settings.caller_id}>"),
            *self._variables(row),
        ]

    async def _on_hangup(self, event: AmiMessage) -> None:
        """An operator leg of a callback hung up: the conversation is over, or, during the
        citizen's ring, never began (`_attempt` sees ``gone`` and cleans up)."""
        leg = self._operator_legs.pop(event.get("Uniqueid") or "", None)
        if leg is None:
            leg = self._operator_legs.pop(event.get("Channel") or "", None)
        if leg is None:
            return
        if not leg.connected:
            leg.gone.set()
            return
        caller = self.node.acd.callers.get(leg.call_id)
        if caller is not None and caller.state == "talking":
            await self.node.end_call(leg.call_id)  # the operator goes into wrap-up as usual


@dataclass
class _OperatorLeg:
    """An answered operator leg of a callback, followed until its Hangup."""

    call_id: str
    connected: bool = False  # the citizen answered too
    gone: asyncio.Event = field(default_factory=asyncio.Event)


def _leg_key(leg: OriginateOutcome) -> str:
    """How a Hangup event names the leg: its uniqueid, or its channel if Asterisk gave none."""
    if leg.uniqueid and leg.uniqueid != "<unknown>":
        return leg.uniqueid
    return leg.channel


def _with_channel(outcome: OriginateOutcome, device: str) -> OriginateOutcome:
    """Asterisk names the answered channel; keep the device if it did not."""
    if outcome.channel:
        return outcome
    return OriginateOutcome(outcome.answered, outcome.result, device, outcome.uniqueid)
