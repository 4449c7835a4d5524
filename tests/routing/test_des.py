"""The discrete-event day simulation, its ACD adapter and ``hotline sim --virtual``."""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from routing.des import (
    Assignment,
    FallbackFifoRouter,
    IntervalStats,
    SimCaller,
    SimOperator,
    simulate_day,
)
from routing.des_acd import AcdRouter
from routing.erlang import StaffingTarget, predict
from routing.staffing_cli import add_virtual_sim_options, run_virtual
from routing.traffic import Distribution, GroupTraffic, Shift, TrafficPlan, load_traffic

EXAMPLE = Path(__file__).resolve().parents[2] / "dialplans" / "traffic.yaml"
HOUR = 3600.0


def one_group_plan(
    calls: list[float],
    shifts: list[Shift],
    *,
    handle: Distribution | None = None,
    wrap_up: float = 0.0,
    patience: Distribution | None = None,
    interval: float = 1800.0,
) -> TrafficPlan:
    group = GroupTraffic(
        "general",
        tuple(calls),
        handle or Distribution("exponential", 180.0),
        wrap_up,
        patience,
        tuple(shifts),
    )
    return TrafficPlan(interval, len(calls), (group,), StaffingTarget(0.8, 20.0))


# -- agreement with Erlang C --------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    mean: float
    standard_error: float

    def z(self, expected: float) -> float:
        return (self.mean - expected) / self.standard_error


def batch_means(
    intervals: list[IntervalStats],
    batches: int,
    ratio: Callable[[IntervalStats], tuple[float, float]],
) -> Estimate:
    """Mean and standard error from consecutive batches: calls close in time are correlated
    (one busy spell delays many), batches many handle times long are nearly independent."""
    size = len(intervals) // batches
    values = []
    for n in range(batches):
        parts = [ratio(s) for s in intervals[n * size : (n + 1) * size]]
        values.append(sum(p for p, _ in parts) / sum(w for _, w in parts))
    return Estimate(statistics.fmean(values), statistics.stdev(values) / math.sqrt(batches))


def test_the_virtual_day_reproduces_erlang_c_for_one_group() -> None:
    # Erlang C's world: Poisson arrivals, exponential handle times, nobody gives up, 20 fixed
    # operators, one FIFO queue, at 80 % load (16 Erlangs). ~240,000 calls through the ACD.
    agents, load, aht, target = 20, 16.0, 180.0, 20.0
    interval, intervals = 1800.0, 1520
    plan = one_group_plan(
        [load * interval / aht] * intervals, [Shift(0.0, (intervals + 10) * interval, agents)]
    )
    result = simulate_day(plan, AcdRouter(plan), seed=20)
    steady = result.groups["general"].intervals[20:]  # the first 10 h start from an empty queue
    assert sum(s.offered for s in steady) > 230_000
    assert all(s.abandoned == 0 and s.unserved == 0 for s in steady)

    def p_wait(s: IntervalStats) -> tuple[float, float]:
        return s.waited, s.answered

    def service_level(s: IntervalStats) -> tuple[float, float]:
        return s.answered_in_target, s.offered

    def asa(s: IntervalStats) -> tuple[float, float]:
        return s.wait_total, s.answered

    def occupancy(s: IntervalStats) -> tuple[float, float]:
        return s.busy_seconds, s.staffed_seconds

    erlang = predict(agents, load, aht, target)
    measured = {
        "p_wait": (batch_means(steady, 30, p_wait), erlang.p_wait),
        "service_level": (batch_means(steady, 30, service_level), erlang.service_level),
        "asa": (batch_means(steady, 30, asa), erlang.asa),
        "occupancy": (batch_means(steady, 30, occupancy), erlang.occupancy),
    }
    for name, (estimate, expected) in measured.items():
        # 4 standard errors: a correct simulator fails this less than once in 10,000 runs.
        assert abs(estimate.z(expected)) < 4, (name, estimate, expected)
    # ... and the sample is large enough for that band to mean "within a few percent":
    precision = {name: 4 * e.standard_error / x for name, (e, x) in measured.items()}
    assert precision["service_level"] < 0.03, precision
    assert precision["occupancy"] < 0.03, precision
    assert precision["p_wait"] < 0.10, precision
    assert precision["asa"] < 0.30, precision
    # The check has power: one operator more or fewer is told apart.
    service = measured["service_level"][0]
    for other in (agents - 1, agents + 1):
        assert abs(service.z(predict(other, load, aht, target).service_level)) > 4


