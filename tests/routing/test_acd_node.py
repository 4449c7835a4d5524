"""The ACD on one node and on several nodes sharing the real Redis.

The concurrency test runs several nodes, each with its own Redis connection, doing random
operator and caller actions in random interleavings; a ledger of every claim and release, in
the order Redis ran them, proves that no operator ever holds two calls and no caller ever rings
two operators.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Awaitable
from typing import Any

import pytest
from redis.asyncio import Redis

from hotline.clock import ManualClock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.metrics import ACD_STATE_DEGRADED
from routing.model import OfferWithdrawn
from routing.node import AcdNode
from routing.operators import InvalidTransition, OperatorState
from routing.state import AcdStore, InMemoryAcdStore, RedisAcdStore
from routing.testing import group, op

S = OperatorState
REDIS_URL = "redis://127.0.0.1:6379/0"
GROUPS = {
    "general": group("general", ring_seconds=5.0, wrap_up_seconds=2.0),
    "tech1": group("tech1", ring_seconds=5.0, wrap_up_seconds=2.0, widen_to=("general",)),
}


def operators(count: int) -> list[Any]:
    return [
        op(f"o{i}", **({"general": 1 + i % 9} if i % 2 else {"tech1": 5, "general": 2}))
        for i in range(count)
    ]


def node(store: AcdStore, clock: ManualClock, name: str, count: int = 4) -> AcdNode:
    return AcdNode(Acd(GROUPS, operators(count), clock=clock), store, node_id=name)


async def test_single_node_flow_on_memory() -> None:
    clock = ManualClock()
    n = node(InMemoryAcdStore(), clock, "n1")
    await n.start()
    await n.login("o1")
    offers = await n.enqueue("c1", "general", number="+7001")
    assert [o.operator_id for o in offers] == ["o1"]
    offer = await asyncio.wait_for(n.wait_for_operator("c1"), 1)
    assert offer.device == "PJSIP/o1"
    await n.answer("c1")
    await n.end_call("c1")
    assert (await n.store.operator("o1") or {})["state"] == "wrap_up"
    clock.advance(2)
    await n.tick()
    assert (await n.store.operator("o1") or {})["state"] == "ready"


async def test_no_answer_on_shared_state_pauses_and_keeps_head(redis_prefix: str) -> None:
    clock = ManualClock()
    n = node(RedisAcdStore(redis_client(REDIS_URL), redis_prefix), clock, "n1")
    try:
        await n.start()
        await n.login("o1")
        await n.enqueue("first", "general")
        await n.enqueue("second", "general")
        clock.advance(5)
        events = await n.tick()
        assert [m.operator_id for m in events.no_answer] == ["o1"]
        record = await n.store.operator("o1") or {}
        assert (record["state"], record["reason"]) == ("paused", "no answer")
        offers = await n.login("o3")
        assert [o.call_id for o in offers] == ["first"]
    finally:
        await n.store.close()


_STORE_CALL: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "store_call", default=None
)


class Ledger:
    """Who held whom, in the order Redis ran the claims and releases.

    The nodes' replies arrive over several connections, so the order a client reads them in
    is not the order Redis ran them (a release can be read after the claim it made possible).
    Each claim, unclaim and finish is therefore run in one MULTI with an INCR of a counter:
    the counter is Redis's own order, and `violations` replays the script results in it."""

    def __init__(self, seq_key: str) -> None:
        self.seq_key = seq_key
        self.events: list[tuple[int, str, str, str, bool]] = []  # seq, kind, call, op, done

    @property
    def claims(self) -> int:
        return sum(1 for _, kind, _, _, done in self.events if kind == "claim" and done)

    def violations(self) -> list[str]:
        op_call: dict[str, str] = {}
        call_op: dict[str, str] = {}
        found: list[str] = []
        for seq, kind, call_id, op_id, done in sorted(self.events):
            if not done:
                continue
            if kind == "claim":
                if op_id in op_call:
                    found.append(f"#{seq}: {op_id} got {call_id} while holding {op_call[op_id]}")
                if call_id in call_op:
                    found.append(f"#{seq}: {call_id} rang {op_id} and {call_op[call_id]}")
                op_call[op_id], call_op[call_id] = call_id, op_id
            elif op_call.get(op_id) == call_id:
                del op_call[op_id], call_op[call_id]
            else:
                found.append(f"#{seq}: {kind} gave back {op_id}/{call_id}, not a pair held")
        return found


class OrderedRedis(Redis):
    """Runs the ACD's claim, unclaim and finish scripts each with an INCR in one MULTI."""

    ledger: Ledger

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        call = _STORE_CALL.get()
        if call is None:
            return await super().evalsha(sha, numkeys, *keys_and_args)
        async with self.pipeline(transaction=True) as pipe:
            pipe.evalsha(sha, numkeys, *keys_and_args)
            pipe.incr(self.ledger.seq_key)
            result, seq = await pipe.execute()
        self.ledger.events.append((seq, *call, bool(result)))
        return result


