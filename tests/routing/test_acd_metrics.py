"""Per-group Prometheus figures as a supervisor's dashboard reads them from /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.metrics import register


def value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not exported")


def test_group_metrics(acd: Acd, clock: ManualClock) -> None:
    registry = CollectorRegistry()
    register(acd, registry)
    acd.enqueue("fast", "general")
    acd.enqueue("slow", "general")
    acd.enqueue("gone", "general")
    clock.advance(10)
    acd.ready("anna")
    acd.answer("fast")
    clock.advance(20)
    acd.abandon("gone")
    text = generate_latest(registry).decode()
    assert value(text, "hotline_acd_waiting", group="general") == 1
    assert value(text, "hotline_acd_longest_wait_seconds", group="general") == 30
    assert value(text, "hotline_acd_answered_total", group="general") == 1
    assert value(text, "hotline_acd_abandoned_total", group="general") == 1
    assert value(text, "hotline_acd_asa_seconds", group="general") == 10
    assert value(text, "hotline_acd_service_level", group="general") == 1.0
    assert value(text, "hotline_acd_operators", group="general", state="talking") == 1
    assert value(text, "hotline_acd_operators", group="general", state="logged_out") == 1
    assert value(text, "hotline_acd_occupancy", group="general") == 1.0
    assert value(text, "hotline_acd_offered_total", group="general") == 3
    assert value(text, "hotline_acd_answered_within_sl_total", group="general") == 1
    assert value(text, "hotline_acd_answer_wait_seconds_total", group="general") == 10
    acd.ready("boris")
    acd.answer("slow")
    text = generate_latest(registry).decode()
    assert value(text, "hotline_acd_service_level", group="general") == 0.5
    assert value(text, "hotline_acd_asa_seconds", group="general") == 20
    # slow waited 30 s, over the 20 s of the service level: the counters PromQL windows over
    assert value(text, "hotline_acd_answered_within_sl_total", group="general") == 1
    assert value(text, "hotline_acd_answer_wait_seconds_total", group="general") == 40
    assert value(text, "hotline_acd_waiting", group="tech1") == 0
