"""ACD routing benchmark: decisions per second and p99 decision latency.

Scene: 2,000 operators, 50 skill groups, 5,000 callers waiting. One decision is "an operator
becomes ready -> the ACD picks their caller and (for a node) claims the pair": the
`ready()` call, timed alone. Between decisions, untimed, the call is answered and ended, the
operator paused and a new caller queued, so the scene stays the same size.

Measured three ways in the same run, beside the raw Redis round trip (PING):
  core   - routing.acd.Acd alone (pure, in process)
  memory - routing.node.AcdNode on the in-process store
  redis  - routing.node.AcdNode on the real Redis (compare-and-set + Lua claim)

    .venv/bin/python bench/acd.py [--decisions 3000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotline.store.state import redis_client
from routing.acd import Acd
from routing.node import AcdNode
from routing.operators import OperatorSpec
from routing.state import AcdStore, InMemoryAcdStore, RedisAcdStore
from routing.testing import group

OPERATORS, GROUPS, WAITING = 2000, 50, 5000


def scene(rng: random.Random) -> tuple[dict[str, object], list[OperatorSpec]]:
    groups = {f"g{i}": group(f"g{i}", max_wait_seconds=1e9) for i in range(GROUPS)}
    specs = [
        OperatorSpec(
            f"op{i}",
            f"op{i}",
            f"PJSIP/{1000 + i}",
            {g: rng.randint(1, 10) for g in rng.sample(sorted(groups), rng.randint(1, 3))},
        )
        for i in range(OPERATORS)
    ]
    return groups, specs  # type: ignore[return-value]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    name: str, latencies: list[float], elapsed: float, unit: str = "decisions"
) -> dict[str, float]:
    figures = {
        "decisions_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }
    print(
        f"{name:8} {figures['decisions_per_s']:>10,.0f} {unit}/s   "
        f"p50 {figures['p50_ms']:7.3f} ms   p99 {figures['p99_ms']:7.3f} ms"
    )
    return figures


def bench_core(decisions: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    groups, specs = scene(rng)
    acd = Acd(groups, specs, clock=time.monotonic)  # type: ignore[arg-type]
    for spec in specs:
        acd.login(spec.id, paused_reason="bench")
    for n in range(WAITING):
        acd.enqueue(f"c{n}", rng.choice(sorted(groups)), priority=rng.random() < 0.05)
    latencies: list[float] = []
    timed = 0.0
    for n in range(decisions):
        op_id = rng.choice(specs).id
        t0 = time.perf_counter()
        offers = acd.ready(op_id)
        latencies.append(time.perf_counter() - t0)
        assert len(offers) == 1, "every decision must pick a caller"
        timed += latencies[-1]
        for offer in offers:
            acd.answer(offer.call_id)
            acd.end_call(offer.call_id)
            acd.enqueue(f"new{n}", offer.group)
        acd.pause(op_id, "bench")
    return report("core", latencies, timed)


async def bench_node(name: str, store: AcdStore, decisions: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    groups, specs = scene(rng)
    node = AcdNode(Acd(groups, specs, clock=time.time), store, node_id="bench")  # type: ignore[arg-type]
    await node.start()
    for spec in specs:
        await node.login(spec.id, paused_reason="bench")
    await _enqueue_many(node, groups, rng)
    latencies: list[float] = []
    for n in range(decisions):
        op_id = rng.choice(specs).id
        t0 = time.perf_counter()
        offers = await node.ready(op_id)
        latencies.append(time.perf_counter() - t0)
        assert len(offers) == 1, "every decision must pick a caller"
        for offer in offers:
            await node.answer(offer.call_id)
            await node.end_call(offer.call_id)
            await node.enqueue(f"new{n}", offer.group)
        await node.pause(op_id, "bench")
    return report(name, latencies, sum(latencies))


async def _enqueue_many(node: AcdNode, groups: dict[str, object], rng: random.Random) -> None:
    names = sorted(groups)
    for n in range(WAITING):
        await node.enqueue(f"c{n}", rng.choice(names), priority=int(rng.random() < 0.05))


async def timed_loop(count: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - t0)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{OPERATORS} operators, {GROUPS} groups, {WAITING} callers waiting")
    core = bench_core(args.decisions, args.seed)
    memory = await bench_node("memory", InMemoryAcdStore(), args.decisions, args.seed)
    prefix = f"bench:acd:{uuid.uuid4().hex}:"
    client = redis_client(args.redis)
    try:
        ping = await timed_loop(args.decisions, client.ping)
        ping_figures = report("PING", ping, sum(ping), "round trips")
        store = RedisAcdStore(redis_client(args.redis), prefix)
        redis = await bench_node("redis", store, args.decisions, args.seed)
        await store.close()
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        await client.aclose()
    print(
        f"redis decision p99 = {redis['p99_ms'] / ping_figures['p99_ms']:.1f} x PING p99; "
        f"in-process node p99 = {memory['p99_ms'] / core['p99_ms']:.1f} x bare core p99; "
        f"budget ready->ringing 50 ms: redis p99 uses {redis['p99_ms'] / 50 * 100:.1f} %"
    )


if __name__ == "__main__":
    asyncio.run(main())
