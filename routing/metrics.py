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
# Set by the callback scheduler on every pass (routing.callbacks.scheduler.count_backlog),
# for every configured group, so a group with none shows 0 rather than no series. Every
# controller node exports the same shared-database figures: aggregate them with max, not sum.
CALLBACKS_PENDING = Gauge(
    "hotline_callbacks_pending", "Callbacks booked and not yet placed", ["group"]
)
CALLBACKS_DUE = Gauge(
    "hotline_callbacks_due",
    "Pending callbacks whose time has come (next attempt reached, window open)",
    ["group"],
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
        offered = CounterMetricFamily(
            "hotline_acd_offered", "Calls that joined the group's queue", labels=["group"]
        )
        answered = CounterMetricFamily("hotline_acd_answered", "Calls answered", labels=["group"])
        # Counters beside the since-start ASA and service level, so that PromQL can compute
        # both over any window (increase(...[1h])) for dashboards and alerts.
        within_sl = CounterMetricFamily(
            "hotline_acd_answered_within_sl",
            f"Calls answered within {acd.settings.service_level_seconds:g} s",
            labels=["group"],
        )
        wait_total = CounterMetricFamily(
            "hotline_acd_answer_wait_seconds",
            "Sum of the waits of answered calls (queued to answer)",
            labels=["group"],
        )
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
            offered.add_metric([group_id], stats.offered)
            answered.add_metric([group_id], stats.answered)
            within_sl.add_metric([group_id], stats.answered_within_sl)
            wait_total.add_metric([group_id], stats.answer_wait_total)
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
        yield from (waiting, longest, offered, answered, abandoned, within_sl, wait_total)
        yield from (asa, service_level, by_state, occupancy)
        yield unstaffed


def register(acd: Acd, registry: CollectorRegistry | None = None) -> AcdCollector:
    """Expose `acd` on `registry` (default: the process registry that `/metrics` serves)."""
    from prometheus_client import REGISTRY

    collector = AcdCollector(acd)
    (registry or REGISTRY).register(collector)
    return collector
