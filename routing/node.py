"""One controller node's ACD: the routing core driven on the wall clock, with its state
mirrored in an `AcdStore` (in process, or Redis shared by several nodes).

Every decision is made by the core (routing.acd) and then *confirmed* by an atomic claim on
the store; a claim lost to another node is revoked in the core (the caller keeps their place)
and the next candidate is tried. The store is the truth for operators across nodes: every write
to an operator is published (Redis pub/sub, from inside the same Lua script) and each node's
`follow` task applies it, so an operator made ready on node A is offered to a caller waiting
on node B within a round trip. Callers live on the node whose FastAGI session holds them;
across nodes, arrival order is kept per node and approximately between nodes (the node that
hears of a free operator first claims it for its own best caller).

Degraded mode (`routing.failover`): when the store raises `StateUnavailable` the node copies
what its core knows into an in-process store and keeps routing on that, raising an alarm;
`recover()` (called periodically by `run`) goes back to Redis once it answers. While degraded,
two nodes may offer the same operator: that is the price of staying up, and why the alarm
exists.

Restart: waiting callers keep their place. Their records (arrival number, priority, data)
stay in the store; when Asterisk hands the same channel (same uniqueid) back over FastAGI,
`enqueue` finds the record and reuses it. `start()` rebuilds operator states from the store.

A node that never comes back (`routing.lost_nodes`): every node refreshes a heartbeat in the
store (from `run`) and sweeps the store for callers whose node's heartbeat is gone
(`sweep_lost_callers`): they are removed as abandoned, their places remembered.

Hooks for the FastAGI entry (the lead wires them): `enqueue` then
``offer = await node.wait_for_operator(call_id)``; the session EXECs ``Dial`` to
``offer.device`` (see routing/__init__.py), then reports `answer`, `end_call` or `no_answer`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from routing.acd import Acd
from routing.failover import StoreFailover
from routing.groups import Group
from routing.lost_nodes import LostNodeSweeper
from routing.metrics import ACD_CLAIMS, ACD_STATE_ERRORS
from routing.model import (
    NO_ANSWER,
    AcdError,
    Offer,
    OfferWithdrawn,
    Overflow,
    TickEvents,
    caller_fields,
    operator_fields,
)
from routing.operator_watch import OperatorWatch
from routing.operators import OperatorSpec, OperatorState
from routing.state import AcdStore, Fields, StateUnavailable

__all__ = ["AcdNode"]

log = logging.getLogger("hotline.routing")
T = TypeVar("T")
S = OperatorState


class AcdNode:
    def __init__(
        self,
        acd: Acd,
        store: AcdStore,
        *,
        node_id: str,
        on_degraded: Callable[[str], None] | None = None,
        heartbeat_seconds: float = 5.0,
        node_lost_seconds: float = 30.0,
    ) -> None:
        if not 0 < heartbeat_seconds < node_lost_seconds:
            raise ValueError("need 0 < heartbeat_seconds < node_lost_seconds")
        self.heartbeat_seconds = heartbeat_seconds
        self.node_lost_seconds = node_lost_seconds
        self.acd = acd
        self.node_id = node_id
        self._failover = StoreFailover(store, acd, node_id, on_degraded)
        self._do = self._failover.do
        self._call = self._failover.call
        self._lost = LostNodeSweeper(
            acd,
            node_id,
            self._failover.call,
            heartbeat_seconds=heartbeat_seconds,
            node_lost_seconds=node_lost_seconds,
        )
        self._waiters: dict[str, asyncio.Future[Offer | Overflow]] = {}
        self.watch = OperatorWatch(acd)  # operators' moves, told after each operation

    # --- shared state (routing.failover) ---------------------------------------------------

    @property
    def primary(self) -> AcdStore:
        """The shared store (Redis, or in process for one node)."""
        return self._failover.primary

    @property
    def store(self) -> AcdStore:
        """The store in use: the primary, or its in-process copy while degraded."""
        return self._failover.store

    @property
    def degraded(self) -> bool:
        return self._failover.degraded

    async def recover(self) -> bool:
        """Degraded and Redis answers again: write our view back; True once on shared state."""
        return await self._failover.recover()

    async def start(self) -> None:
        """Rebuild operator states from the store (restart); unknown operators are logged out."""
        await self.beat()
        records = await self._do("start", lambda s: s.operators())
        for op_id in self.acd.operators:
            record = records.get(op_id)
            if record is None:
                await self._call("put_operator", op_id, operator_fields(self.acd.operators[op_id]))
                continue
            self._apply(op_id, record)

    def _apply(self, op_id: str, record: Fields) -> list[Offer]:
        state = OperatorState(record.get("state", "logged_out"))
        return self.acd.sync_operator(
            op_id,
            state,
            device_available=record.get("device", "1") != "0",
            reason=record.get("reason") or None,
            call_id=record.get("call") or None,
        )

    async def refresh_operator(self, op_id: str) -> list[Offer]:
        """Another node changed this operator (pub/sub or a periodic sweep): take its state."""
        if self._busy_here(op_id):
            return []
        record = await self._do("refresh", lambda s: s.operator(op_id))
        if record is None or self._busy_here(op_id):  # re-checked: the read took a while
            return []
        return await self._confirm(self._apply(op_id, record))

    def _busy_here(self, op_id: str) -> bool:
        """Ringing or talking on one of our calls: no other node changes them (reads stale)."""
        op = self.acd.operators[op_id]
        return op.call_id is not None and op.state in (S.RINGING, S.TALKING)

    async def follow(self) -> None:
        """Apply other nodes' operator changes until the store fails (`run` resumes it)."""
        try:
            async for op_id in self.store.changes():
                if op_id in self.acd.operators:
                    await self.refresh_operator(op_id)
        except StateUnavailable as exc:
            ACD_STATE_ERRORS.labels("follow").inc()
            await self._failover.degrade(str(exc))

    async def _confirm(self, offers: Iterable[Offer]) -> list[Offer]:
        """Claim each offer on the store; lost claims are revoked and retried for the caller."""
        pending, confirmed = list(offers), []
        while pending:
            offer = pending.pop(0)
            won = bool(await self._call("claim", offer.call_id, offer.operator_id, self.node_id))
            ACD_CLAIMS.labels("won" if won else "lost").inc()
            if won:
                confirmed.append(offer)
                self._deliver(offer)
                continue
            record: Fields = await self._call("operator", offer.operator_id) or {}
            state = OperatorState(record.get("state", "logged_out"))
            if state is S.READY:
                state = S.PAUSED  # ready but refused: phone unavailable; never offer it again
            self.acd.revoke(offer, state, record.get("reason") or None)
            pending.extend(self.acd.serve(offer.call_id))
        self.watch.check()  # every path that moves operators ends here, or in answer/end_call
        return confirmed

    def _deliver(self, offer: Offer) -> None:
        future = self._waiters.get(offer.call_id)
        if future is not None and not future.done():
            future.set_result(offer)

    async def wait_for_operator(self, call_id: str) -> Offer | Overflow:
        """Resolves when an operator is to ring for this caller, or with an `Overflow`."""
        future = self._waiters.get(call_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiters[call_id] = future
            caller = self.acd.callers.get(call_id)
            if caller is not None and caller.state == "ringing" and caller.operator:
                op = self.acd.operators[caller.operator]
                future.set_result(
                    Offer(call_id, op.id, op.spec.device, caller.group, op.until or 0.0)
                )
        return await asyncio.shield(future)

    # --- operators ------------------------------------------------------------------------

    async def _operator_change(
        self, op_id: str, change: Callable[[], list[Offer] | None]
    ) -> list[Offer]:
        """Apply a change in the core, then compare-and-set it on the store: if another node
        moved the operator meanwhile, take the store's state and re-apply the change once
        (which re-validates it and may raise `InvalidTransition`)."""
        for attempt in range(2):
            before = self.acd.operator(op_id).state.value
            offers = change() or []  # validates the transition before touching the store
            fields = operator_fields(self.acd.operators[op_id])
            if offers:
                # Publish "ready"; the claim that follows checks it like any node's would.
                fields = {**fields, "state": "ready", "call": ""}
            moved = await self._call(
                "move_operator", op_id, fields["state"], expect=(before,), fields=fields
            )
            if moved:
                log.info("operator %s: %s -> %s", op_id, before, fields["state"])
                return await self._confirm(offers)
            record: Fields | None = await self._call("operator", op_id)
            if record is None:  # first appearance in shared state
                await self._call("put_operator", op_id, fields)
                return await self._confirm(offers)
            for offer in offers:
                self.acd.revoke(offer, OperatorState(record.get("state", "logged_out")))
            await self._confirm(self._apply(op_id, record))
            if attempt == 1:
                break
        return []

    async def sync_operators(self) -> list[Offer]:
        """Take every operator's state from the store (another node may have changed them)."""
        records: dict[str, Fields] = await self._call("operators")
        offers: list[Offer] = []
        for op_id, record in records.items():
            if op_id not in self.acd.operators or self._busy_here(op_id):
                continue
            if self._differs(op_id, record):
                offers.extend(self._apply(op_id, record))
        return await self._confirm(offers)

    def _differs(self, op_id: str, record: Fields) -> bool:
        mine = operator_fields(self.acd.operators[op_id])
        return any(mine[k] != record.get(k, "") for k in ("state", "device", "call"))

    async def login(self, op_id: str, *, paused_reason: str | None = None) -> list[Offer]:
        return await self._operator_change(
            op_id, lambda: self.acd.login(op_id, paused_reason=paused_reason)
        )

    async def ready(self, op_id: str) -> list[Offer]:
        return await self._operator_change(op_id, lambda: self.acd.ready(op_id))

    async def wrap_up_done(self, op_id: str) -> list[Offer]:
        return await self._operator_change(op_id, lambda: self.acd.wrap_up_done(op_id))

    async def pause(self, op_id: str, reason: str) -> None:
        await self._operator_change(op_id, lambda: self.acd.pause(op_id, reason))

    async def logout(self, op_id: str) -> None:
        await self._operator_change(op_id, lambda: self.acd.logout(op_id))

    async def set_device_available(self, op_id: str, available: bool) -> list[Offer]:
        return await self._operator_change(
            op_id, lambda: self.acd.set_device_available(op_id, available)
        )

    # --- admin edits (routing.admin): groups and operators replaced while calls go on ------

    async def apply_groups(self, groups: Mapping[str, Group]) -> list[Offer]:
        """New group settings for the core; offers they make possible are claimed as usual."""
        return await self._confirm(self.acd.set_groups(groups))

    async def apply_operator(self, spec: OperatorSpec) -> list[Offer]:
        """A new or edited operator; a new one is written to shared state logged out."""
        new = spec.id not in self.acd.operators
        offers = self.acd.set_operator(spec)
        if new:
            await self._call("put_operator", spec.id, operator_fields(self.acd.operators[spec.id]))
        return await self._confirm(offers)

    def remove_operator(self, op_id: str) -> None:
        """A logged-out operator leaves the core (their shared record stays, unread)."""
        self.acd.remove_operator(op_id)

    # --- callers --------------------------------------------------------------------------

    async def enqueue(
        self,
        call_id: str,
        group_id: str,
        *,
        number: str = "",
        priority: int = 0,
        data: Mapping[str, str] | None = None,
        history: Iterable[str] = (),
        arrived_at: float | None = None,
    ) -> list[Offer]:
        """Queue a caller. A call already stored (its node restarted), one whose `arrived_at`
        came on the channel (`routing.arrival`) or a number back within the recall window
        resumes its old place; otherwise it arrives now with a new number."""
        record = await self._do("enqueue", lambda s: s.caller(call_id))
        if record is None and number and arrived_at is None:
            record = await self._do("enqueue", lambda s: s.recall_place(number))
            if record is not None and not self._may_resume(record, group_id):
                record = None
        if record is not None:
            place = (
                int(record["seq"]),
                int(record.get("priority", "0")),
                float(record.get("first_arrival", "0")),
            )
            data = data or json.loads(record.get("data", "{}"))
            history = history or json.loads(record.get("history", "[]"))
        else:
            arrival = self.acd.clock() if arrived_at is None else arrived_at
            place = (await self._do("seq", lambda s: s.next_seq()), priority, arrival)
        self._waiters[call_id] = asyncio.get_running_loop().create_future()
        offers = self.acd.enqueue(
            call_id,
            group_id,
            number=number,
            priority=priority,
            data=data,
            history=history,
            place=place,
        )
        fields = caller_fields(self.acd.callers[call_id], self.node_id)
        await self._do("enqueue", lambda s: s.put_caller(call_id, fields))
        return await self._confirm(offers)

    async def no_answer(self, call_id: str) -> list[Offer]:
        """The operator's phone did not pick up: pause them ("no answer"), caller keeps the head."""
        missed, offers = self.acd.no_answer(call_id)
        if missed is not None:
            self._waiters[call_id] = asyncio.get_running_loop().create_future()
            await self._call("unclaim", call_id, missed.operator_id, "paused", NO_ANSWER)
        return await self._confirm(offers)

    async def answer(self, call_id: str, *, at: float | None = None) -> None:
        caller = self.acd.caller(call_id)
        op_id = caller.operator or ""
        if caller.state != "ringing" or not op_id:
            raise AcdError(f"call {call_id!r} is not ringing an operator")
        if not await self._call("answer", call_id, op_id):
            # The pairing is gone from shared state: take the operator's real state (the
            # caller goes back to their place) and tell the driver the offer is void.
            await self.refresh_operator(op_id)
            raise OfferWithdrawn(f"call {call_id!r}: the offer to {op_id} is no longer valid")
        self.acd.answer(call_id, at=at)
        self.watch.check()

    async def end_call(self, call_id: str) -> None:
        op_id = self.acd.caller(call_id).operator or ""
        self.acd.end_call(call_id)
        self._waiters.pop(call_id, None)
        await self._call("finish", call_id, op_id, operator_fields(self.acd.operators[op_id]))
        self.watch.check()

    def _may_resume(self, place: Fields, group_id: str) -> bool:
        """A remembered place is this caller's again only in the same group and within the
        recall window. The stores keep places about that long (Redis expires them on its own
        clock), but the window is the ACD's, on the ACD's clock, whichever store holds them."""
        if place.get("group") != group_id:
            return False
        try:
            left_at = float(place["left_at"])
        except (KeyError, ValueError):
            return False  # a place from before left_at was kept: its age is unknown
        return self.acd.clock() - left_at <= self.acd.settings.recall_window_seconds

    async def abandon(self, call_id: str, *, counted: bool = True) -> list[Offer]:
        """The caller hung up (`counted`) or was handed back: out of the queue, place kept."""
        caller = self.acd.callers.get(call_id)
        if caller is None:
            return []
        op_id = caller.operator if caller.state == "ringing" else None
        place = {
            **caller_fields(self.acd.callers[call_id], self.node_id),
            "group": caller.group,
            "left_at": repr(self.acd.clock()),  # the recall window runs from here
        }
        offers = self.acd.abandon(call_id, counted=counted)
        self._waiters.pop(call_id, None)
        if op_id is not None:
            await self._do("abandon", lambda s: s.unclaim(call_id, op_id, "ready"))
        await self._do("abandon", lambda s: s.remove_caller(call_id))
        if caller.number:
            window = self.acd.settings.recall_window_seconds
            await self._do("abandon", lambda s: s.remember_place(caller.number, place, window))
        return await self._confirm(offers)

    async def escalate(self, call_id: str, group_id: str, *, note: str = "") -> list[Offer]:
        op_id = self.acd.caller(call_id).operator or ""
        offers = self.acd.escalate(call_id, group_id, note=note)
        self._waiters[call_id] = asyncio.get_running_loop().create_future()
        await self._call("finish", call_id, op_id, operator_fields(self.acd.operators[op_id]))
        await self._call(
            "put_caller", call_id, caller_fields(self.acd.callers[call_id], self.node_id)
        )
        return await self._confirm(offers)

    async def tick(self) -> TickEvents:
        """Run due timers; ring timeouts are written back (operator paused "no answer")."""
        events = self.acd.tick()
        for missed in events.no_answer:
            self._waiters[missed.call_id] = asyncio.get_running_loop().create_future()
            await self._call("unclaim", missed.call_id, missed.operator_id, "paused", NO_ANSWER)
        for overflow in events.overflows:
            future = self._waiters.get(overflow.call_id)
            if future is not None and not future.done():
                future.set_result(overflow)
        for op_id in events.readied:
            # publish "ready" before claiming, so the claim checks it like any node's would
            fields = {**operator_fields(self.acd.operators[op_id]), "state": "ready", "call": ""}
            await self._call("move_operator", op_id, "ready", expect=("wrap_up",), fields=fields)
        events.offers = await self._confirm(events.offers)
        return events

    async def run(
        self, stop: asyncio.Event, resolution: float = 0.05, recover_every: float = 5.0
    ) -> None:
        """Drive timers on the wall clock until `stop` is set; never dies on a store error.
        While degraded, Redis is re-tried every `recover_every` seconds in the background so
        a slow connect timeout never holds up ring and wrap-up timers."""
        recovering: asyncio.Task[bool] | None = None
        following: asyncio.Task[None] | None = None
        last_try = float("-inf")
        housekeeping = asyncio.create_task(self._lost.run())
        while not stop.is_set():
            if not self.degraded and (following is None or following.done()):
                following = asyncio.create_task(self.follow())
                if recovering is not None:  # changes published while we were away
                    recovering = None
                    await self._sync_quietly()
            deadline = self.acd.next_deadline()
            delay = resolution if deadline is None else max(0.0, deadline - self.acd.clock())
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(delay, resolution))
            except TimeoutError:
                pass
            await self.tick()
            now = time.monotonic()
            idle = recovering is None or recovering.done()
            if self.degraded and idle and now - last_try >= recover_every:
                last_try, recovering = now, asyncio.create_task(self.recover())
        for task in (recovering, following, housekeeping):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def beat(self) -> None:
        """Tell the other nodes this one is alive for the next ``node_lost_seconds``."""
        await self._lost.beat()

    async def sweep_lost_callers(self) -> list[str]:
        """Remove the callers of nodes whose heartbeat is gone; returns their call ids."""
        return await self._lost.sweep()

    async def _sync_quietly(self) -> None:
        try:
            await self.sync_operators()
        except StateUnavailable:
            pass  # _call already degraded the node
