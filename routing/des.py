"""Discrete-event simulation of a day of calls on a simulated clock (``hotline sim --virtual``).

Callers arrive as a Poisson stream whose rate is fixed within each interval of the traffic plan;
each brings a handle time and a patience drawn when they arrive, so two routers fed the same
seed face exactly the same callers. Operators log in and out by shift, spend a wrap-up after
each call, and leave at the end of their shift once their current call is done.

Who answers whom is not decided here: the simulation tells a `SimRouter` what happens (a caller
queues, an operator is ready, a caller gives up, a call ends) and asks it for assignments. The
production ACD is plugged in through ``routing.des_acd``; `FallbackFifoRouter` below is a plain
first-come first-served, longest-idle router used when the ACD is not wanted (and as the model
Erlang C assumes).

Service level is counted over offered calls: answered within the target / offered, so callers
who give up count against it, whatever their wait.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from routing.traffic import GroupTraffic, TrafficPlan, format_clock


@dataclass(frozen=True)
class SimCaller:
    id: int
    group: str
    arrived: float
    handle_time: float
    patience: float  # math.inf: waits for ever
    interval: int  # index of the interval the caller arrived in


@dataclass(frozen=True)
class SimOperator:
    id: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    caller_id: int
    operator_id: str


class SimRouter(Protocol):
    """What the simulation needs from an ACD. `now` is simulated seconds from the day's start.

    The simulation calls `assign` after every event; a router returns the pairs it decides to
    connect at that moment and must never return a caller or an operator twice.
    """

    def enqueue(self, caller: SimCaller, now: float) -> None: ...

    def operator_ready(self, operator: SimOperator, now: float) -> None: ...

    def operator_gone(self, operator_id: str, now: float) -> None: ...

    def assign(self, now: float) -> list[Assignment]: ...

    def abandon(self, caller_id: int, now: float) -> None: ...

    def call_finished(self, operator_id: str, now: float) -> None: ...


class FallbackFifoRouter:
    """Oldest caller first across groups, answered by the longest-idle qualified operator.

    The fallback when the production ACD is not used; with one group it is exactly the FIFO
    queue Erlang C models.
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[SimCaller]] = {}
        self._gone_callers: set[int] = set()
        self._ready: dict[str, tuple[float, SimOperator]] = {}
        # per group: (idle since, order, operator id); stale entries are skipped when read
        self._idle: dict[str, list[tuple[float, int, str]]] = {}
        self._order = itertools.count()

    def enqueue(self, caller: SimCaller, now: float) -> None:
        self._queues.setdefault(caller.group, deque()).append(caller)

    def operator_ready(self, operator: SimOperator, now: float) -> None:
        self._ready[operator.id] = (now, operator)
        entry = (now, next(self._order), operator.id)
        for group in operator.groups:
            heapq.heappush(self._idle.setdefault(group, []), entry)

    def operator_gone(self, operator_id: str, now: float) -> None:
        self._ready.pop(operator_id, None)

    def abandon(self, caller_id: int, now: float) -> None:
        self._gone_callers.add(caller_id)

    def call_finished(self, operator_id: str, now: float) -> None:
        """Nothing to do: the operator is in wrap-up until `operator_ready` says otherwise."""

    def assign(self, now: float) -> list[Assignment]:
        made: list[Assignment] = []
        while (caller := self._oldest_servable()) is not None:
            operator_id = self._longest_idle(caller.group)
            assert operator_id is not None  # _oldest_servable checked it
            self._queues[caller.group].popleft()
            del self._ready[operator_id]
            made.append(Assignment(caller.id, operator_id))
        return made

    def _oldest_servable(self) -> SimCaller | None:
        best: SimCaller | None = None
        for group, queue in self._queues.items():
            while queue and queue[0].id in self._gone_callers:
                self._gone_callers.discard(queue.popleft().id)
            if not queue or self._longest_idle(group) is None:
                continue
            if best is None or queue[0].arrived < best.arrived:
                best = queue[0]
        return best

    def _longest_idle(self, group: str) -> str | None:
        idle = self._idle.get(group, [])
        while idle:
            since, _, operator_id = idle[0]
            ready = self._ready.get(operator_id)
            if ready is not None and ready[0] == since:
                return operator_id
            heapq.heappop(idle)
        return None


# -- statistics ---------------------------------------------------------------------------


