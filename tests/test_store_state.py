"""Shared call state, the same behaviour asserted on the in-memory backend and on real Redis.

Each Redis test works under its own random key prefix and deletes everything under it
afterwards, so reruns and parallel runs against the one CI Redis never interfere.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from databases import delete_redis_prefix
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hotline.store.state import (
    CallState,
    InMemoryCallState,
    RedisCallState,
    StateUnavailable,
    open_call_state,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
SHORT_TTL = 0.2
PAST_SHORT_TTL = 0.4

OpenPeer = Callable[[], Awaitable[CallState]]


async def _require_redis() -> None:
    """Fail loudly, not skip, when CI did not start Redis: a skip would hide lost coverage."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}). "
            "These tests need the real service; start it (CI does) instead of skipping.",
            pytrace=False,
        )
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def open_peer(request: pytest.FixtureRequest) -> AsyncIterator[OpenPeer]:
    """Opens views onto one shared store, as separate controller nodes would hold.

    On Redis every peer has its own client and connections, so concurrent calls from
    different peers are a real race inside Redis, not just interleaved coroutines.
    """
    if request.param == "memory":
        shared = InMemoryCallState()

        async def memory_peer() -> CallState:
            return shared

        yield memory_peer
        return

    await _require_redis()
    prefix = f"hotline-test:{uuid.uuid4().hex}:"
    peers: list[CallState] = []

    async def redis_peer() -> CallState:
        peer = open_call_state("redis", REDIS_URL, prefix=prefix)
        peers.append(peer)
        return peer

    try:
        yield redis_peer
    finally:
        for peer in peers:
            await peer.close()
        await delete_redis_prefix(prefix)


@pytest.fixture
async def state(open_peer: OpenPeer) -> CallState:
    return await open_peer()


