from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from databases import delete_redis_prefix

from hotline.clock import ManualClock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.testing import group, op


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def acd(clock: ManualClock) -> Acd:
    groups = {
        "general": group("general"),
        "tech1": group("tech1", widen_to=("tech2",), overflow_group="general"),
        "tech2": group("tech2", ring_seconds=20.0),
    }
    operators = [
        op("anna", general=5),
        op("boris", general=8),
        op("vera", tech1=5),
        op("gleb", tech2=9),
    ]
    return Acd(groups, operators, clock=clock)


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the real Redis, deleted afterwards. Fails if Redis is absent."""
    prefix = f"hotline-test:acd:{uuid.uuid4().hex}:"
    client = redis_client(REDIS_URL)
    try:
        assert await client.ping(), "the tests need the real Redis at 127.0.0.1:6379"
    finally:
        await client.aclose()
    yield prefix
    await delete_redis_prefix(prefix)
