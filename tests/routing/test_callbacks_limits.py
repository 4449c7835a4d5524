"""Callbacks nobody can turn into a weapon: rate limits counted in the shared database (two
nodes count together), one pending callback per number across groups, and a flood booked into
one group that cannot delay another group's callback. The real database of each kind, the
simulator's AMI server playing Asterisk."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY

from hotline.ami.client import AmiClient
from hotline.clock import ManualClock
from routing.acd import Acd
from routing.callbacks.model import CallbackRefused, Refusal
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.node import AcdNode
from routing.state import InMemoryAcdStore
from routing.testing import group, op
from tests.routing.test_callbacks import SETTINGS, World, db_url, eventually, world

__all__ = ["db_url"]  # the fixture, imported for this module's tests

GENEROUS = replace(SETTINGS, per_group_per_hour=10_000, per_requester_per_minute=10_000,
                   per_requester_per_day=10_000)  # fmt: skip


async def with_emergency(w: World, settings: CallbackSettings = SETTINGS) -> CallbackScheduler:
    """A node serving ``general`` (anna, on a break) and ``emergency`` (ekaterina, ready)."""
    groups = {"general": group("general"), "emergency": group("emergency")}
    specs = [op("anna", general=5), op("ekaterina", emergency=5)]
    node = AcdNode(Acd(groups, specs, clock=ManualClock()), InMemoryAcdStore(), node_id="n1")
    await node.start()
    for operator in ("anna", "ekaterina"):
        await node.login(operator)
    await node.pause("anna", "обед")
    client = AmiClient("127.0.0.1", w.server.port, "ctl", "secret", ping_interval=60)
    await client.connect()
    scheduler = CallbackScheduler(w.store, node, client, settings=settings, now=w.now)
    w.nodes.append(node)
    w.schedulers.append(scheduler)
    w.clients.append(client)
    return scheduler


def rate_limited_events() -> float:
    value = REGISTRY.get_sample_value("hotline_security_events_total", {"category": "rate_limited"})
    return value or 0.0


async def refused_why(scheduler: CallbackScheduler, **request: str) -> Refusal:
    with pytest.raises(CallbackRefused) as refused:
        await scheduler.request(**request)  # type: ignore[arg-type]
    return refused.value.why


# --- fairness ------------------------------------------------------------------------------


async def test_a_flood_in_one_group_does_not_delay_another_groups_callback(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await with_emergency(w, GENEROUS)
        for i in range(300):  # the flood, all before the emergency one
            await scheduler.request(phone=f"7916{i:07d}", group="general", requester="x:flood")
        emergency = await scheduler.request(phone="79031112233", group="emergency")

        claimed = await scheduler.run_due()

        assert emergency.id in claimed  # the first pass, not after the flood
        assert len(claimed) == SETTINGS.max_in_flight + 1  # general keeps to its own slots
        await eventually(lambda: len(w.originator.dialled()) == 2)
        # the first calls placed are the emergency operator's, then the citizen's
        assert w.originator.dialled() == [
            "PJSIP/ekaterina",
            "Local/79031112233@hotline-callback-out",
        ]
        async with asyncio.timeout(5):  # the row follows the answered call
            while (await w.row(emergency.id)).state != "connected":  # noqa: ASYNC110 - the row is in the database
                await asyncio.sleep(0.01)
        assert await scheduler.run_due() == []  # general's slots stay full while anna is away


# --- one pending callback per number -------------------------------------------------------


async def test_one_victim_cannot_be_booked_once_per_group(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await w.add_node("n1", ["anna"])
        first = await scheduler.request(phone="8 916 123-45-67", group="general", requester="x:a")
        for other in ("payments", "general"):
            why = await refused_why(
                scheduler, phone="+7 916 123 45 67", group=other, requester="x:b"
            )
            assert why is Refusal.DUPLICATE
        # the menus too: a caller asking for a callback in another group keeps their place
        await w.node.enqueue("c1", "payments", number="79161234567")
        with pytest.raises(CallbackRefused, match="уже заказан"):
            await scheduler.request_from_call("c1", phone="79161234567", group="payments")
        assert "c1" in w.node.acd.callers
        assert await scheduler.cancel(first.id)
        again = await scheduler.request(phone="79161234567", group="payments", requester="x:b")
        assert again.state == "pending"  # once the first is over, a new one may be booked


# --- rate limits ---------------------------------------------------------------------------


async def test_three_a_day_per_number_counted_by_every_node(db_url: str) -> None:
    async with world(db_url) as w:
        a = await w.add_node("node-a", ["anna"])
        b = await w.add_node("node-b", ["boris"])
        before = rate_limited_events()
        for scheduler in (a, b, a):
            made = await scheduler.request(phone="79161234567", group="general")
            assert await scheduler.cancel(made.id)
        assert await refused_why(b, phone="89161234567", group="general") is Refusal.RATE_LIMITED
        assert rate_limited_events() == before + 1
        # the menus count against the same number
        with pytest.raises(CallbackRefused, match="Слишком много"):
            await a.request_from_call("c9", phone="79161234567", group="general")
        w.now.advance(24 * 3600)
        assert (await b.request(phone="79161234567", group="general")).state == "pending"


async def test_a_requester_is_limited_per_minute_and_per_day_across_nodes(db_url: str) -> None:
    async with world(db_url) as w:
        limits = replace(SETTINGS, per_requester_per_minute=4, per_requester_per_day=6)
        a = await w.add_node("node-a", ["anna"], settings=limits)
        b = await w.add_node("node-b", ["boris"], settings=limits)
        for i in range(4):
            await (a, b)[i % 2].request(phone=f"7916000000{i}", group="general", requester="k")
        why = await refused_why(a, phone="79160000009", group="general", requester="k")
        assert why is Refusal.RATE_LIMITED
        other = await b.request(phone="79160000009", group="general", requester="other-key")
        assert other.state == "pending"  # the limit is the requester's, not everybody's
        w.now.advance(61)
        for i in range(4, 6):
            await b.request(phone=f"7916000000{i}", group="general", requester="k")
        why = await refused_why(b, phone="79160000007", group="general", requester="k")
        assert why is Refusal.RATE_LIMITED  # 6 today
        assert await w.store.active_for("79160000007") is None


async def test_a_group_takes_so_many_api_callbacks_an_hour_and_the_menus_still_book(
    db_url: str,
) -> None:
    async with world(db_url) as w:
        scheduler = await w.add_node(
            "n1", ["anna"], settings=replace(SETTINGS, per_group_per_hour=3)
        )
        for i in range(3):
            await scheduler.request(phone=f"7916000000{i}", group="general", requester=f"k{i}")
        why = await refused_why(scheduler, phone="79160000005", group="general", requester="k5")
        assert why is Refusal.RATE_LIMITED
        assert (await scheduler.request(phone="79160000005", group="payments")).state == "pending"
        booked = await scheduler.request_from_call("c1", phone="79160000006", group="general")
        assert booked.source == "ivr"  # a caller on the line is not the API's flood
        w.now.advance(3601)
        assert (await scheduler.request(phone="79160000007", group="general")).state == "pending"


async def test_nodes_booking_at_once_cannot_both_take_the_last_place(db_url: str) -> None:
    async with world(db_url) as w:
        limits = replace(SETTINGS, per_requester_per_minute=5)
        a = await w.add_node("node-a", ["anna"], settings=limits)
        b = await w.add_node("node-b", ["boris"], settings=limits)
        requests = [
            (a, b)[i % 2].request(phone=f"79160000{i:03d}", group="general", requester="k")
            for i in range(20)
        ]
        results = await asyncio.gather(*requests, return_exceptions=True)
        booked = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, CallbackRefused)]
        assert len(booked) == 5 and len(refused) == 15
        assert {r.why for r in refused} == {Refusal.RATE_LIMITED}
        # and one number booked from both nodes at once gets one callback
        same = [
            n.request(phone="79039998877", group=g) for n, g in ((a, "general"), (b, "payments"))
        ]
        outcomes = await asyncio.gather(*same, return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert [o.why for o in outcomes if isinstance(o, CallbackRefused)] == [Refusal.DUPLICATE]


def test_limits_below_one_are_refused() -> None:
    for name in ("per_phone_per_day", "per_requester_per_minute", "per_group_per_hour"):
        with pytest.raises(ValueError, match=name):
            CallbackSettings(**{name: 0})  # type: ignore[arg-type]