# -- the simulation's mechanics -----------------------------------------------------------


def test_the_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    plan = load_traffic(EXAMPLE)
    first = simulate_day(plan, FallbackFifoRouter(), seed=5).summary()
    again = simulate_day(plan, FallbackFifoRouter(), seed=5).summary()
    other = simulate_day(plan, FallbackFifoRouter(), seed=6).summary()
    assert first == again
    assert first["offered"] != other["offered"]


def test_arrivals_follow_the_plan_per_interval() -> None:
    calls = [0.0, 50.0, 200.0, 0.0] * 100
    plan = one_group_plan(calls, [Shift(0.0, 400 * 1800.0, 100)])
    intervals = simulate_day(plan, FallbackFifoRouter(), seed=1).groups["general"].intervals
    for phase, expected in enumerate(calls[:4]):
        offered = sum(s.offered for s in intervals[phase::4])
        # Poisson: variance = mean, so 100 intervals stay within 4 sd of 100 x expected
        assert abs(offered - 100 * expected) <= 4 * math.sqrt(100 * expected) + 1e-9


def test_impatient_callers_give_up_when_nobody_answers() -> None:
    plan = one_group_plan(
        [200.0, 200.0],
        [Shift(3600.0, 7200.0, 5)],  # logs in after the calls have all come
        patience=Distribution("exponential", 60.0),
    )
    result = simulate_day(plan, FallbackFifoRouter(), seed=3)
    total = result.total()
    assert total.offered > 300
    # an hour of no operators against 60 s of mean patience: almost all give up, none lost
    assert total.answered + total.abandoned + total.unserved == total.offered
    assert total.abandoned > 0.95 * total.offered


def test_callers_who_never_give_up_are_left_unserved_when_the_day_ends() -> None:
    plan = one_group_plan([100.0, 100.0], [Shift(0.0, 1800.0, 1)])
    total = simulate_day(plan, FallbackFifoRouter(), seed=2).total()
    assert total.abandoned == 0 and total.unserved > 0
    assert total.answered + total.unserved == total.offered


