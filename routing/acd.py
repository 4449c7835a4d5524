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
                                                # (counted=False: handed back, not given up)
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

Ordering of the waiting callers is `routing.queue`'s, the choice of operator
`routing.selection`'s, the timers `routing.timers`'; the records (`Caller`, `Offer`, ...) are
in `routing.model`. This module is the facade a driver talks to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from routing.grace import RestartGrace
from routing.groups import Group
from routing.model import (
    AcdError,
    AcdOperator,
    AcdSettings,
    Caller,
    GroupStats,
    NoAnswer,
    Offer,
    TickEvents,
)
from routing.operators import InvalidTransition, OperatorSpec, OperatorState, check_transition
from routing.queue import CallerQueue
from routing.selection import OperatorSelection
from routing.timers import AcdTimers

__all__ = ["Acd"]

S = OperatorState


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
        self.operators: dict[str, AcdOperator] = {}
        self.queue = CallerQueue(self.groups)
        self.callers: dict[str, Caller] = self.queue.callers
        self.select = OperatorSelection(self.groups, self.operators, self.queue, clock)
        self.stats: dict[str, GroupStats] = {g: GroupStats() for g in self.groups}
        self._handle_times: dict[str, deque[float]] = {
            g: deque(maxlen=self.settings.handle_time_samples) for g in self.groups
        }
        self.timers = AcdTimers(self)
        self.grace = RestartGrace(clock, self.timers.add)  # after a restart (routing.grace)
        self.select.holds = self.grace.holds
        for spec in operators:
            self.add_operator(spec)

    # --- operators -----------------------------------------------------------------------

    def add_operator(self, spec: OperatorSpec) -> None:
        _check_skills(spec, self.groups)
        op = self.operators[spec.id] = AcdOperator(spec, idle_since=self.clock())
        self.select.join(op)

    def set_operator(self, spec: OperatorSpec) -> list[Offer]:
        """Add an operator or replace one's name, phone and skills (an admin edit). A ringing
        or talking operator keeps that call; the new skills count from the next offer."""
        _check_skills(spec, self.groups)
        op = self.operators.get(spec.id)
        if op is None:
            self.add_operator(spec)
            return []
        self.select.leave(op)
        op.spec = spec
        self.select.join(op)
        return self._serve_operator(op)

    def remove_operator(self, op_id: str) -> None:
        """Take a logged-out operator off the ACD (an admin edit)."""
        op = self.operator(op_id)
        if op.state is not S.LOGGED_OUT:
            raise AcdError(f"operator {op_id!r} is {op.state}, not logged out")
        self.select.leave(op)
        del self.operators[op_id]

    def set_groups(self, groups: Mapping[str, Group]) -> list[Offer]:
        """Replace the groups (an admin edit) without dropping anyone: waiting callers keep
        their place and get timers from the new timings, calls in progress go on. A group
        may only go when nobody is in it and no operator has it as a skill."""
        gone = self.groups.keys() - groups.keys()
        in_use = {c.group for c in self.callers.values()}
        busy = sorted(g for g in gone if self.select.members(g) or g in in_use)
        if busy:
            raise AcdError(f"group(s) {busy} still have operators or callers")
        for g in gone:
            del self.stats[g], self._handle_times[g]
            self.queue.drop_group(g)
        self.groups = dict(groups)
        for g in self.groups.keys() - self.stats.keys():
            self.stats[g] = GroupStats()
            self._handle_times[g] = deque(maxlen=self.settings.handle_time_samples)
            self.queue.add_group(g)
        self.select.set_groups(self.groups)
        offers: list[Offer] = []
        for caller in list(self.callers.values()):
            if caller.state == "waiting":  # timers from the new timings; stale ones no-op
                self._wait_timers(caller, widen=True)
        for group_id in self.groups:
            head = self.queue.head(group_id)
            if head is not None:
                offers.extend(self._serve_caller(head))
        return offers

    def operator(self, op_id: str) -> AcdOperator:
        try:
            return self.operators[op_id]
        except KeyError:
            raise AcdError(f"unknown operator {op_id!r}") from None

    def login(self, op_id: str, *, paused_reason: str | None = None) -> list[Offer]:
        if paused_reason is not None:
            self.select.move(self.operator(op_id), S.PAUSED, reason=paused_reason)
            return []
        return self.ready(op_id)

    def ready(self, op_id: str) -> list[Offer]:
        op = self.operator(op_id)
        _refuse_while_ringing(op, S.READY)
        self.select.move(op, S.READY)
        return self._serve_operator(op)

    def pause(self, op_id: str, reason: str) -> None:
        op = self.operator(op_id)
        _refuse_while_ringing(op, S.PAUSED)
        self.select.move(op, S.PAUSED, reason=reason)

    def logout(self, op_id: str) -> None:
        self.select.move(self.operator(op_id), S.LOGGED_OUT)

    def wrap_up_done(self, op_id: str) -> list[Offer]:
        op = self.operator(op_id)
        if op.state is not S.WRAP_UP:
            check_transition(op_id, op.state, S.READY)
        return self.ready(op_id)

    def set_device_available(self, op_id: str, available: bool) -> list[Offer]:
        """AMI says the softphone is (un)registered; an unavailable phone is never offered."""
        op = self.operator(op_id)
        op.device_available = available
        self.select.index(op)
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
            self.queue.again_at_head(mine)
        if state is S.READY and op.state is not S.READY:
            op.idle_since = self.clock()
        op.state, op.device_available = state, device_available
        op.pause_reason = reason if state is S.PAUSED else None
        op.call_id, op.until = None, None  # a call of another node's, or none
        self.select.index(op)
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
            self.queue.again_at_head(caller)
        op = self.operator(offer.operator_id)
        if op.call_id == offer.call_id:
            op.call_id, op.until = None, None
            op.state = operator_state
            op.pause_reason = reason if operator_state is S.PAUSED else None
            self.select.index(op)

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
        if not any(map(self.select.logged_in, (group_id, *group.widen_to))):
            return "nobody_logged_in"  # nor in the groups it widens to (at once, then)
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
        `place` = (seq, priority, first_arrival): given by a driver that keeps arrival numbers
        and places in shared state, or a caller's carried arrival (routing.arrival)."""
        self._group(group_id)
        if call_id in self.callers:
            raise AcdError(f"call {call_id!r} is already queued")
        now = self.clock()
        old = self.queue.take_place(number, group_id, now)
        if place is not None:
            seq, priority, first = place[0], max(priority, place[1]), place[2]
        elif old is not None:
            seq, priority, first = old[0], max(priority, old[1]), old[2]
        else:
            seq, first = self.queue.next_seq(), now
        caller = Caller(
            call_id, group_id, number, priority, seq, first, now, dict(data or {}), list(history)
        )
        self.callers[call_id] = caller
        self.stats[group_id].offered += 1
        self.grace.arrived(call_id)
        self._queue(caller)
        return self._serve_caller(caller)

    def answer(self, call_id: str, *, at: float | None = None) -> None:
        """The operator picked up (`at`: when, if learnt later, e.g. from Dial's timings)."""
        caller = self.caller(call_id)
        if caller.state != "ringing" or caller.operator is None:
            raise AcdError(f"call {call_id!r} is not ringing an operator")
        op = self.operators[caller.operator]
        self.select.move(op, S.TALKING)
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
        self.select.move(op, S.WRAP_UP)
        op.call_id = caller.call_id
        op.until = self.clock() + group.wrap_up_seconds
        self._handle_times[caller.group].append(
            self.clock() - caller.answered_at + group.wrap_up_seconds
        )
        self.timers.add(op.until, "wrap_up", op.id)

    def abandon(self, call_id: str, *, counted: bool = True) -> list[Offer]:
        """The caller hung up or was cut off before talking; they may call back for their place.
        `counted=False`: they did not give up (the call was handed back to the dialplan)."""
        caller = self.callers.pop(call_id, None)
        if caller is None:
            return []
        if caller.state == "talking":
            self.callers[call_id] = caller
            raise AcdError(f"call {call_id!r} is in a conversation; use end_call")
        self.stats[caller.group].abandoned += counted and caller.state != "overflowed"
        if caller.number:
            now = self.clock()
            self.queue.remember(caller, now, now + self.settings.recall_window_seconds)
        self.queue.leave(caller)
        if caller.state == "ringing" and caller.operator is not None:
            op = self.operators[caller.operator]
            self.select.move(op, S.READY)
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
            self.queue.leave(caller)
        caller.group, caller.queued_at = group_id, self.clock()
        self.stats[group_id].offered += 1
        self._queue(caller)
        return self._serve_caller(caller)

    def _queue(self, caller: Caller) -> None:
        self.queue.push(caller)
        self._wait_timers(caller, widen=bool(self.groups[caller.group].widen_to))

    def _wait_timers(self, caller: Caller, *, widen: bool) -> None:
        """Max wait and widening count from when the caller joined their group's queue."""
        group, call_id = self.groups[caller.group], caller.call_id
        self.timers.add(caller.queued_at + group.max_wait_seconds, "max_wait", call_id)
        if widen:
            self.timers.add(caller.queued_at + group.widen_after_seconds, "widen", call_id)

    # --- offers --------------------------------------------------------------------------

    def serve(self, call_id: str) -> list[Offer]:
        """Try again to find an operator for a waiting caller (after a lost claim)."""
        caller = self.callers.get(call_id)
        return [] if caller is None else self._serve_caller(caller)

    def _serve_caller(self, caller: Caller) -> list[Offer]:
        op = self.select.operator_for(caller)
        return [] if op is None else [self._offer(caller, op)]

    def serve_operator(self, op_id: str) -> list[Offer]:
        op = self.operator(op_id)
        return self._serve_operator(op) if op.offerable else []

    def _serve_operator(self, op: AcdOperator) -> list[Offer]:
        caller = self.select.caller_for(op)
        return [] if caller is None else [self._offer(caller, op)]

    def _offer(self, caller: Caller, op: AcdOperator) -> Offer:
        self.queue.leave(caller)
        self.select.move(op, S.RINGING)
        op.call_id = caller.call_id
        op.until = self.clock() + self.groups[caller.group].ring_seconds
        caller.state, caller.operator = "ringing", op.id
        self.timers.add(op.until + self.settings.ring_timer_grace_seconds, "ring", op.id)
        return Offer(caller.call_id, op.id, op.spec.device, caller.group, op.until)

    # --- timers (routing.timers) ----------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `tick` next has work (None: no timer)."""
        return self.timers.next_deadline()

    def tick(self) -> TickEvents:
        """Run every timer that is due; returns what the driver must act on."""
        return self.timers.tick()

    def no_answer(self, call_id: str) -> tuple[NoAnswer | None, list[Offer]]:
        """The operator's phone did not answer (Dial said NOANSWER/BUSY/CHANUNAVAIL) before
        the ring timer: same outcome as the timer. (None, []) if the offer is already over."""
        caller = self.caller(call_id)
        if caller.state != "ringing" or caller.operator is None:
            return None, []
        op = self.operators[caller.operator]
        events = TickEvents()
        self.timers.ring_out(op.id, op.until or self.clock(), events)
        return (events.no_answer[0] if events.no_answer else None), events.offers

    # --- what callers hear and supervisors see ------------------------------------------

    def position(self, call_id: str) -> int:
        """1-based place among the callers waiting in the same group."""
        return self.queue.position(self.caller(call_id))

    def waiting(self, group_id: str) -> int:
        return self.queue.waiting(group_id)

    def staffed(self, group_id: str) -> int:
        """Operators of the group logged in and not on a pause."""
        return self.select.staffed(group_id)

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
        slots_needed = ahead + 1 - self.select.ready_count(group_id)
        if slots_needed <= 0:
            return 0.0
        return slots_needed * self.average_handle_time(group_id) / staffed

    def longest_wait(self, group_id: str) -> float:
        return self.queue.longest_wait(group_id, self.clock())

    def operators_by_state(self, group_id: str) -> dict[OperatorState, int]:
        return self.select.by_state(group_id)


def _refuse_while_ringing(op: AcdOperator, wanted: OperatorState) -> None:
    """Only the ACD itself ends a ringing offer (answer, no answer, caller gone): an
    operator's own command then could free them for a second call on another node."""
    if op.state is S.RINGING:
        raise InvalidTransition(op.id, op.state, wanted)


def _check_skills(spec: OperatorSpec, groups: Mapping[str, Group]) -> None:
    unknown = set(spec.skills) - groups.keys()
    if unknown:
        raise AcdError(f"operator {spec.id}: unknown skill(s) {sorted(unknown)}")
