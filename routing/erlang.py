"""Erlang C: how long callers wait with N operators, and how many operators a target needs.

The model (M/M/N): calls arrive as a Poisson stream, handle times are exponential, nobody hangs
up while waiting, N operators serve one FIFO queue. Its formulas are the planning standard even
though real callers do give up; ``routing.des`` measures what that costs.

Numerics: the textbook form divides ``A**N / N!`` by a sum of such terms, which overflows a float
near N = 170. Here the probability of waiting is derived from Erlang B, whose recursion
``B(n) = A*B(n-1) / (n + A*B(n-1))`` stays within [0, 1] at every step, so a thousand operators
cost a thousand multiplications and lose no precision.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ErlangC:
    """What Erlang C predicts for one interval with a given number of operators.

    ``service_level`` is P(wait <= target_seconds); ``asa`` the mean wait over all calls,
    including those answered at once; ``occupancy`` the share of staffed time spent on calls.
    """

    agents: int
    load: float  # offered traffic in Erlangs: arrival rate x mean handle time
    p_wait: float
    asa: float
    service_level: float
    occupancy: float
    target_seconds: float

    @property
    def stable(self) -> bool:
        """False when the queue grows without bound (load >= agents): every caller waits."""
        return self.agents > self.load


def offered_load(calls: float, interval_seconds: float, aht: float) -> float:
    """Offered traffic in Erlangs: `calls` per `interval_seconds`, `aht` seconds each."""
    if calls < 0 or interval_seconds <= 0 or aht <= 0:
        raise ValueError("calls must be >= 0, interval and handle time > 0")
    return calls * aht / interval_seconds


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of an Erlang loss system (the recursion everything else builds on)."""
    return deque(_erlang_b_series(load, agents), maxlen=1)[0] if agents > 0 else 1.0


def _erlang_b_series(load: float, up_to: int) -> Iterator[float]:
    """B(1), B(2), ... B(up_to) for one load, each from the previous one."""
    if load < 0:
        raise ValueError("load must be >= 0")
    blocking = 1.0
    for n in range(1, up_to + 1):
        blocking = load * blocking / (n + load * blocking)
        yield blocking


def _wait_probability(agents: int, load: float, blocking: float) -> float:
    """Erlang C from Erlang B with the same agents: C = N*B / (N - A*(1 - B))."""
    if agents <= load:
        return 1.0
    return agents * blocking / (agents - load * (1.0 - blocking))


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller has to wait (1.0 when load >= agents)."""
    if agents < 1:
        raise ValueError("agents must be at least 1")
    return _wait_probability(agents, load, erlang_b(agents, load))


def predict(agents: int, load: float, aht: float, target_seconds: float) -> ErlangC:
    """Erlang C's figures for `agents` operators facing `load` Erlangs with mean handle `aht`."""
    if agents < 1:
        raise ValueError("agents must be at least 1")
    return _figures(agents, load, aht, target_seconds, erlang_b(agents, load))


def _figures(
    agents: int, load: float, aht: float, target_seconds: float, blocking: float
) -> ErlangC:
    if aht <= 0 or target_seconds < 0:
        raise ValueError("handle time must be > 0 and target seconds >= 0")
    p_wait = _wait_probability(agents, load, blocking)
    if agents <= load:
        return ErlangC(agents, load, 1.0, math.inf, 0.0, 1.0, target_seconds)
    spare = agents - load
    # A waiting caller's wait is exponential with rate (N - A)/AHT, hence both lines below.
    service_level = 1.0 - p_wait * math.exp(-spare * target_seconds / aht)
    asa = p_wait * aht / spare
    return ErlangC(agents, load, p_wait, asa, service_level, load / agents, target_seconds)


@dataclass(frozen=True)
class StaffingTarget:
    """What an interval must achieve; any target left None is not checked.

    ``service_level`` within ``target_seconds`` (e.g. 0.8 in 20 s), ``asa`` in seconds,
    ``max_occupancy`` as a share (operators kept below e.g. 0.85 to avoid burnout).
    """

    service_level: float | None = 0.8
    target_seconds: float = 20.0
    asa: float | None = None
    max_occupancy: float | None = None

    def __post_init__(self) -> None:
        if self.service_level is not None and not 0 < self.service_level < 1:
            raise ValueError("service level must be between 0 and 1 (exclusive)")
        if self.target_seconds < 0:
            raise ValueError("target seconds must be >= 0")
        if self.asa is not None and self.asa <= 0:
            raise ValueError("ASA target must be > 0 seconds")
        if self.max_occupancy is not None and not 0 < self.max_occupancy <= 1:
            raise ValueError("maximum occupancy must be in (0, 1]")

    def met_by(self, figures: ErlangC) -> bool:
        if not figures.stable:
            return False
        if self.service_level is not None and figures.service_level < self.service_level:
            return False
        if self.asa is not None and figures.asa > self.asa:
            return False
        return self.max_occupancy is None or figures.occupancy <= self.max_occupancy


@dataclass(frozen=True)
class Staffing:
    """Operators an interval needs: on the phones (`agents`) and on the roster (`scheduled`)."""

    agents: int
    scheduled: int
    figures: ErlangC


MAX_AGENTS = 100_000  # a guard against a target no finite staff can meet


def required_agents(
    load: float, aht: float, target: StaffingTarget, shrinkage: float = 0.0
) -> Staffing:
    """The smallest number of operators whose Erlang C figures meet `target`.

    `shrinkage` is the share of paid time not on the phones (breaks, training, absence): the
    roster needs ``ceil(agents / (1 - shrinkage))`` people.
    """
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    if load == 0:
        return Staffing(0, 0, ErlangC(0, 0.0, 0.0, 0.0, 1.0, 0.0, target.target_seconds))
    # One pass of the Erlang B recursion: B(n) for each candidate n comes from B(n-1).
    for agents, blocking in enumerate(_erlang_b_series(load, MAX_AGENTS), start=1):
        if agents <= load:
            continue
        figures = _figures(agents, load, aht, target.target_seconds, blocking)
        if target.met_by(figures):
            scheduled = math.ceil(agents / (1.0 - shrinkage) - 1e-9)
            return Staffing(agents, scheduled, figures)
    raise ValueError(f"no staff up to {MAX_AGENTS} operators meets the target")