class RecordingRouter(FallbackFifoRouter):
    """The fallback router, noting when each assignment was made."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[tuple[float, Assignment]] = []

    def assign(self, now: float) -> list[Assignment]:
        made = super().assign(now)
        self.made.extend((now, a) for a in made)
        return made


def test_no_call_is_offered_after_the_shift_and_busy_time_includes_wrap_up() -> None:
    plan = one_group_plan(
        [30.0, 30.0, 30.0, 0.0],
        [Shift(0.0, HOUR, 3)],
        handle=Distribution("fixed", 100.0),
        wrap_up=20.0,
        patience=Distribution("exponential", 600.0),
    )
    router = RecordingRouter()
    result = simulate_day(plan, router, seed=4)
    assert router.made and all(now < HOUR for now, _ in router.made)
    total = result.total()
    assert total.answered == len(router.made)
    assert total.busy_seconds == pytest.approx(total.answered * 120.0)
    # an operator busy at 01:00 finishes the call and its wrap-up, then leaves
    assert 3 * HOUR <= total.staffed_seconds < 3 * HOUR + 3 * 120.0
    assert total.abandoned > 0  # those still waiting at 01:00


class DoubleBookingRouter(FallbackFifoRouter):
    """A broken router: gives the first two callers to the same operator."""

    def __init__(self) -> None:
        super().__init__()
        self.callers: list[int] = []
        self.operator: str | None = None

    def enqueue(self, caller: SimCaller, now: float) -> None:
        self.callers.append(caller.id)

    def operator_ready(self, operator: SimOperator, now: float) -> None:
        self.operator = operator.id

    def assign(self, now: float) -> list[Assignment]:
        if len(self.callers) < 2 or self.operator is None:
            return []
        first, second = self.callers[:2]
        return [Assignment(first, self.operator), Assignment(second, self.operator)]


def test_a_router_that_double_books_an_operator_is_caught() -> None:
    plan = one_group_plan([500.0], [Shift(0.0, 1800.0, 1)])
    with pytest.raises(RuntimeError, match="busy operator"):
        simulate_day(plan, DoubleBookingRouter(), seed=1)


def test_lognormal_handle_times_have_the_mean_and_sd_of_the_file() -> None:
    rng = random.Random(9)
    samples = [Distribution("lognormal", 210.0, 150.0).sample(rng) for _ in range(200_000)]
    assert statistics.fmean(samples) == pytest.approx(210.0, rel=0.01)
    assert statistics.stdev(samples) == pytest.approx(150.0, rel=0.03)
    assert min(samples) > 0


# -- the production ACD as the router -----------------------------------------------------


def test_the_acd_routes_the_example_day_without_losing_a_call() -> None:
    plan = load_traffic(EXAMPLE)
    router = AcdRouter(plan)
    result = simulate_day(plan, router, seed=11, router_name="acd")
    summary = result.summary()
    assert summary["offered"] > 3000
    assert summary["offered"] == summary["answered"] + summary["abandoned"] + summary["unserved"]
    for name, group in result.groups.items():
        total = group.total()
        acd = router.acd.stats[name]
        # the ACD's own books agree with the simulation's
        assert (acd.offered, acd.answered, acd.abandoned) == (
            total.offered,
            total.answered,
            total.abandoned,
        )
    assert all(op.call_id is None for op in router.acd.operators.values())


def test_with_one_group_the_acd_and_plain_fifo_agree_call_for_call() -> None:
    plan = one_group_plan(
        [120.0] * 16,
        [Shift(0.0, 4 * HOUR, 10), Shift(2 * HOUR, 8 * HOUR, 6)],
        handle=Distribution("lognormal", 180.0, 120.0),
        wrap_up=10.0,
        patience=Distribution("exponential", 90.0),
    )
    acd = simulate_day(plan, AcdRouter(plan), seed=8).summary()
    fifo = simulate_day(plan, FallbackFifoRouter(), seed=8).summary()
    assert acd["abandoned"] > 0
    assert {k: v for k, v in acd.items() if k != "router"} == {
        k: v for k, v in fifo.items() if k != "router"
    }


def test_simultaneous_wrap_ups_and_shift_ends_go_through_the_acd() -> None:
    # Fixed times make events coincide: callers queued before 08:00 are all answered at 08:00,
    # so 10 calls end together, 10 wrap-ups end together, and the second round's wrap-ups end
    # exactly when the shift does. The ACD's own wrap-up timers fall due at those instants too.
    calls = [0.0] * 48
    calls[15] = 60.0  # 07:30-08:00, nobody logged in yet
    plan = one_group_plan(
        calls,
        [Shift(8 * HOUR, 8 * HOUR + 240.0, 10)],
        handle=Distribution("fixed", 100.0),
        wrap_up=20.0,
    )
    acd = simulate_day(plan, AcdRouter(plan), seed=1).total()
    fifo = simulate_day(plan, FallbackFifoRouter(), seed=1).total()
    assert acd.offered > 20
    assert acd.answered == fifo.answered == 20  # two rounds of ten, then the shift is over
    assert acd.unserved == acd.offered - 20
    assert acd.staffed_seconds == pytest.approx(10 * 240.0)


# -- hotline sim --virtual ----------------------------------------------------------------


async def sim_virtual(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_virtual_sim_options(parser)
    args = parser.parse_args(["--virtual", *argv])
    return await run_virtual(args, None)  # type: ignore[arg-type]


async def test_sim_virtual_prints_the_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert await sim_virtual("--traffic", str(EXAMPLE), "--seed", "3") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "virtual" and summary["router"] == "acd"
    for key in ("offered", "answered", "abandoned", "asa", "service_level", "occupancy"):
        assert key in summary
    assert 0 < summary["service_level"] <= 1 and 0 < summary["occupancy"] <= 1
    general = summary["groups"]["general"]
    assert general["intervals"][0]["start"] == "08:00"
    assert sum(i["offered"] for i in general["intervals"]) == general["offered"]


async def test_sim_virtual_reports_a_broken_traffic_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "traffic.yaml"
    broken.write_text("groups:\n  general:\n    handle_time: 5\n", encoding="utf-8")
    assert await sim_virtual("--traffic", str(broken)) == 2
    assert f"{broken}:" in capsys.readouterr().err
