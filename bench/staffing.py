"""Staffing and day-simulation benchmark, each figure beside a peer measured in the same run.

1. Erlang C staffing decisions per second (smallest N for 80 % in 20 s), this module's Erlang B
   recursion beside the textbook sum evaluated in log space (the usual way around overflow).
2. Discrete-event simulation: simulated calls per second through the production ACD and through
   the fallback FIFO router, beside the raw limit of the same number of bare heapq push/pop
   pairs (the event queue alone, no work).
3. Agreement: one long single-group run (Erlang C's assumptions) against Erlang C.

Usage: .venv/bin/python bench/staffing.py [--calls 500000]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.des import FallbackFifoRouter, simulate_day
from routing.des_acd import AcdRouter
from routing.erlang import StaffingTarget, predict, required_agents
from routing.traffic import Distribution, GroupTraffic, Shift, TrafficPlan


def log_space_staffing(load: float, aht: float, level: float, seconds: float) -> int:
    """The peer: P(wait) from the textbook sum in log space, N tried upward from the load."""
    agents = math.floor(load) + 1
    while True:
        log_terms = [k * math.log(load) - math.lgamma(k + 1) for k in range(agents)]
        log_tail = (
            agents * math.log(load) - math.lgamma(agents + 1) + math.log(agents / (agents - load))
        )
        top = max([*log_terms, log_tail])
        tail = math.exp(log_tail - top)
        p_wait = tail / (sum(math.exp(t - top) for t in log_terms) + tail)
        if 1 - p_wait * math.exp(-(agents - load) * seconds / aht) >= level:
            return agents
        agents += 1


def bench_erlang() -> None:
    target = StaffingTarget(0.8, 20.0)
    print("Erlang C staffing (80 % in 20 s, AHT 180 s)")
    for load in (10.0, 100.0, 480.0):
        ours_n = required_agents(load, 180.0, target).agents
        peer_n = log_space_staffing(load, 180.0, 0.8, 20.0)
        assert ours_n == peer_n, (ours_n, peer_n)
        ours = _rate(lambda load=load: required_agents(load, 180.0, target))
        peer = _rate(lambda load=load: log_space_staffing(load, 180.0, 0.8, 20.0))
        print(
            f"  {load:5.0f} Erlangs -> {ours_n:3d} agents: {ours:9,.0f} decisions/s, "
            f"log-space textbook {peer:7,.0f}/s, ratio {ours / peer:6.1f}x"
        )


def _rate(work: object, budget: float = 0.5) -> float:
    runs, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget:
        work()  # type: ignore[operator]
        runs += 1
    return runs / elapsed


def single_group(calls: int, agents: int = 20, load: float = 16.0) -> TrafficPlan:
    interval, aht = 1800.0, 180.0
    per_interval = load * interval / aht
    intervals = max(1, round(calls / per_interval))
    group = GroupTraffic(
        "general",
        (per_interval,) * intervals,
        Distribution("exponential", aht),
        0.0,
        None,
        (Shift(0.0, (intervals + 10) * interval, agents),),
    )
    return TrafficPlan(interval, intervals, (group,), StaffingTarget(0.8, 20.0))


def bench_des(calls: int) -> None:
    plan = single_group(calls)
    print(f"\nDiscrete-event simulation, one group, 20 operators at 80 % load, ~{calls:,} calls")
    figures = {}
    for name, router in (("ACD", AcdRouter(plan)), ("FIFO fallback", FallbackFifoRouter())):
        started = time.perf_counter()
        result = simulate_day(plan, router, seed=1)
        elapsed = time.perf_counter() - started
        figures[name] = (result, elapsed)
        total = result.total()
        print(
            f"  {name:13s}: {total.offered / elapsed:9,.0f} calls/s "
            f"({result.events / elapsed:9,.0f} events/s, {elapsed:5.2f} s, "
            f"{result.plan.intervals / 48:5.1f} simulated days)"
        )
    result, elapsed = figures["ACD"]
    raw = _raw_heap_rate(result.events)
    print(
        f"  raw heapq push+pop: {raw:9,.0f} events/s; ACD run reaches "
        f"{result.events / elapsed / raw:.1%} of it"
    )
    _agreement(result)


def _raw_heap_rate(events: int) -> float:
    rng = random.Random(1)
    heap: list[tuple[float, int]] = []
    started = time.perf_counter()
    now = 0.0
    for n in range(events):
        heapq.heappush(heap, (now + rng.expovariate(1.0), n))
        if len(heap) > 20:
            now = heapq.heappop(heap)[0]
    return events / (time.perf_counter() - started)


def _agreement(result: object) -> None:
    from routing.des import DayResult

    assert isinstance(result, DayResult)
    steady = result.groups["general"].intervals[20:]
    erlang = predict(20, 16.0, 180.0, 20.0)
    answered = sum(s.answered for s in steady)
    offered = sum(s.offered for s in steady)
    sim = {
        "P(wait)": sum(s.waited for s in steady) / answered,
        "SL 20 s": sum(s.answered_in_target for s in steady) / offered,
        "ASA, s": sum(s.wait_total for s in steady) / answered,
        "occupancy": sum(s.busy_seconds for s in steady) / sum(s.staffed_seconds for s in steady),
    }
    expected = {
        "P(wait)": erlang.p_wait,
        "SL 20 s": erlang.service_level,
        "ASA, s": erlang.asa,
        "occupancy": erlang.occupancy,
    }
    print(f"\nAgreement with Erlang C ({offered:,} calls after a 10 h warm-up, ACD router)")
    for name, value in sim.items():
        print(
            f"  {name:9s}: simulated {value:8.4f}, Erlang C {expected[name]:8.4f}, "
            f"{(value - expected[name]) / expected[name]:+.2%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500_000, help="calls in the DES run")
    args = parser.parse_args()
    bench_erlang()
    bench_des(args.calls)


if __name__ == "__main__":
    main()
