"""A caller who left keeps their place only within the recall window, through `AcdNode`, on
either store (issue 16, item 1: on one node a caller back after an hour still got place 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hotline.clock import ManualClock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.model import AcdSettings
from routing.node import AcdNode
from routing.state import AcdStore, InMemoryAcdStore, RedisAcdStore
from routing.testing import group, op

REDIS_URL = "redis://127.0.0.1:6379/0"
WINDOW = 30.0

StoreFactory = Callable[[], AcdStore]


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[StoreFactory]:
    clients = []

    def make() -> AcdStore:
        if request.param == "memory":
            return InMemoryAcdStore()
        client = redis_client(REDIS_URL)
        clients.append(client)
        return RedisAcdStore(client, redis_prefix)

    yield make
    for client in clients:
        await client.aclose()


async def queue_of_two(stores: StoreFactory, clock: ManualClock) -> AcdNode:
    """Nobody ready in `general`: ana calls first (place 1), then boris (place 2)."""
    acd = Acd(
        {"general": group("general")},
        [op("o1", general=5)],
        clock=clock,
        settings=AcdSettings(recall_window_seconds=WINDOW),
    )
    node = AcdNode(acd, stores(), node_id="n1")
    await node.start()
    await node.enqueue("ana-1", "general", number="79990000001")
    clock.advance(1)
    await node.enqueue("boris-1", "general", number="79990000002")
    return node


def places(node: AcdNode) -> list[str]:
    waiting = [c for c in node.acd.callers.values() if c.state == "waiting"]
    return [c.call_id for c in sorted(waiting, key=lambda c: (-c.priority, c.seq))]


async def test_a_caller_back_within_the_window_keeps_the_place(stores: StoreFactory) -> None:
    clock = ManualClock()
    node = await queue_of_two(stores, clock)
    await node.abandon("ana-1")
    clock.advance(WINDOW - 1)
    await node.enqueue("ana-2", "general", number="79990000001")
    assert places(node) == ["ana-2", "boris-1"]


async def test_a_caller_back_after_the_window_goes_to_the_back(stores: StoreFactory) -> None:
    clock = ManualClock()
    node = await queue_of_two(stores, clock)
    await node.abandon("ana-1")
    clock.advance(3600)
    await node.enqueue("ana-2", "general", number="79990000001")
    assert places(node) == ["boris-1", "ana-2"]
