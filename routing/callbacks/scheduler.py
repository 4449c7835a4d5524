"""Callbacks: the ACD calls a caller back instead of keeping them on hold.

This module owns `CallbackScheduler` (one per controller node): taking requests, and finding,
claiming and handing over due callbacks. Its neighbours: `model` (the row and its states),
`settings`, `store` (the table, claims and leases), `originate` (dialling one claimed
callback), `live_legs` (is a call whose result the AMI link lost still up?), `http` (the
mobile app's routes).

Two ways in:

- From a call (the menu's overflow path: "press 1 and we will call you back"): the menu calls
  ``await scheduler.request_from_call(session.call_id, phone=..., group=...)`` after
  `routing.connect.connect_call` returned an overflow (or while the caller still waits). The
  caller's place (arrival number, priority, first arrival) is taken from the ACD, the caller
  leaves the queue, and the callback later re-enters the queue *at that place*.
- From the HTTP API (the mobile app, `routing.callbacks.http`): phone, application id, group
  and a preferred window; the callback joins the group's queue when its window opens.

Both ways the number must be one callbacks may call (`routing.callbacks.numbers`), and the
booking (`CallbackStore.book`) refuses a number with a callback pending in any group and
requests over the rate limits of `CallbackSettings` (per number a day, per requester a minute
and a day, per group an hour for the API), counted in the shared database. A rate-limited
request is a security event (``rate_limited``); refusals name nothing of other requests.

``run_due`` (every ``poll_seconds``) expires callbacks whose window has ended, then picks
pending ones that are due (``next_attempt_at`` reached, inside their window, group open by
its hours, somebody logged in) in queue order (priority, then arrival), each group up to
its own ``max_in_flight`` (so a flood in one group never holds another group's callbacks
back from their ready operators), and *claims* each
with ``UPDATE callbacks SET state='reserved', node=<me> WHERE id=? AND state='pending'``:
one row, one winner, whatever number of nodes race for it (at-most-once). Each claimed row is
then served by `routing.callbacks.originate.CallbackDialler` (operator first, then the
citizen; retries with back-off after a call the citizen did not take).

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
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from hotline.ami.client import AmiClient
from hotline.security import SecurityCategory, security_event
from hotline.store.db import require_utc, utc_now
from hotline.store.state import StateUnavailable
from hotline.validators import validate_application, validate_phone
from routing.callbacks.model import (
    Callback,
    CallbackRefused,
    HoursFor,
    Refusal,
    is_open_at,
    window_overlaps_hours,
)
from routing.callbacks.model import CallbackState as S
from routing.callbacks.numbers import DEFAULT_RULES, NumberRules, normalise_phone
from routing.callbacks.originate import CallbackDialler
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import BookingRefused, CallbackStore, Quota
from routing.groups import Group
from routing.metrics import CALLBACKS_DUE, CALLBACKS_PENDING
from routing.node import AcdNode

__all__ = ["CallbackScheduler"]

log = logging.getLogger("hotline.routing.callbacks")


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
        numbers: Callable[[], NumberRules] = lambda: DEFAULT_RULES,
    ) -> None:
        self.store = store
        self._numbers = numbers  # the allow-list in force (NumbersFile re-reads its file)
        self.node = node
        self.settings = settings or CallbackSettings()
        self._hours_for = hours_for or (lambda group: None)
        self._now = now
        # the dialler reads the clock through us: a test moving `_now` moves both
        self._dialler = CallbackDialler(store, node, ami, self.settings, lambda: self._now())
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._group_of: dict[int, str] = {}  # the group of each callback in _tasks

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
        requester: str | None = None,
    ) -> Callback:
        """A callback asked for through the API by `requester` (``<kind>:<user id>`` of a
        service key or a staff member; None: an internal caller, no per-requester limits);
        raises `CallbackRefused` (Russian)."""
        number = self._phone(phone)
        group_def = self._group(group)
        app_id = None
        if application_id is not None and str(application_id).strip():
            checked = validate_application(str(application_id))
            if not checked:
                raise CallbackRefused(f"Номер заявления: {checked.reason}.")
            app_id = checked.normalized
        start, end = self._window(group_def, window_start, window_end)
        now = self._now()
        values = self._pending(
            now,
            phone=number,
            application_id=app_id,
            group_id=group,
            priority=priority,
            source="api",
            requested_by=requester,
            window_start=start,
            window_end=end,
            queue_seq=None,
            arrived_at=start,
            next_attempt_at=start,
            data=dict(data or {}),
        )
        try:
            return await self.store.book(values, self._quotas(now, values))
        except BookingRefused as refused:
            raise self._refusal(refused, values) from None

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
        called back, one pending in another group (one per number) or over the number's daily
        limit. If the number already has a callback pending in the group, that one is
        returned (a caller pressing "1" twice gets one callback)."""
        number = self._phone(phone)
        caller = self.node.acd.callers.get(call_id)
        group_id = group or (caller.group if caller is not None else "")
        self._group(group_id)
        booked = await self.store.active_for(number)  # checked again under the booking lock
        if booked is not None and booked.group_id != group_id:
            # refused before the caller leaves the queue: they keep waiting instead
            raise CallbackRefused(
                "Обратный звонок на этот номер уже заказан.", why=Refusal.DUPLICATE
            )
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
        values = self._pending(
            now,
            phone=number,
            application_id=collected.get("application_id"),
            group_id=group_id,
            priority=priority,
            source="ivr",
            window_start=None,
            window_end=None,
            queue_seq=seq,
            arrived_at=arrived,
            next_attempt_at=now,
            data={**collected, "call_id": call_id},
        )
        try:
            return await self.store.book(values, self._quotas(now, values))
        except BookingRefused as refused:
            existing = refused.existing
            if existing is not None and existing.group_id == group_id:
                return existing  # pressed "1" twice: one callback
            raise self._refusal(refused, values) from None

    @staticmethod
    def _pending(now: datetime, **values: Any) -> dict[str, Any]:
        """A new callback's row requested `now`: pending, no attempt made yet."""
        return {"requested_at": now, "state": S.PENDING.value, "attempts": 0,
                "updated_at": now, **values}  # fmt: skip

    def _quotas(self, now: datetime, values: Mapping[str, Any]) -> list[Quota]:
        """The rate limits a new callback must fit in (see `CallbackSettings`)."""
        s, day = self.settings, now - timedelta(days=1)
        quotas = [Quota("phone_day", "phone", values["phone"], day, s.per_phone_per_day)]
        if values["source"] == "api":
            hour = now - timedelta(hours=1)
            group = Quota("group_hour", "group_id", values["group_id"], hour,
                          s.per_group_per_hour, api_only=True)  # fmt: skip
            quotas.append(group)
        requester = values.get("requested_by")
        if requester is not None:
            minute = now - timedelta(minutes=1)
            quotas += [
                Quota("requester_minute", "requested_by", requester, minute,
                      s.per_requester_per_minute),
                Quota("requester_day", "requested_by", requester, day, s.per_requester_per_day),
            ]  # fmt: skip
        return quotas

    @staticmethod
    def _refusal(refused: BookingRefused, values: Mapping[str, Any]) -> CallbackRefused:
        """What the requester is told: nothing of the other request or of the counts."""
        if refused.existing is not None:
            return CallbackRefused(
                "Обратный звонок на этот номер уже заказан.", why=Refusal.DUPLICATE
            )
        security_event(
            SecurityCategory.RATE_LIMITED,
            "callback refused: over its rate limit",
            limit=refused.reason,
            requester=values.get("requested_by") or values["source"],
            group=values["group_id"],
        )
        return CallbackRefused(
            "Слишком много заявок на обратный звонок. Попробуйте позже.",
            why=Refusal.RATE_LIMITED,
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
        """The number as 11 digits starting with 7, if callbacks may call it."""
        number = normalise_phone(str(phone))
        if number is None:
            reason = validate_phone(str(phone)).reason or "ожидается российский номер, +7..."
            raise CallbackRefused(f"Неверный номер телефона: {reason}.")
        if not self._numbers().permits(number):
            raise CallbackRefused(
                "На этот номер обратный звонок не заказать: мы перезваниваем только на "
                "российские мобильные и городские номера.",
                why=Refusal.NUMBER,
            )
        return number

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

    async def get_public(self, public_id: str) -> Callback | None:
        """The callback the API knows as `public_id`."""
        return await self.store.get_public(public_id)

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
        # Each group has its own max_in_flight slots: a flood booked into one group fills
        # only that group's, and another group's callback is claimed as soon as it is due.
        held = Counter(self._group_of.values())
        claimed: list[int] = []
        for row in await self.store.candidates(now, per_group=self.settings.max_in_flight * 2):
            if held[row.group_id] >= self.settings.max_in_flight:
                continue
            if not await self._may_claim(row, now):
                continue
            if not await self.store.claim(row.id, self.node.node_id, now, self._lease):
                continue  # another node was quicker
            claimed.append(row.id)
            held[row.group_id] += 1
            self._serve(row)
        return claimed

    async def _may_claim(self, row: Callback, now: datetime) -> bool:
        """Is the row's group there, open and staffed? A row of a group gone is failed."""
        group = self.node.acd.groups.get(row.group_id)
        if group is None:
            await self.store.move(
                row.id, (S.PENDING.value,), S.FAILED.value, now, last_result="unknown_group"
            )
            return False
        if not is_open_at(self._hours_for(group), now):
            return False
        # closed or nobody logged in: leave it for later (or another node)
        return self.node.acd.overflow_reason(row.group_id) is None

    def _serve(self, row: Callback) -> None:
        row.state, row.node = S.RESERVED.value, self.node.node_id
        task = asyncio.create_task(self._dialler.serve(row))
        self._tasks[row.id] = task
        self._group_of[row.id] = row.group_id
        task.add_done_callback(functools.partial(self._forget, row.id))

    def _forget(self, callback_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(callback_id, None)
        self._group_of.pop(callback_id, None)

    async def count_backlog(self) -> dict[str, tuple[int, int]]:
        """Publish (and return) each group's pending and due callbacks as gauges: a backlog
        that grows (nobody logged in, AMI away, dialling off) is what the alert watches."""
        backlog = await self.store.backlog(self._now())
        for group_id in set(self.node.acd.groups) | set(backlog):
            pending, due = backlog.get(group_id, (0, 0))
            CALLBACKS_PENDING.labels(group=group_id).set(pending)
            CALLBACKS_DUE.labels(group=group_id).set(due)
        return backlog

    async def run(self, stop: asyncio.Event, *, place_calls: bool = True) -> None:
        """Poll until `stop` is set: place due callbacks (unless not `place_calls`: without
        AMI), then count the backlog; a database error is logged, not fatal."""
        while not stop.is_set():
            try:
                if place_calls:
                    await self.run_due()
                await self.count_backlog()
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
        self._dialler.close()
