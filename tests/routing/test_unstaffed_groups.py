"""An open group nobody is logged in to: the emergency line widens at once or sends the caller
on to its overflow group, so "all busy" is the last resort; and the state is a metric an alert
rule watches (monitoring/rules.yml, tests/monitoring/test_acd_rules.py)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.connect import connect_call
from routing.metrics import register
from routing.node import AcdNode
from routing.state import InMemoryAcdStore
from routing.testing import group, op
from tests.routing.test_acd_connect import ScriptedChannel

NIGHT_IS_CLOSED = "night"
GUARD = 5.0  # only keeps a broken build from hanging: no time is asserted


def make_node(clock: ManualClock) -> AcdNode:
    groups = {
        # the shipped emergency group's shape: widens to general after a wait
        "emergency": group("emergency", widen_after_seconds=20, widen_to=("general",)),
        "general": group("general"),
        "hotline": group("hotline", overflow_group="emergency"),
        "night": group("night", overflow_group="emergency"),
    }
    operators = [op("duty", emergency=9), op("anna", general=5), op("olga", night=5)]

    def is_open(g: object, now: float) -> bool:
        return getattr(g, "id", "") != NIGHT_IS_CLOSED

    acd = Acd(groups, operators, clock=clock, is_open=is_open)
    return AcdNode(acd, InMemoryAcdStore(), node_id="n1")


async def test_emergency_with_nobody_on_duty_rings_a_general_operator_at_once() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna")  # general only; nobody of the emergency group logged in
    channel = ScriptedChannel(node, ["ANSWER"], clock)
    call = connect_call(channel, node, "emergency", number="+79990000001")
    result = await asyncio.wait_for(call, GUARD)  # the clock is still: a wait never ends
    assert (result.outcome, result.operator_id) == ("answered", "anna")
    dial = [c for c in channel.commands if c[0] == "Dial"]
    assert dial[0][1] == "PJSIP/anna"
    # answered after the 3 s of ringing alone: no widening wait before the phone rang
    assert node.acd.stats["emergency"].answer_wait_total == 3.0


async def test_a_group_with_nobody_logged_in_sends_the_caller_to_its_overflow_group() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("duty")
    channel = ScriptedChannel(node, ["ANSWER"], clock)
    result = await asyncio.wait_for(connect_call(channel, node, "hotline"), GUARD)
    assert (result.outcome, result.operator_id) == ("answered", "duty")
    assert node.acd.stats["emergency"].answered == 1


async def test_all_busy_only_when_nobody_anywhere_could_answer() -> None:
    clock = ManualClock()
    node = make_node(clock)
    channel = ScriptedChannel(node, [], clock)
    result = await connect_call(channel, node, "hotline")
    assert (result.outcome, result.overflow_reason) == ("overflow", "nobody_logged_in")
    assert channel.commands == []


def unstaffed(registry: CollectorRegistry, group_id: str) -> float | None:
    return registry.get_sample_value("hotline_group_open_unstaffed", {"group": group_id})


async def test_open_unstaffed_groups_are_a_metric() -> None:
    clock = ManualClock()
    node = make_node(clock)
    registry = CollectorRegistry()
    register(node.acd, registry)
    await node.login("duty", paused_reason="обед")  # paused is still logged in
    assert unstaffed(registry, "emergency") == 0
    assert unstaffed(registry, "general") == 1  # open, nobody logged in
    assert unstaffed(registry, NIGHT_IS_CLOSED) == 0  # closed: nobody expected
    await node.logout("duty")
    assert unstaffed(registry, "emergency") == 1