@dataclass
class IntervalStats:
    """One group's figures for one interval; calls are counted in the interval they arrived."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    unserved: int = 0  # still waiting when the day's events ran out
    waited: int = 0  # answered after a wait > 0
    answered_in_target: int = 0
    wait_total: float = 0.0
    busy_seconds: float = 0.0  # talk + wrap-up, operator-seconds
    staffed_seconds: float = 0.0  # logged in, operator-seconds

    def add(self, other: IntervalStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "unserved": self.unserved,
            "asa": _ratio(self.wait_total, self.answered),
            "service_level": _ratio(self.answered_in_target, self.offered),
            "p_wait": _ratio(self.waited, self.answered),
            "occupancy": _ratio(self.busy_seconds, self.staffed_seconds),
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class SimGroupStats:
    name: str
    intervals: list[IntervalStats]

    def total(self) -> IntervalStats:
        total = IntervalStats()
        for stats in self.intervals:
            total.add(stats)
        return total


@dataclass
class DayResult:
    """Everything the simulation counted; `summary()` is the JSON the CLI prints."""

    plan: TrafficPlan
    seed: int
    router: str
    target_seconds: float
    groups: dict[str, SimGroupStats]
    events: int

    def total(self) -> IntervalStats:
        total = IntervalStats()
        for group in self.groups.values():
            total.add(group.total())
        return total

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "virtual",
            "router": self.router,
            "seed": self.seed,
            "service_seconds": self.target_seconds,
            **self.total().figures(),
            "events": self.events,
            "groups": {name: self._group_summary(stats) for name, stats in self.groups.items()},
        }

    def _group_summary(self, stats: SimGroupStats) -> dict[str, Any]:
        intervals = [
            {"start": format_clock(self.plan.interval_start(n)), **one.figures()}
            for n, one in enumerate(stats.intervals)
            if one.offered or one.staffed_seconds
        ]
        return {**stats.total().figures(), "intervals": intervals}


# -- the simulation -----------------------------------------------------------------------


class _Event(IntEnum):
    # Order among events at the same instant (arrivals come after all of them): a shift's end
    # first, so an operator freed at that instant leaves instead of taking a call; a caller
    # whose patience ends at the instant an operator frees up has already gone.
    SHIFT_END = 0
    ABANDON = 1
    CALL_END = 2
    WRAP_END = 3
    LOGIN = 4


@dataclass
class _OperatorState:
    operator: SimOperator
    home: str  # group its staffed time is counted in
    logged_in: float
    busy_since: float | None = None
    leaving: bool = False


@dataclass
class _Run:
    plan: TrafficPlan
    router: SimRouter
    target_seconds: float
    groups: dict[str, SimGroupStats]
    traffic: dict[str, GroupTraffic]
    heap: list[tuple[float, int, int, Any]] = field(default_factory=list)
    order: Iterator[int] = field(default_factory=itertools.count)
    waiting: dict[int, SimCaller] = field(default_factory=dict)
    operators: dict[str, _OperatorState] = field(default_factory=dict)
    talking: dict[str, SimCaller] = field(default_factory=dict)
    events: int = 0


def simulate_day(
    plan: TrafficPlan,
    router: SimRouter,
    *,
    seed: int = 1,
    target_seconds: float | None = None,
    router_name: str = "custom",
) -> DayResult:
    """Play the plan's day through `router`; deterministic for a given seed and router."""
    rng = random.Random(seed)
    seconds = plan.target.target_seconds if target_seconds is None else target_seconds
    run = _Run(
        plan,
        router,
        seconds,
        {
            g.name: SimGroupStats(g.name, [IntervalStats() for _ in range(plan.intervals)])
            for g in plan.groups
        },
        {g.name: g for g in plan.groups},
    )
    _schedule_shifts(run)
    _play(run, day_callers(plan, rng))
    _close_books(run)
    return DayResult(plan, seed, router_name, seconds, run.groups, run.events)


def _play(run: _Run, callers: Iterator[SimCaller]) -> None:
    """Run events in time order until no caller is left to arrive and nothing is scheduled."""
    next_caller = next(callers, None)
    while next_caller is not None or run.heap:
        now = min(next_caller.arrived if next_caller else math.inf, _next_event_time(run))
        # Everything due at this instant happens before the router is asked, so a router with
        # timers of its own (the ACD's wrap-up) never runs them ahead of the simulation's.
        while run.heap and run.heap[0][0] == now:
            _, kind, _, payload = heapq.heappop(run.heap)
            _handle(run, _Event(kind), payload, now)
            run.events += 1
        while next_caller is not None and next_caller.arrived == now:
            _arrive(run, next_caller)
            run.events += 1
            next_caller = next(callers, None)
        _connect(run, run.router.assign(now), now)


def day_callers(plan: TrafficPlan, rng: random.Random) -> Iterator[SimCaller]:
    """All callers of the day in arrival order, each with its handle time and patience (the
    live day of `controller.simdrive.day` draws the same callers for the same seed)."""
    ids = itertools.count(1)
    drawn: list[SimCaller] = []
    for group in plan.groups:
        for index, expected in enumerate(group.calls):
            drawn.extend(_interval_callers(plan, group, index, expected, rng, ids))
    drawn.sort(key=lambda caller: (caller.arrived, caller.id))
    return iter(drawn)


