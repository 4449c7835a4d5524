"""A real Redis that goes away and comes back (issue 16, item 5): the other outage tests
point at a port where Redis never ran or call the degraded mode by hand.

Each test runs its own redis-server on a Unix socket in its directory (no port to race
for), kills it in the middle of the work, and starts it again, empty, on the same socket.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.clock import ManualClock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.metrics import ACD_STATE_DEGRADED
from routing.node import AcdNode
from routing.state import RedisAcdStore
from routing.testing import group, op

GROUPS = {"general": group("general", ring_seconds=30.0)}


class OwnRedis:
    """redis-server on a Unix socket, stopped and started at will."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.directory = directory
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (scripts/test installs it with PostgreSQL)"
        self.process = await asyncio.create_subprocess_exec(
            binary, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_client(self.url)
        try:
            async with asyncio.timeout(20):
                while True:
                    try:
                        if await client.ping():
                            return
                    except Exception:  # redis-py's connection errors until it listens
                        pass
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        self.socket.unlink(missing_ok=True)


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.returncode is None:
            await server.kill()


async def test_losing_redis_degrades_and_getting_it_back_restores_the_shared_view(
    redis: OwnRedis,
) -> None:
    alarms: list[str] = []
    store = RedisAcdStore(redis_client(redis.url), "outage:")
    node = AcdNode(
        Acd(GROUPS, [op("o1", general=5), op("o2", general=5)], clock=ManualClock()),
        store,
        node_id="n1",
        on_degraded=alarms.append,
    )
    try:
        await node.start()
        await node.login("o1")
        assert [o.operator_id for o in await node.enqueue("c1", "general")] == ["o1"]
        assert not node.degraded

        await redis.kill()  # Redis goes away mid-shift
        await node.login("o2")  # the first write that fails puts the node on local state
        assert node.degraded and alarms and "Redis" in alarms[0]
        assert ACD_STATE_DEGRADED._value.get() == 1
        # calls still route while Redis is away
        assert [o.operator_id for o in await node.enqueue("c2", "general")] == ["o2"]
        assert await node.recover() is False  # still away: stays degraded

        await redis.start()  # back, and empty
        assert await node.recover() is True
        assert not node.degraded and ACD_STATE_DEGRADED._value.get() == 0
        # what happened while it was away is in Redis now, for the other nodes
        assert (await store.operator("o1") or {})["call"] == "c1"
        assert (await store.operator("o2") or {})["call"] == "c2"
        assert (await store.caller("c2") or {})["state"] == "ringing"
    finally:
        await store.close()
