"""Prometheus metrics of the ACD.

Per-group figures are read from the routing core when `/metrics` is scraped (`AcdCollector`),
so they are always consistent with the queues and cost nothing per call. The alarm for shared
state is a plain gauge, set by routing.node when Redis fails and cleared when it is back.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.acd import Acd
from routing.operators import OperatorState

ACD_STATE_DEGRADED = Gauge(
    "hotline_acd_state_degraded",
    "1 while this node routes on its in-process state because Redis is unreachable",
)
ACD_STATE_ERRORS = Counter(
    "hotline_acd_state_errors_total", "ACD shared-state operations that failed", ["operation"]
)
ACD_CLAIMS = Counter(
    "hotline_acd_claims_total", "Operator claims on shared state, by result", ["result"]
)  # result: won | lost


class AcdCollector(Collector):
    """Exports one routing core's per-group figures; register with `register(acd)`."""

    def __init__(self, acd: Acd) -> None:
        self._acd = acd

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        acd = self._acd
        waiting = GaugeMetricFamily("hotline_acd_waiting", "Callers waiting", labels=["group"])
        longest = GaugeMetricFamily(
            "hotline_acd_longest_wait_seconds", "Longest current wait", labels=["group"]
        )
        answered = CounterMetricFamily("hotline_acd_answered", "Calls answered", labels=["group"])
        abandoned = CounterMetricFamily(
            "hotline_acd_abandoned", "Callers who hung up before an answer", labels=["group"]
        )
        asa = GaugeMetricFamily(
            "hotline_acd_asa_seconds", "Average speed of answer since start", labels=["group"]
        )
        service_level = GaugeMetricFamily(
            "hotline_acd_service_level",
            f"Share of answered calls answered within {acd.settings.service_level_seconds:g} s",
            labels=["group"],
        )
        by_state = GaugeMetricFamily(
            "hotline_acd_operators", "Operators of the group by state", labels=["group", "state"]
        )
        occupancy = GaugeMetricFamily(
            "hotline_acd_occupancy",
            "Share of staffed operators busy (ringing, talking or wrap-up)",
            labels=["group"],
        )
        unstaffed = GaugeMetricFamily(
            "hotline_group_open_unstaffed",
            "1 while the group is open and none of its operators is logged in",
            labels=["group"],
        )
        now = acd.clock()
        for group_id in sorted(acd.groups):
            open_now = acd.is_open(acd.groups[group_id], now)
            unstaffed.add_metric([group_id], float(open_now and not acd.select.logged_in(group_id)))
            stats = acd.stats[group_id]
            waiting.add_metric([group_id], acd.waiting(group_id))
            longest.add_metric([group_id], acd.longest_wait(group_id))
            answered.add_metric([group_id], stats.answered)
            abandoned.add_metric([group_id], stats.abandoned)
            done = stats.answered
            asa.add_metric([group_id], stats.answer_wait_total / done if done else 0.0)
            service_level.add_metric([group_id], stats.answered_within_sl / done if done else 1.0)
            counts = acd.operators_by_state(group_id)
            for state in OperatorState:
                by_state.add_metric([group_id, state.value], counts[state])
            busy = sum(counts[s] for s in (OperatorState.RINGING, OperatorState.TALKING))
            busy += counts[OperatorState.WRAP_UP]
            staffed = busy + counts[OperatorState.READY]
            occupancy.add_metric([group_id], busy / staffed if staffed else 0.0)
        yield from (waiting, longest, answered, abandoned, asa, service_level, by_state, occupancy)
        yield unstaffed


def register(acd: Acd, registry: CollectorRegistry | None = None) -> AcdCollector:
    """Expose `acd` on `registry` (default: the process registry that `/metrics` serves)."""
    from prometheus_client import REGISTRY

    collector = AcdCollector(acd)
    (registry or REGISTRY).register(collector)
    return collector
