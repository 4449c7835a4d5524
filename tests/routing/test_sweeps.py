"""A controller node that never comes back, on the real Redis: its waiting callers are swept
out by another node (abandoned, "node lost"), an operator ringing for one of them is freed,
and a live node's callers are never touched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from hotline.clock import ManualClock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.node import AcdNode
from routing.operators import OperatorState
from routing.state import InMemoryAcdStore, RedisAcdStore
from routing.testing import group, op

S = OperatorState
REDIS_URL = "redis://127.0.0.1:6379/0"
GROUPS = {"general": group("general", ring_seconds=5.0, wrap_up_seconds=2.0)}
LOST_AFTER = 0.3  # the heartbeat's TTL in these tests (real Redis expiry: keep it short)


def make_node(prefix: str, name: str, operators: list[str]) -> AcdNode:
    specs: list[Any] = [op(o, general=5) for o in operators]
    store = RedisAcdStore(redis_client(REDIS_URL), prefix)
    return AcdNode(
        Acd(GROUPS, specs, clock=ManualClock()),
        store,
        node_id=name,
        heartbeat_seconds=0.1,
        node_lost_seconds=LOST_AFTER,
    )


@asynccontextmanager
async def started_nodes(
    prefix: str, a_operators: list[str], b_operators: list[str]
) -> AsyncIterator[tuple[AcdNode, AcdNode]]:
    """Nodes A and B, each with its operators, started on one Redis; their stores closed after."""
    a = make_node(prefix, "node-a", a_operators)
    b = make_node(prefix, "node-b", b_operators)
    try:
        await a.start()
        await b.start()
        yield a, b
    finally:
        await a.store.close()
        await b.store.close()


async def gone(node: AcdNode, name: str) -> None:
    """Wait until `name`'s heartbeat has expired in Redis."""
    async with asyncio.timeout(5):
        while await node.store.node_alive(name):  # noqa: ASYNC110 - Redis expires the key
            await asyncio.sleep(0.05)


async def test_a_lost_nodes_waiting_callers_are_swept_by_another(redis_prefix: str) -> None:
    async with started_nodes(redis_prefix, [], ["o1"]) as (a, b):
        await a.enqueue("c1", "general", number="79160000001")
        await a.enqueue("c2", "general", number="79160000002")
        beat_at = time.monotonic()
        await a.beat()
        early = await b.sweep_lost_callers()
        if time.monotonic() - beat_at < LOST_AFTER:
            assert early == []  # A is alive: nothing to sweep
        # node A dies: no more heartbeats, its callers stay in Redis
        await gone(b, "node-a")

        assert sorted([*early, *await b.sweep_lost_callers()]) == ["c1", "c2"]
        assert await b.store.callers() == {}
        assert b.acd.stats["general"].abandoned == 2
        assert await b.sweep_lost_callers() == []  # swept once, counted once
        # a citizen who calls back gets their old place, not the end of the queue
        place = await b.store.recall_place("79160000001")
        assert place is not None and place["group"] == "general"


async def test_an_operator_ringing_for_a_lost_nodes_caller_is_freed(redis_prefix: str) -> None:
    async with started_nodes(redis_prefix, ["o1"], ["o1"]) as (a, b):
        await a.login("o1")
        offers = await a.enqueue("c1", "general")
        assert [o.operator_id for o in offers] == ["o1"]  # o1 rings for A's caller
        assert (await b.store.operator("o1") or {})["state"] == "ringing"
        await gone(b, "node-a")  # ... and node A dies with it

        await b.refresh_operator("o1")  # B still believes o1 is ringing for someone
        assert await b.sweep_lost_callers() == ["c1"]
        record = await b.store.operator("o1") or {}
        assert (record["state"], record["call"]) == ("ready", "")
        await b.refresh_operator("o1")
        # the freed operator takes B's next caller at once
        offers = await b.enqueue("c2", "general")
        assert [o.operator_id for o in offers] == ["o1"]


async def test_a_live_nodes_callers_are_never_swept(redis_prefix: str) -> None:
    """A beats as it runs; B sweeps between beats, for well past the heartbeat's TTL in all.
    The beats are driven here, not by A's timer, so only a stall longer than the whole TTL
    between one beat and the next sweep could make A look lost, and then sweeping would be
    right: that case is told apart instead of failing the test."""
    async with started_nodes(redis_prefix, ["o1"], []) as (a, b):
        await a.login("o1")
        await a.enqueue("ringing", "general")
        await a.enqueue("waiting", "general")
        for _ in range(8):
            beat_at = time.monotonic()
            await a.beat()
            swept = await b.sweep_lost_callers()
            if time.monotonic() - beat_at < LOST_AFTER:  # A was alive for sure
                assert swept == []
            elif swept:  # A really was silent longer than its TTL: nothing to check after
                return
            await asyncio.sleep(LOST_AFTER / 2)
        assert sorted(await b.store.callers()) == ["ringing", "waiting"]
        assert (await b.store.operator("o1") or {})["state"] == "ringing"


async def test_a_talking_caller_of_a_lost_node_is_left_alone(redis_prefix: str) -> None:
    async with started_nodes(redis_prefix, ["o1"], []) as (a, b):
        await a.login("o1")
        await a.enqueue("c1", "general")
        await a.answer("c1")  # the bridge lives in Asterisk, not in node A
        await gone(b, "node-a")

        assert await b.sweep_lost_callers() == []
        assert (await b.store.operator("o1") or {})["state"] == "talking"


def test_a_heartbeat_slower_than_its_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        AcdNode(
            Acd(GROUPS, [], clock=ManualClock()),
            InMemoryAcdStore(),
            node_id="n",
            heartbeat_seconds=5.0,
            node_lost_seconds=5.0,
        )