def _interval_callers(
    plan: TrafficPlan,
    group: GroupTraffic,
    index: int,
    expected: float,
    rng: random.Random,
    ids: Iterator[int],
) -> Iterator[SimCaller]:
    if expected <= 0:
        return
    rate = expected / plan.interval_seconds
    moment = plan.interval_start(index)
    end = moment + plan.interval_seconds
    while (moment := moment + rng.expovariate(rate)) < end:
        patience = group.patience.sample(rng) if group.patience else math.inf
        yield SimCaller(
            next(ids), group.name, moment, group.handle_time.sample(rng), patience, index
        )


def _schedule_shifts(run: _Run) -> None:
    for group in run.plan.groups:
        for number, shift in enumerate(group.shifts):
            for seat in range(shift.operators):
                operator = SimOperator(f"{group.name}.{number}.{seat}", (group.name,))
                _push(run, shift.start, _Event.LOGIN, (operator, group.name))
                _push(run, shift.end, _Event.SHIFT_END, operator.id)


def _next_event_time(run: _Run) -> float:
    return run.heap[0][0] if run.heap else math.inf


def _push(run: _Run, moment: float, kind: _Event, payload: Any) -> None:
    heapq.heappush(run.heap, (moment, kind.value, next(run.order), payload))


def _arrive(run: _Run, caller: SimCaller) -> None:
    _stats(run, caller).offered += 1
    run.waiting[caller.id] = caller
    run.router.enqueue(caller, caller.arrived)
    if math.isfinite(caller.patience):
        _push(run, caller.arrived + caller.patience, _Event.ABANDON, caller.id)


def _stats(run: _Run, caller: SimCaller) -> IntervalStats:
    return run.groups[caller.group].intervals[caller.interval]


def _connect(run: _Run, assignments: list[Assignment], now: float) -> None:
    for assignment in assignments:
        caller = run.waiting.pop(assignment.caller_id)  # KeyError: the router reused a caller
        state = run.operators[assignment.operator_id]
        if state.busy_since is not None or assignment.operator_id in run.talking:
            raise RuntimeError(f"router gave busy operator {assignment.operator_id} a call")
        wait = now - caller.arrived
        stats = _stats(run, caller)
        stats.answered += 1
        stats.wait_total += wait
        stats.waited += wait > 0
        stats.answered_in_target += wait <= run.target_seconds
        state.busy_since = now
        run.talking[assignment.operator_id] = caller
        _push(run, now + caller.handle_time, _Event.CALL_END, assignment.operator_id)


def _login(run: _Run, payload: tuple[SimOperator, str], now: float) -> None:
    operator, home = payload
    run.operators[operator.id] = _OperatorState(operator, home, now)
    run.router.operator_ready(operator, now)


def _call_end(run: _Run, operator_id: str, now: float) -> None:
    caller = run.talking.pop(operator_id)
    run.router.call_finished(operator_id, now)
    wrap_up = run.traffic[caller.group].wrap_up
    _push(run, now + wrap_up, _Event.WRAP_END, (operator_id, caller.group))


def _wrap_end(run: _Run, payload: tuple[str, str], now: float) -> None:
    operator_id, group = payload
    state = run.operators[operator_id]
    assert state.busy_since is not None
    _book(run, group, state.busy_since, now, "busy_seconds")
    state.busy_since = None
    if state.leaving:
        _logout(run, state, now)
    else:
        run.router.operator_ready(state.operator, now)


def _shift_end(run: _Run, operator_id: str, now: float) -> None:
    state = run.operators[operator_id]
    if state.busy_since is None:
        _logout(run, state, now)
    else:
        state.leaving = True  # finishes the call and its wrap-up first


def _logout(run: _Run, state: _OperatorState, now: float) -> None:
    run.router.operator_gone(state.operator.id, now)
    _book(run, state.home, state.logged_in, now, "staffed_seconds")
    del run.operators[state.operator.id]


def _abandon(run: _Run, caller_id: int, now: float) -> None:
    caller = run.waiting.pop(caller_id, None)
    if caller is None:
        return  # answered before their patience ran out
    _stats(run, caller).abandoned += 1
    run.router.abandon(caller_id, now)


def _close_books(run: _Run) -> None:
    for caller in run.waiting.values():
        _stats(run, caller).unserved += 1


def _book(run: _Run, group: str, start: float, end: float, what: str) -> None:
    """Add operator time to the intervals it spans (past the last interval: into the last)."""
    width = run.plan.interval_seconds
    last = run.plan.intervals - 1
    intervals = run.groups[group].intervals
    while start < end:
        index = min(int(start // width), last)
        boundary = end if index == last else min(end, (index + 1) * width)
        stats = intervals[index]
        setattr(stats, what, getattr(stats, what) + boundary - start)
        start = boundary


def _handle(run: _Run, kind: _Event, payload: Any, now: float) -> None:
    if kind is _Event.CALL_END:
        _call_end(run, payload, now)
    elif kind is _Event.WRAP_END:
        _wrap_end(run, payload, now)
    elif kind is _Event.ABANDON:
        _abandon(run, payload, now)
    elif kind is _Event.LOGIN:
        _login(run, payload, now)
    else:
        _shift_end(run, payload, now)