def _unused_port() -> int:
    """A local port with nothing listening on it (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- per-call fields --------------------------------------------------------------------


async def test_put_get_update_delete(state: CallState) -> None:
    await state.put("1732701600.1", {"caller": "+79990001122", "menu": "root"})
    assert await state.get("1732701600.1") == {"caller": "+79990001122", "menu": "root"}

    assert await state.update("1732701600.1", {"menu": "passport", "lang": "ru"}) is True
    assert await state.get("1732701600.1") == {
        "caller": "+79990001122",
        "menu": "passport",
        "lang": "ru",
    }

    assert await state.delete("1732701600.1") is True
    assert await state.get("1732701600.1") is None
    assert await state.delete("1732701600.1") is False


async def test_put_replaces_all_fields(state: CallState) -> None:
    await state.put("c1", {"a": "1", "b": "2"})
    await state.put("c1", {"c": "3"})
    assert await state.get("c1") == {"c": "3"}


async def test_update_of_unknown_call_does_not_create_it(state: CallState) -> None:
    assert await state.update("ghost", {"menu": "root"}) is False
    assert await state.get("ghost") is None
    assert "ghost" not in await state.active()


async def test_active_lists_stored_calls(state: CallState) -> None:
    assert await state.active() == []
    await state.put("a", {"x": "1"})
    await state.put("b", {"x": "2"})
    await state.put("c", {"x": "3"})
    await state.delete("b")
    assert sorted(await state.active()) == ["a", "c"]


async def test_invalid_arguments_are_refused(state: CallState) -> None:
    with pytest.raises(ValueError, match="empty"):
        await state.put("c1", {})
    with pytest.raises(ValueError, match="positive"):
        await state.put("c1", {"a": "1"}, ttl_seconds=0)
    with pytest.raises(ValueError, match="positive"):
        await state.claim("k", "node-a", ttl_seconds=-1)


# --- expiry -----------------------------------------------------------------------------


def within_ttl(started: float) -> bool:
    """Whether less than SHORT_TTL has passed since `started` (time.monotonic()). A check that
    something still holds before its TTL is only made while that is true: on a machine that
    stalls longer than the TTL it would fail for the wrong reason. Expiry checks need no
    guard: a slow machine only waits longer."""
    return time.monotonic() - started < SHORT_TTL


async def test_call_expires_after_ttl(state: CallState) -> None:
    await state.put("long", {"menu": "root"})
    started = time.monotonic()
    await state.put("short", {"menu": "root"}, ttl_seconds=SHORT_TTL)
    got = await state.get("short")
    if within_ttl(started):
        assert got == {"menu": "root"}

    await asyncio.sleep(PAST_SHORT_TTL)

    assert await state.get("short") is None
    assert await state.active() == ["long"]
    assert await state.update("short", {"menu": "late"}) is False
    assert await state.get("short") is None


async def test_update_keeps_the_ttl(state: CallState) -> None:
    started = time.monotonic()
    await state.put("c1", {"menu": "root"}, ttl_seconds=SHORT_TTL)
    updated = await state.update("c1", {"menu": "passport"})
    if within_ttl(started):
        assert updated is True
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await state.get("c1") is None


# --- claims -----------------------------------------------------------------------------


async def test_fifty_concurrent_claims_have_exactly_one_winner(open_peer: OpenPeer) -> None:
    peers = [await open_peer() for _ in range(10)]
    for peer in peers:
        assert await peer.ping()  # connections open before the race starts

    results = await asyncio.gather(
        *(peers[i % len(peers)].claim("callback:42", f"owner-{i}", 5.0) for i in range(50))
    )

    assert results.count(True) == 1


async def test_claim_is_free_again_after_expiry(state: CallState) -> None:
    started = time.monotonic()
    assert await state.claim("callback:7", "node-a", SHORT_TTL) is True
    taken = await state.claim("callback:7", "node-b", SHORT_TTL)
    if within_ttl(started):
        assert taken is False
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await state.claim("callback:7", "node-b", SHORT_TTL) is True


async def test_owner_may_claim_again(state: CallState) -> None:
    assert await state.claim("callback:8", "node-a", 5.0) is True
    assert await state.claim("callback:8", "node-a", 5.0) is True
    assert await state.claim("callback:8", "node-b", 5.0) is False


async def test_release_by_non_owner_is_refused(state: CallState) -> None:
    assert await state.claim("callback:9", "node-a", 5.0) is True

    assert await state.release("callback:9", "node-b") is False
    assert await state.claim("callback:9", "node-b", 5.0) is False

    assert await state.release("callback:9", "node-a") is True
    assert await state.release("callback:9", "node-a") is False
    assert await state.claim("callback:9", "node-b", 5.0) is True


async def test_stale_owner_cannot_release_the_new_owners_claim(state: CallState) -> None:
    assert await state.claim("callback:10", "node-a", SHORT_TTL) is True
    await asyncio.sleep(PAST_SHORT_TTL)
    assert await state.claim("callback:10", "node-b", 5.0) is True

    assert await state.release("callback:10", "node-a") is False
    assert await state.claim("callback:10", "node-c", 5.0) is False


# --- counters and health ----------------------------------------------------------------


async def test_incr_counts_across_peers(open_peer: OpenPeer) -> None:
    peers = [await open_peer() for _ in range(5)]
    assert await peers[0].incr("calls_today") == 1
    assert await peers[1].incr("calls_today", by=4) == 5

    await asyncio.gather(*(peers[i % 5].incr("calls_today") for i in range(50)))

    assert await peers[2].incr("calls_today", by=0) == 55


async def test_ping(state: CallState) -> None:
    assert await state.ping() is True


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(InMemoryCallState(), CallState)
    assert isinstance(open_call_state("memory", REDIS_URL), InMemoryCallState)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown call state backend 'etcd'"):
        open_call_state("etcd", REDIS_URL)


# --- Redis not there --------------------------------------------------------------------


async def test_redis_not_listening_raises_state_unavailable() -> None:
    port = _unused_port()
    client = Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
    state = RedisCallState(client, prefix="hotline-test:nowhere:")
    try:
        for operation in (
            state.put("c1", {"a": "1"}),
            state.get("c1"),
            state.update("c1", {"a": "2"}),
            state.delete("c1"),
            state.active(),
            state.claim("k", "node-a", 1.0),
            state.release("k", "node-a"),
            state.incr("n"),
        ):
            with pytest.raises(StateUnavailable, match=f"Redis at 127.0.0.1:{port}"):
                await operation
        assert await state.ping() is False
    finally:
        await state.close()


async def test_factory_fails_fast_when_redis_is_not_listening() -> None:
    port = _unused_port()
    state = open_call_state("redis", f"redis://127.0.0.1:{port}/0")
    try:
        async with asyncio.timeout(3):
            with pytest.raises(StateUnavailable, match="did not answer get"):
                await state.get("c1")
    finally:
        await state.close()


@contextlib.asynccontextmanager
async def _proxy_to_redis() -> AsyncIterator[tuple[int, Callable[[], Awaitable[None]]]]:
    """A TCP relay to the real Redis that can be cut, to watch Redis 'go away' mid-session."""
    streams: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", 6379)
        streams.extend([client_w, redis_w])
        await asyncio.gather(pipe(client_r, redis_w), pipe(redis_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)

    async def cut() -> None:
        server.close()
        for writer in streams:
            writer.close()
        await server.wait_closed()

    try:
        yield server.sockets[0].getsockname()[1], cut
    finally:
        await cut()


@pytest.mark.redis
async def test_redis_going_away_mid_session_raises_state_unavailable() -> None:
    await _require_redis()
    prefix = f"hotline-test:{uuid.uuid4().hex}:"
    try:
        async with _proxy_to_redis() as (port, cut):
            state = open_call_state("redis", f"redis://127.0.0.1:{port}/0", prefix=prefix)
            try:
                await state.put("c1", {"menu": "root"})
                assert await state.get("c1") == {"menu": "root"}

                await cut()

                with pytest.raises(StateUnavailable, match=f"Redis at 127.0.0.1:{port}"):
                    await state.get("c1")
                assert await state.ping() is False
            finally:
                await state.close()
    finally:
        await delete_redis_prefix(prefix)
