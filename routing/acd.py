"""The ACD core: who answers which waiting caller, and when. Pure, synchronous, clock-injected.

No I/O and no asyncio here: the controller (routing.node) and the discrete-event simulator
(routing.des) drive the same `Acd` object, the first on the wall clock, the second on a
simulated one. Everything time-dependent reads ``clock()`` (seconds, monotonic).

API for a driver::

    acd = Acd(groups, operators, clock=sim.now, is_open=lambda group, now: True,
              settings=AcdSettings(recall_window_seconds=600, service_level_seconds=20))
    acd.login(op_id) / acd.ready(op_id) / acd.pause(op_id, reason) / acd.logout(op_id)
    acd.set_device_available(op_id, False)      # unregistered phones are never offered calls
    offers = acd.enqueue(call_id, group_id, number="+7...", priority=0, data={}, history=[])
    reason = acd.overflow_reason(group_id)      # before enqueueing: "closed" | "nobody_logged_in"
    acd.answer(call_id, at=None)                # the operator picked up    -> talking
    offers = acd.no_answer(call_id)[1]          # Dial said NOANSWER before the ring timer
    acd.end_call(call_id)                       # conversation over         -> wrap_up (timed)
    offers = acd.wrap_up_done(op_id)            # early "ready" from the operator
    offers = acd.abandon(call_id)               # caller gave up / was cut off (place remembered)
    offers = acd.escalate(call_id, "tech2", note="...")   # keeps data, history and place
    events = acd.tick()                         # timers due now: ring timeouts, wrap-up ends,
                                                # widening, max-wait overflows
    acd.next_deadline()                         # when tick() next has work (None = no timer)
    acd.expected_wait(group_id)                 # seconds, for announcements (None = unknown)
    acd.position(call_id)                       # 1-based place in its queue

Multi-node drivers (routing.node) also use ``enqueue(..., place=(seq, priority, first))``,
``sync_operator`` (take a state another node set), ``revoke`` (a claim was lost) and
``serve`` (retry a caller). Running totals per group are in ``acd.stats[group]``
(offered, answered, abandoned, answered_within_sl, answer_wait_total, overflowed).

Every method that can free an operator or queue a caller returns the `Offer`s it made: each
one means "ring operator X (device D) for caller C within ring_seconds". The driver rings the
phone and reports `answer`, or lets `tick()` time the offer out (the operator is paused with
reason "no answer" and the caller keeps the head of the queue).

Ordering: higher ``priority`` first, then arrival order (a global sequence number, kept by
recalls and escalations). Among qualified ready operators: highest skill level, then the one
idle longest. After the group's ``widen_after_seconds`` a caller may also go to operators of
the groups in its ``widen_to`` (secondary skills), but only when no primary operator is free.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from agents.operators import InvalidTransition, OperatorSpec, OperatorState, check_transition
from routing.groups import Group

__all__ = [
    "NO_ANSWER",
    "Acd",
    "AcdError",
    "AcdSettings",
    "Caller",
    "GroupStats",
    "NoAnswer",
    "Offer",
    "Operator",
    "Overflow",
    "TickEvents",
]

NO_ANSWER = "no answer"
_PLACES_PRUNE_AT = 10_000  # remembered places kept before expired ones are swept
S = OperatorState


class AcdError(ValueError):
    """A request the ACD cannot carry out (unknown call, operator or group)."""


@dataclass(frozen=True)
class AcdSettings:
    """Tunables of the routing core (defaults are the service's promises)."""

    recall_window_seconds: float = 600.0  # a caller calling back within this keeps their place
    service_level_seconds: float = 20.0  # "answered within 20 s"
    default_handle_seconds: float = 180.0  # expected-wait guess before any call was handled
    handle_time_samples: int = 50  # recent handle times kept per group


@dataclass
class Caller:
    call_id: str
    group: str
    number: str
    priority: int
    seq: int
    first_arrival: float  # kept across recalls, for reporting
    queued_at: float  # entered the current group's queue: widening and max wait count from here
    data: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    state: str = "waiting"  # waiting | ringing | talking | overflowed
    operator: str | None = None
    answered_at: float | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (-self.priority, self.seq)


@dataclass
class Operator:
    spec: OperatorSpec
    state: OperatorState = S.LOGGED_OUT
    device_available: bool = True
    idle_since: float = 0.0
    pause_reason: str | None = None
    call_id: str | None = None
    until: float | None = None  # ring timeout or wrap-up end

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def offerable(self) -> bool:
        return self.state is S.READY and self.device_available


@dataclass(frozen=True)
class Offer:
    call_id: str
    operator_id: str
    device: str
    group: str
    ring_until: float


@dataclass(frozen=True)
class NoAnswer:
    operator_id: str
    call_id: str


@dataclass(frozen=True)
class Overflow:
    call_id: str
    group: str
    reason: str  # max_wait | closed | nobody_logged_in
    overflow_group: str | None


@dataclass
class TickEvents:
    offers: list[Offer] = field(default_factory=list)
    no_answer: list[NoAnswer] = field(default_factory=list)
    overflows: list[Overflow] = field(default_factory=list)
    readied: list[str] = field(default_factory=list)  # operators whose wrap-up time ended


@dataclass
class GroupStats:
    """Running totals per group, read by routing.metrics and the simulators."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_sl: int = 0
    answer_wait_total: float = 0.0
    overflowed: int = 0


@dataclass
class _Place:
    seq: int
    priority: int
    first_arrival: float
    group: str
    expires: float


class Acd:
    """One ACD's routing state. See the module docstring for the driver API."""

    def __init__(
        self,
        groups: Mapping[str, Group],
        operators: Iterable[OperatorSpec],
        *,
        clock: Callable[[], float],
        is_open: Callable[[Group, float], bool] | None = None,
        settings: AcdSettings | None = None,
    ) -> None:
        self.groups = dict(groups)
        self.clock = clock
        self.is_open = is_open or (lambda group, now: True)
        self.settings = settings or AcdSettings()
        self.operators: dict[str, Operator] = {}
        self.callers: dict[str, Caller] = {}
        self.stats: dict[str, GroupStats] = {g: GroupStats() for g in self.groups}
        self._queues: dict[str, list[tuple[tuple[int, int], str]]] = {g: [] for g in self.groups}
        self._waiting: dict[str, int] = dict.fromkeys(self.groups, 0)
        self._ready: dict[str, set[str]] = {g: set() for g in self.groups}
        self._members: dict[str, set[str]] = {g: set() for g in self.groups}
        self._widened_from: dict[str, list[str]] = {g: [] for g in self.groups}
        for group in self.groups.values():
            for target in group.widen_to:
                self._widened_from[target].append(group.id)
        self._handle_times: dict[str, deque[float]] = {
            g: deque(maxlen=self.settings.handle_time_samples) for g in self.groups
        }
        self._places: dict[str, _Place] = {}
        self._seq = itertools.count(1)
        self._timers: list[tuple[float, int, str, str]] = []  # (when, n, kind, id)
        self._timer_n = itertools.count()
        for spec in operators:
            self.add_operator(spec)

    # --- operators -----------------------------------------------------------------------

    def add_operator(self, spec: OperatorSpec) -> None:
        unknown = set(spec.skills) - self.groups.keys()
        if unknown:
            raise AcdError(f"operator {spec.id}: unknown skill(s) {sorted(unknown)}")
        self.operators[spec.id] = Operator(spec, idle_since=self.clock())
        for group in spec.skills:
            self._members[group].add(spec.id)

    def set_operator(self, spec: OperatorSpec) -> list[Offer]:
        """Add an operator or replace one's name, phone and skills (an admin edit). A ringing
        or talking operator keeps that call; the new skills count from the next offer."""
        unknown = set(spec.skills) - self.groups.keys()
        if unknown:
            raise AcdError(f"operator {spec.id}: unknown skill(s) {sorted(unknown)}")
        op = self.operators.get(spec.id)
        if op is None:
            self.add_operator(spec)
            return []
        for group in op.spec.skills:
            self._members[group].discard(op.id)
            self._ready[group].discard(op.id)
        op.spec = spec
        for group in spec.skills:
            self._members[group].add(op.id)
        self._index(op)
        return self._serve_operator(op)

    def remove_operator(self, op_id: str) -> None:
        """Take a logged-out operator off the ACD (an admin edit)."""
        op = self.operator(op_id)
        if op.state is not S.LOGGED_OUT:
            raise AcdError(f"operator {op_id!r} is {op.state}, not logged out")
        for group in op.spec.skills:
            self._members[group].discard(op_id)
            self._ready[group].discard(op_id)
        del self.operators[op_id]

    def set_groups(self, groups: Mapping[str, Group]) -> list[Offer]:
        """Replace the groups (an admin edit) without dropping anyone: waiting callers keep
        their place and get timers from the new timings, calls in progress go on. A group
        may only go when nobody is in it and no operator has it as a skill."""
        gone = self.groups.keys() - groups.keys()
        in_use = {c.group for c in self.callers.values()}
        busy = sorted(g for g in gone if self._members[g] or g in in_use)
        if busy:
            raise AcdError(f"group(s) {busy} still have operators or callers")
        for g in gone:
            del self.stats[g], self._queues[g], self._waiting[g], self._handle_times[g]
            del self._ready[g], self._members[g]
        self.groups = dict(groups)
        for g in self.groups.keys() - self.stats.keys():
            self.stats[g], self._queues[g], self._waiting[g] = GroupStats(), [], 0
            self._ready[g], self._members[g] = set(), set()
            self._handle_times[g] = deque(maxlen=self.settings.handle_time_samples)
        self._widened_from = {g: [] for g in self.groups}
        for group in self.groups.values():
            for target in group.widen_to:
                self._widened_from[target].append(group.id)
        offers: list[Offer] = []
        for caller in list(self.callers.values()):
            if caller.state == "waiting":  # timers from the new timings; stale ones no-op
                group = self.groups[caller.group]
                self._timer(caller.queued_at + group.max_wait_seconds, "max_wait", caller.call_id)
                self._timer(caller.queued_at + group.widen_after_seconds, "widen", caller.call_id)
        for group_id in self.groups:
            head = self._head(group_id)
            if head is not None:
                offers.extend(self._serve_caller(head))
        return offers

    def operator(self, op_id: str) -> Operator:
        try:
            return self.operators[op_id]
        except KeyError:
            raise AcdError(f"unknown operator {op_id!r}") from None

    def login(self, op_id: str, *, paused_reason: str | None = None) -> list[Offer]:
        if paused_reason is not None:
            self._move(self.operator(op_id), S.PAUSED, reason=paused_reason)
            return []
        return self.ready(op_id)

    def ready(self, op_id: str) -> list[Offer]:
        op = self.operator(op_id)
        self._refuse_while_ringing(op, S.READY)
        self._move(op, S.READY)
        return self._serve_operator(op)

    def pause(self, op_id: str, reason: str) -> None:
        op = self.operator(op_id)
        self._refuse_while_ringing(op, S.PAUSED)
        self._move(op, S.PAUSED, reason=reason)

    @staticmethod
    def _refuse_while_ringing(op: Operator, wanted: OperatorState) -> None:
        """Only the ACD itself ends a ringing offer (answer, no answer, caller gone): an
        operator's own command then could free them for a second call on another node."""
        if op.state is S.RINGING:
            raise InvalidTransition(op.id, op.state, wanted)

    def logout(self, op_id: str) -> None:
        self._move(self.operator(op_id), S.LOGGED_OUT)

    def wrap_up_done(self, op_id: str) -> list[Offer]:
        op = self.operator(op_id)
        if op.state is not S.WRAP_UP:
            check_transition(op_id, op.state, S.READY)
        return self.ready(op_id)

    def set_device_available(self, op_id: str, available: bool) -> list[Offer]:
        """AMI says the softphone is (un)registered; an unavailable phone is never offered."""
        op = self.operator(op_id)
        op.device_available = available
        self._index(op)
        return self._serve_operator(op) if op.offerable else []

    def sync_operator(
        self,
        op_id: str,
        state: OperatorState,
        *,
        device_available: bool = True,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> list[Offer]:
        """Take an operator's state as shared state holds it (another node changed it; no
        transition check: it already happened). `call_id` is the call the store pairs them
        with: if it is not the one this core thought, our caller goes back to their place."""
        op = self.operator(op_id)
        if op.call_id is not None and op.call_id == call_id and op.state is state:
            return []  # our own call; our timers keep running
        mine = self.callers.get(op.call_id or "")
        if mine is not None and mine.state == "ringing" and mine.operator == op_id:
            self._queue_again_at_head(mine)
        if state is S.READY and op.state is not S.READY:
            op.idle_since = self.clock()
        op.state, op.device_available = state, device_available
        op.pause_reason = reason if state is S.PAUSED else None
        op.call_id, op.until = None, None  # a call of another node's, or none
        self._index(op)
        offers = self._serve_operator(op)
        if mine is not None and mine.state == "waiting":
            offers.extend(self._serve_caller(mine))
        return offers

    def revoke(
        self, offer: Offer, operator_state: OperatorState, reason: str | None = None
    ) -> None:
        """A claim on shared state was lost (another node took the operator first): the caller
        goes back to their place and the operator takes the state the store reported."""
        caller = self.callers.get(offer.call_id)
        if (
            caller is not None
            and caller.state == "ringing"
            and caller.operator == offer.operator_id
        ):
            self._queue_again_at_head(caller)
        op = self.operator(offer.operator_id)
        if op.call_id == offer.call_id:
            op.call_id, op.until = None, None
            op.state = operator_state
            op.pause_reason = reason if operator_state is S.PAUSED else None
            self._index(op)

    def _move(self, op: Operator, state: OperatorState, *, reason: str | None = None) -> None:
        check_transition(op.id, op.state, state)
        now = self.clock()
        if state is S.READY:
            op.idle_since = now
        op.state = state
        op.pause_reason = reason if state is S.PAUSED else None
        if state not in (S.RINGING, S.TALKING, S.WRAP_UP):
            op.call_id = None
        op.until = None
        self._index(op)

    def _index(self, op: Operator) -> None:
        for group in op.spec.skills:
            if op.offerable:
                self._ready[group].add(op.id)
            else:
                self._ready[group].discard(op.id)

    # --- callers -------------------------------------------------------------------------

    def _group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise AcdError(f"unknown group {group_id!r}") from None

    def caller(self, call_id: str) -> Caller:
        try:
            return self.callers[call_id]
        except KeyError:
            raise AcdError(f"unknown call {call_id!r}") from None

    def overflow_reason(self, group_id: str) -> str | None:
        """Why a new caller should not wait in this group right now, or None."""
        group = self._group(group_id)
        if not self.is_open(group, self.clock()):
            return "closed"
        if not any(self.operators[o].state is not S.LOGGED_OUT for o in self._members[group_id]):
            return "nobody_logged_in"
        return None

    def enqueue(
        self,
        call_id: str,
        group_id: str,
        *,
        number: str = "",
        priority: int = 0,
        data: Mapping[str, str] | None = None,
        history: Iterable[str] = (),
        place: tuple[int, int, float] | None = None,
    ) -> list[Offer]:
        """Queue a caller; a caller back within the recall window gets their old place.

        `place` = (seq, priority, first_arrival) is given by a multi-node driver that keeps
        arrival numbers and remembered places in shared state; a single node leaves it out.
        """
        self._group(group_id)
        if call_id in self.callers:
            raise AcdError(f"call {call_id!r} is already queued")
        now = self.clock()
        old = self._places.pop(number, None) if number else None
        if place is not None:
            seq, priority, first = place[0], max(priority, place[1]), place[2]
        elif old is not None and old.expires > now and old.group == group_id:
            seq, priority, first = old.seq, max(priority, old.priority), old.first_arrival
        else:
            seq, first = next(self._seq), now
        caller = Caller(
            call_id, group_id, number, priority, seq, first, now, dict(data or {}), list(history)
        )
        self.callers[call_id] = caller
        self.stats[group_id].offered += 1
        self._queue(caller)
        return self._serve_caller(caller)

    def _queue(self, caller: Caller) -> None:
        caller.state, caller.operator = "waiting", None
        heapq.heappush(self._queues[caller.group], (caller.key, caller.call_id))
        self._waiting[caller.group] += 1
        group = self.groups[caller.group]
        self._timer(caller.queued_at + group.max_wait_seconds, "max_wait", caller.call_id)
        if group.widen_to:
            self._timer(caller.queued_at + group.widen_after_seconds, "widen", caller.call_id)

    def _unqueue(self, caller: Caller) -> None:
        """Leave the queue; the heap entry is dropped lazily when it reaches the top."""
        if caller.state == "waiting":
            self._waiting[caller.group] -= 1

    def answer(self, call_id: str, *, at: float | None = None) -> None:
        """The operator picked up (`at`: when, if learnt later, e.g. from Dial's timings)."""
        caller = self.caller(call_id)
        if caller.state != "ringing" or caller.operator is None:
            raise AcdError(f"call {call_id!r} is not ringing an operator")
        op = self.operators[caller.operator]
        self._move(op, S.TALKING)
        op.call_id = call_id
        caller.state, caller.answered_at = "talking", self.clock() if at is None else at
        wait = caller.answered_at - caller.queued_at
        stats = self.stats[caller.group]
        stats.answered += 1
        stats.answer_wait_total += wait
        stats.answered_within_sl += wait <= self.settings.service_level_seconds

    def end_call(self, call_id: str) -> None:
        """The conversation is over: the operator goes into timed wrap-up."""
        caller = self.caller(call_id)
        if caller.state != "talking" or caller.operator is None:
            raise AcdError(f"call {call_id!r} is not in a conversation")
        self._release_operator_to_wrap_up(caller)
        del self.callers[call_id]

    def _release_operator_to_wrap_up(self, caller: Caller) -> None:
        assert caller.operator is not None and caller.answered_at is not None
        op = self.operators[caller.operator]
        group = self.groups[caller.group]
        self._move(op, S.WRAP_UP)
        op.call_id = caller.call_id
        op.until = self.clock() + group.wrap_up_seconds
        self._handle_times[caller.group].append(
            self.clock() - caller.answered_at + group.wrap_up_seconds
        )
        self._timer(op.until, "wrap_up", op.id)

    def abandon(self, call_id: str) -> list[Offer]:
        """The caller hung up or was cut off before talking; they may call back for their place."""
        caller = self.callers.pop(call_id, None)
        if caller is None:
            return []
        if caller.state == "talking":
            self.callers[call_id] = caller
            raise AcdError(f"call {call_id!r} is in a conversation; use end_call")
        self.stats[caller.group].abandoned += caller.state != "overflowed"
        if caller.number:
            if len(self._places) > _PLACES_PRUNE_AT:
                now = self.clock()
                self._places = {n: p for n, p in self._places.items() if p.expires > now}
            self._places[caller.number] = _Place(
                caller.seq,
                caller.priority,
                caller.first_arrival,
                caller.group,
                self.clock() + self.settings.recall_window_seconds,
            )
        self._unqueue(caller)
        if caller.state == "ringing" and caller.operator is not None:
            op = self.operators[caller.operator]
            self._move(op, S.READY)
            return self._serve_operator(op)
        return []

    def escalate(self, call_id: str, group_id: str, *, note: str = "") -> list[Offer]:
        """Send a caller in conversation to another group (tier 2...) keeping data and place."""
        self._group(group_id)
        caller = self.caller(call_id)
        if caller.state != "talking":
            raise AcdError(f"call {call_id!r} is not in a conversation")
        self._release_operator_to_wrap_up(caller)
        caller.history.append(f"{caller.group}:{caller.operator}->{group_id} {note}".strip())
        return self.requeue(call_id, group_id)

    def requeue(self, call_id: str, group_id: str) -> list[Offer]:
        """Move a caller (escalated or overflowed) to a group, keeping arrival order."""
        self._group(group_id)
        caller = self.caller(call_id)
        if caller.state == "waiting":
            self._unqueue(caller)
        caller.group, caller.queued_at = group_id, self.clock()
        self.stats[group_id].offered += 1
        self._queue(caller)
        return self._serve_caller(caller)

    # --- matching ------------------------------------------------------------------------

    def _head(self, group_id: str) -> Caller | None:
        heap = self._queues[group_id]
        while heap:
            key, call_id = heap[0]
            caller = self.callers.get(call_id)
            if caller and caller.state == "waiting" and caller.group == group_id:
                if caller.key == key:
                    return caller
            heapq.heappop(heap)
        return None

    def _best_operator(self, group_id: str) -> Operator | None:
        best: Operator | None = None
        for op_id in self._ready[group_id]:
            op = self.operators[op_id]
            if best is None or (op.spec.skills[group_id], -op.idle_since) > (
                best.spec.skills[group_id],
                -best.idle_since,
            ):
                best = op
        return best

    def _widened(self, caller: Caller) -> bool:
        group = self.groups[caller.group]
        return self.clock() - caller.queued_at >= group.widen_after_seconds

    def serve(self, call_id: str) -> list[Offer]:
        """Try again to find an operator for a waiting caller (after a lost claim)."""
        caller = self.callers.get(call_id)
        return [] if caller is None else self._serve_caller(caller)

    def _serve_caller(self, caller: Caller) -> list[Offer]:
        if caller.state != "waiting" or self._head(caller.group) is not caller:
            return []  # someone ahead of them takes the next free operator
        op = self._best_operator(caller.group)
        if op is None and self._widened(caller):
            candidates = [self._best_operator(g) for g in self.groups[caller.group].widen_to]
            op = max(
                (c for c in candidates if c is not None),
                key=lambda o: -o.idle_since,
                default=None,
            )
        return [] if op is None else [self._offer(caller, op)]

    def _serve_operator(self, op: Operator) -> list[Offer]:
        if not op.offerable:
            return []
        best: Caller | None = None
        for group_id in op.spec.skills:
            for candidate_group in (group_id, *self._widened_from[group_id]):
                if candidate_group != group_id and candidate_group in op.spec.skills:
                    continue
                head = self._head(candidate_group)
                if head is None or (candidate_group != group_id and not self._widened(head)):
                    continue
                if best is None or head.key < best.key:
                    best = head
        return [] if best is None else [self._offer(best, op)]

    def _offer(self, caller: Caller, op: Operator) -> Offer:
        self._unqueue(caller)
        self._move(op, S.RINGING)
        op.call_id = caller.call_id
        op.until = self.clock() + self.groups[caller.group].ring_seconds
        caller.state, caller.operator = "ringing", op.id
        self._timer(op.until, "ring", op.id)
        return Offer(caller.call_id, op.id, op.spec.device, caller.group, op.until)

    # --- timers --------------------------------------------------------------------------

    def _timer(self, when: float, kind: str, ident: str) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_n), kind, ident))

    def next_deadline(self) -> float | None:
        while self._timers and not self._timer_live(*self._timers[0][2:]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def _timer_live(self, kind: str, ident: str) -> bool:
        if kind in ("ring", "wrap_up"):
            op = self.operators.get(ident)
            if op is None:  # removed by an admin edit (only ever when logged out)
                return False
            return op.until is not None and op.state is (S.RINGING if kind == "ring" else S.WRAP_UP)
        caller = self.callers.get(ident)
        return caller is not None and caller.state == "waiting"

    def tick(self) -> TickEvents:
        """Run every timer that is due; returns what the driver must act on."""
        events = TickEvents()
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            when, _, kind, ident = heapq.heappop(self._timers)
            if self._timer_live(kind, ident):
                getattr(self, f"_on_{kind}")(ident, when, events)
        return events

    def no_answer(self, call_id: str) -> tuple[NoAnswer | None, list[Offer]]:
        """The operator's phone did not answer (Dial said NOANSWER/BUSY/CHANUNAVAIL) before
        the ring timer: same outcome as the timer. (None, []) if the offer is already over."""
        caller = self.caller(call_id)
        if caller.state != "ringing" or caller.operator is None:
            return None, []
        op = self.operators[caller.operator]
        events = TickEvents()
        self._on_ring(op.id, op.until or self.clock(), events)
        return (events.no_answer[0] if events.no_answer else None), events.offers

    def _on_ring(self, op_id: str, when: float, events: TickEvents) -> None:
        op = self.operators[op_id]
        if op.until is None or op.until > when or op.call_id is None:
            return
        caller = self.callers.get(op.call_id)
        self._move(op, S.PAUSED, reason=NO_ANSWER)
        if caller is None:
            return
        events.no_answer.append(NoAnswer(op_id, caller.call_id))
        self._queue_again_at_head(caller)
        events.offers.extend(self._serve_caller(caller))

    def _queue_again_at_head(self, caller: Caller) -> None:
        """Back into the queue with the same key: they were first, so they are first again."""
        caller.state = "waiting"
        heapq.heappush(self._queues[caller.group], (caller.key, caller.call_id))
        self._waiting[caller.group] += 1

    def _on_wrap_up(self, op_id: str, when: float, events: TickEvents) -> None:
        op = self.operators[op_id]
        if op.until is not None and op.until <= when:
            events.readied.append(op_id)
            events.offers.extend(self.ready(op_id))

    def _on_widen(self, call_id: str, when: float, events: TickEvents) -> None:
        events.offers.extend(self._serve_caller(self.callers[call_id]))

    def _on_max_wait(self, call_id: str, when: float, events: TickEvents) -> None:
        caller = self.callers[call_id]
        group = self.groups[caller.group]
        if when < caller.queued_at + group.max_wait_seconds:
            return  # a timer from before a requeue
        self._unqueue(caller)
        caller.state = "overflowed"
        self.stats[caller.group].overflowed += 1
        events.overflows.append(Overflow(call_id, caller.group, "max_wait", group.overflow_group))

    # --- what callers hear and supervisors see ------------------------------------------

    def position(self, call_id: str) -> int:
        """1-based place among the callers waiting in the same group."""
        caller = self.caller(call_id)
        if caller.state != "waiting":
            return 0
        return 1 + sum(
            1
            for other in self.callers.values()
            if other.state == "waiting" and other.group == caller.group and other.key < caller.key
        )

    def waiting(self, group_id: str) -> int:
        return self._waiting[group_id]

    def staffed(self, group_id: str) -> int:
        """Operators of the group logged in and not on a pause."""
        return sum(
            1
            for o in self._members[group_id]
            if self.operators[o].state not in (S.LOGGED_OUT, S.PAUSED)
        )

    def average_handle_time(self, group_id: str) -> float:
        samples = self._handle_times[group_id]
        return sum(samples) / len(samples) if samples else self.settings.default_handle_seconds

    def expected_wait(self, group_id: str, position: int | None = None) -> float | None:
        """Seconds until answer for a caller at `position` (default: a new caller)."""
        staffed = self.staffed(group_id)
        if staffed == 0:
            return None
        ahead = (self.waiting(group_id) + 1 if position is None else position) - 1
        # A free slot opens every AHT/staffed seconds on average; ready operators are free now.
        slots_needed = ahead + 1 - len(self._ready[group_id])
        if slots_needed <= 0:
            return 0.0
        return slots_needed * self.average_handle_time(group_id) / staffed

    def longest_wait(self, group_id: str) -> float:
        now = self.clock()
        return max(
            (
                now - c.queued_at
                for c in self.callers.values()
                if c.group == group_id and c.state == "waiting"
            ),
            default=0.0,
        )

    def operators_by_state(self, group_id: str) -> dict[OperatorState, int]:
        counts = dict.fromkeys(OperatorState, 0)
        for op_id in self._members[group_id]:
            counts[self.operators[op_id].state] += 1
        return counts
