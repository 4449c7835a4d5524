"""One ACD event to 200 open wallboards: the time from an operator's move on the ACD (what the
root's operator listener tells `SupervisionService.changed`) to the board showing it read by
the last of 200 SSE clients of /supervisor/wallboard/events (the clients in a child process,
so they do not share the server's event loop). The floor: 20 groups, 120 operators, the real
ACD (`routing`) behind the root's adapter (`controller.supervision_ports.AcdFloor`).

The same run measures the raw limit: one frame of the same size put into 200
`asyncio.Queue`s, each awaited by its own task, to the last task holding it. Prints p50 and
max over the events for both, the ratio of the medians, and exits 1 when the wallboard's max
misses the goal (100 ms).

    .venv/bin/python bench/wallboard.py [--clients 200] [--events 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from controller.supervision_ports import AcdFloor
from hotline.access import access_middleware
from hotline.auth import Actor
from routing.part import AcdService
from routing.settings import RoutingSettings
from routing.testing import group, memory_node, op
from supervision.part import SupervisionService

GOAL_MS = 100.0
GROUPS = 20
OPERATORS = 120
READY = b'"state":"ready"'


async def lookup(request: web.Request) -> Actor | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return Actor(token, "supervisor") if token.startswith("sup-") else None


# --- the SSE clients (a child process) -----------------------------------------------------


async def clients_main(port: int, count: int) -> None:
    """Connect `count` wallboards; for each board note (ready operators, wall time) the first
    time that count is seen; print them when stdin ends."""
    seen: list[tuple[int, float]] = []
    ready: list[int] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> None:
            headers = {"Authorization": f"Bearer sup-{n}"}
            url = f"http://127.0.0.1:{port}/supervisor/wallboard/events"
            last = -1
            async with session.get(url, headers=headers) as stream:
                ready.append(n)
                async for line in stream.content:
                    if line.startswith(b"data: "):
                        count = line.count(READY)
                        if count != last:
                            last = count
                            seen.append((count, time.time()))

        tasks = [asyncio.create_task(one(n)) for n in range(count)]
        while len(ready) < count:  # every stream open before the first event  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        print("connected", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(seen), flush=True)


# --- the server and the events -------------------------------------------------------------


async def wallboard_run(count: int, events: int) -> tuple[list[float], int]:
    groups = {f"g{n}": group(f"g{n}", name=f"Группа {n}") for n in range(GROUPS)}
    specs = [
        op(f"op{n}", **{f"g{n % GROUPS}": 5, f"g{(n + 7) % GROUPS}": 3}) for n in range(OPERATORS)
    ]
    node = memory_node(groups, specs)
    await node.start()
    acd = AcdService(RoutingSettings(), node, {s.id: s for s in specs})
    floor = AcdFloor(acd)
    supervision = SupervisionService.build(
        floor,
        None,
        devices=floor.device,
        operator_device=floor.device,
        ami=lambda: None,  # type: ignore[arg-type]
        tick_seconds=3600.0,
    )
    acd.operator_listeners.append(supervision.changed)
    app = web.Application(middlewares=[access_middleware(lookup)])
    supervision.install(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", str(port), str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    assert (await child.stdout.readline()).strip() == b"connected"
    await asyncio.sleep(0.5)
    sent: list[float] = []
    frame_size = 0
    for n in range(events):
        sent.append(time.time())
        await node.login(f"op{n}")  # one ACD event: an operator goes into the line
        await asyncio.sleep(0.25)
        frame_size = len(supervision.wallboard._frame or b"")
    child.stdin.close()
    seen = json.loads((await child.stdout.read()).decode())
    await child.wait()
    await runner.cleanup()
    reached: list[float] = []
    for n, at in enumerate(sent, start=1):
        arrivals = [t for k, t in seen if k == n]
        if len(arrivals) != count:
            raise SystemExit(f"event {n}: {len(arrivals)} of {count} wallboards saw it")
        reached.append((max(arrivals) - at) * 1000)
    return reached, frame_size


async def raw_run(count: int, events: int, frame_size: int) -> list[float]:
    """The raw limit: one frame into `count` queues, to the last consumer holding it."""
    frame = b"x" * frame_size
    queues: list[asyncio.Queue[bytes]] = [asyncio.Queue() for _ in range(count)]
    reached: list[float] = []
    for _ in range(events):
        got: list[float] = []
        done = asyncio.Event()

        async def consume(
            queue: asyncio.Queue[bytes], got: list[float], done: asyncio.Event
        ) -> None:
            await queue.get()
            got.append(time.perf_counter())
            if len(got) == count:
                done.set()

        tasks = [asyncio.create_task(consume(q, got, done)) for q in queues]
        await asyncio.sleep(0)  # every consumer waiting
        start = time.perf_counter()
        for queue in queues:
            queue.put_nowait(frame)
        await done.wait()
        reached.append((max(got) - start) * 1000)
        await asyncio.gather(*tasks)
    return reached


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=30)
    args = parser.parse_args()
    board, size = await wallboard_run(args.clients, args.events)
    raw = await raw_run(args.clients, args.events, size)
    p50, p50_raw = statistics.median(board), statistics.median(raw)
    print(f"wallboard: {args.events} ACD events, each to {args.clients} SSE wallboards "
          f"(board {size} bytes)")  # fmt: skip
    print(f"  event -> last wallboard: p50 {p50:.1f} ms, max {max(board):.1f} ms "
          f"(goal: under {GOAL_MS:.0f} ms)")  # fmt: skip
    print(f"raw asyncio.Queue fan-out to {args.clients}: p50 {p50_raw:.3f} ms, "
          f"max {max(raw):.3f} ms")  # fmt: skip
    print(f"ratio (wallboard p50 / raw p50): {p50 / p50_raw:.0f}x")
    return 0 if max(board) < GOAL_MS else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(clients_main(int(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(asyncio.run(main()))