def ordered_store(ledger: Ledger, prefix: str) -> RedisAcdStore:
    client = OrderedRedis.from_url(REDIS_URL, decode_responses=True)
    assert isinstance(client, OrderedRedis)
    client.ledger = ledger
    return LedgerStore(RedisAcdStore(client, prefix))  # type: ignore[return-value]


class LedgerStore:
    """Marks the store calls whose script results the ledger keeps."""

    def __init__(self, inner: RedisAcdStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _noted(self, kind: str, call_id: str, op_id: str, run: Awaitable[bool]) -> bool:
        token = _STORE_CALL.set((kind, call_id, op_id))
        try:
            return await run
        finally:
            _STORE_CALL.reset(token)

    async def claim(self, call_id: str, op_id: str, node: str) -> bool:
        return await self._noted("claim", call_id, op_id, self._inner.claim(call_id, op_id, node))

    async def unclaim(self, call_id: str, op_id: str, op_state: str, reason: str = "") -> bool:
        run = self._inner.unclaim(call_id, op_id, op_state, reason)
        return await self._noted("unclaim", call_id, op_id, run)

    async def finish(self, call_id: str, op_id: str, fields: dict[str, str]) -> bool:
        return await self._noted(
            "finish", call_id, op_id, self._inner.finish(call_id, op_id, fields)
        )


async def _chaos(n: AcdNode, rng: random.Random, clock: ManualClock, steps: int) -> None:
    calls = 0
    for _ in range(steps):
        await asyncio.sleep(0 if rng.random() < 0.7 else rng.random() / 2000)
        action = rng.random()
        op_id = f"o{rng.randrange(len(n.acd.operators))}"
        try:
            if action < 0.25:
                calls += 1
                await n.enqueue(f"{n.node_id}-c{calls}", rng.choice(list(GROUPS)))
            elif action < 0.40:
                await n.ready(op_id)
            elif action < 0.45:
                await n.pause(op_id, "перерыв")
            elif action < 0.60:
                mine = [c for c in n.acd.callers.values() if c.state == "ringing"]
                if mine:
                    await n.answer(rng.choice(mine).call_id)
            elif action < 0.75:
                mine = [c for c in n.acd.callers.values() if c.state == "talking"]
                if mine:
                    await n.end_call(rng.choice(mine).call_id)
            elif action < 0.82:
                mine = [c for c in n.acd.callers.values() if c.state != "talking"]
                if mine:
                    await n.abandon(rng.choice(mine).call_id)
            elif action < 0.92:
                await n.sync_operators()
            else:
                clock.advance(rng.random() * 3)
                await n.tick()
        except (InvalidTransition, OfferWithdrawn):
            # a transition refused by a stale or busy operator (what the HTTP API reports),
            # or an answer to an offer another node took back; any other error is a bug
            pass


@pytest.mark.redis
@pytest.mark.parametrize("seed", range(6))
async def test_nodes_never_double_connect(redis_prefix: str, seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock()
    ledger = Ledger(f"{redis_prefix}test-ledger-seq")
    nodes = [node(ordered_store(ledger, redis_prefix), clock, f"n{i}", 6) for i in range(4)]
    try:
        for n in nodes:
            await n.start()
        followers = [asyncio.create_task(n.follow()) for n in nodes]  # pub/sub, as in `run`
        await _until_subscribed(redis_prefix, len(nodes))
        await asyncio.gather(*(_chaos(n, random.Random(rng.random()), clock, 400) for n in nodes))
        for follower in followers:
            follower.cancel()
        results = await asyncio.gather(*followers, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        assert ledger.violations() == []
        assert ledger.claims > 40  # the run really contended
        store = nodes[0].store
        held: dict[str, str] = {}
        for call_id, record in (await store.callers()).items():
            if record["state"] in ("ringing", "talking"):
                op_record = await store.operator(record["operator"]) or {}
                assert op_record.get("call") == call_id
                assert record["operator"] not in held
                held[record["operator"]] = call_id
    finally:
        for n in nodes:
            await n.store.close()


async def test_restart_keeps_waiting_callers_place(redis_prefix: str) -> None:
    clock = ManualClock()
    first = node(RedisAcdStore(redis_client(REDIS_URL), redis_prefix), clock, "n1")
    await first.start()
    await first.login("o1")
    await first.pause("o1", "обед")
    await first.enqueue("early", "general", number="+7001", data={"snils": "x"})
    await first.enqueue("late", "general", number="+7002")
    await first.store.close()  # the node dies; Asterisk sends the channels back over FastAGI

    second = node(RedisAcdStore(redis_client(REDIS_URL), redis_prefix), clock, "n1")
    try:
        await second.start()
        assert second.acd.operators["o1"].state is S.PAUSED  # rebuilt from Redis
        await second.enqueue("late", "general", number="+7002")
        await second.enqueue("early", "general", number="+7001")
        assert second.acd.position("early") == 1
        assert second.acd.callers["early"].data == {"snils": "x"}
        offers = await second.ready("o1")
        assert [o.call_id for o in offers] == ["early"]
    finally:
        await second.store.close()


async def test_redis_unreachable_degrades_without_crashing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens on `port` any more
    alarms: list[str] = []
    store = RedisAcdStore(redis_client(f"redis://127.0.0.1:{port}/0"), "x:")
    n = AcdNode(
        Acd(GROUPS, operators(4), clock=clock), store, node_id="n1", on_degraded=alarms.append
    )
    with caplog.at_level(logging.ERROR, logger="hotline.routing"):
        await n.start()
        await n.login("o1")
    assert n.degraded and alarms and "Redis" in alarms[0]
    assert ACD_STATE_DEGRADED._value.get() == 1
    assert any("in-process state" in r.getMessage() for r in caplog.records)
    offers = await n.enqueue("c1", "general")
    assert [o.operator_id for o in offers] == ["o1"]  # still routing, on local state
    assert await n.recover() is False  # Redis still away: stay degraded
    await store.close()


async def test_recovery_writes_view_back_to_redis(redis_prefix: str) -> None:
    clock = ManualClock()
    store = RedisAcdStore(redis_client(REDIS_URL), redis_prefix)
    n = node(store, clock, "n1")
    try:
        await n.start()
        await n._failover.degrade("test: Redis went away")
        await n.login("o1")
        await n.enqueue("c1", "general")
        assert await n.recover() is True
        assert not n.degraded and ACD_STATE_DEGRADED._value.get() == 0
        assert (await store.operator("o1") or {})["call"] == "c1"
        assert (await store.caller("c1") or {})["state"] == "ringing"
    finally:
        await store.close()


async def test_timer_loop_keeps_running_with_redis_down() -> None:
    import time

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    store = RedisAcdStore(redis_client(f"redis://127.0.0.1:{port}/0"), "x:")
    groups = {"general": group("general", ring_seconds=1.0)}
    n = AcdNode(Acd(groups, [op("o1", general=1)], clock=time.monotonic), store, node_id="n1")
    stop = asyncio.Event()
    loop = asyncio.create_task(n.run(stop, resolution=0.01, recover_every=0.05))
    try:
        await n.login("o1")
        await n.enqueue("c1", "general")
        async with asyncio.timeout(10):
            while n.acd.operators["o1"].state is not S.PAUSED:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert n.acd.operators["o1"].pause_reason == "no answer"
        assert n.acd.position("c1") == 1
        assert n.degraded and not loop.done()
    finally:
        stop.set()
        await loop
        await store.close()


async def test_operator_ready_on_one_node_reaches_caller_on_another(redis_prefix: str) -> None:
    clock = ManualClock()
    a = node(RedisAcdStore(redis_client(REDIS_URL), redis_prefix), clock, "a")
    b = node(RedisAcdStore(redis_client(REDIS_URL), redis_prefix), clock, "b")
    stop = asyncio.Event()
    loops = []
    try:
        for n in (a, b):
            await n.start()
            loops.append(asyncio.create_task(n.run(stop, resolution=0.01)))
        await _until_subscribed(redis_prefix, 2)
        assert await b.enqueue("caller-on-b", "general") == []
        await a.login("o1")  # the operator's screen talks to node a
        offer = await asyncio.wait_for(b.wait_for_operator("caller-on-b"), 5)
        assert offer.operator_id == "o1"
        assert (await a.store.operator("o1") or {})["call"] == "caller-on-b"
        await asyncio.sleep(0.05)
        assert a.acd.operators["o1"].state is S.RINGING  # a learnt it too
        with pytest.raises(ValueError):
            await a.pause("o1", "обед")  # no command may free a ringing operator
    finally:
        stop.set()
        await asyncio.gather(*loops)
        for n in (a, b):
            await n.store.close()


async def _until_subscribed(prefix: str, nodes: int) -> None:
    """Wait until both nodes listen for operator changes (Redis counts the subscribers)."""
    client = redis_client(REDIS_URL)
    try:
        async with asyncio.timeout(5):
            while True:
                counts = await client.pubsub_numsub(f"{prefix}operator-changed")
                if counts and counts[0][1] >= nodes:
                    return
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_escalation_through_the_node_keeps_data_and_place() -> None:
    clock = ManualClock()
    n = node(InMemoryAcdStore(), clock, "n1")
    await n.start()
    await n.login("o0")  # tech1 + general
    await n.enqueue("c1", "tech1", data={"application": "42"}, history=["меню: 3"])
    await n.answer("c1")
    clock.advance(30)
    await n.enqueue("later", "general")  # o0 busy: waits
    offers = await n.escalate("c1", "general", note="нужна консультация")
    assert offers == []  # o0 is in wrap-up; nobody else for general yet
    record = await n.store.caller("c1") or {}
    assert record["state"] == "waiting" and '"application": "42"' in record["data"]
    assert "нужна консультация" in record["history"]
    offers = await n.login("o1")
    assert [o.call_id for o in offers] == ["c1"]  # escalated caller first, not last
