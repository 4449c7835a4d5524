"""Hang-up notice benchmark: from Asterisk's ``HANGUP`` to the ACD's queue letting the caller go.

Scene: callers held by the ACD on hold music (an operator logged in and paused, so nobody is
offered) through the real FastAGI server, each one a simulated Asterisk channel (pbxsim) on
live time that hangs up at its own moment while the controller sends nothing. Timed per
caller: from the moment the simulator's channel hangs up (it writes ``HANGUP`` right then)
to the moment the ACD has removed the caller (queue, positions and metrics updated). The
announcement interval is an hour, so only the notice can end a wait.

Beside it, in the same run, the raw limit: the round trip of one line over a loopback TCP
socket between two asyncio streams (a notice is one way, so half of it is the floor).
Target: p99 under 100 ms.

    .venv/bin/python bench/hangup_notice.py [--callers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession, CallerHungUp
from hotline.clock import ScaledCallClock, wall_clock
from pbxsim.callers import CallerScript
from pbxsim.channel import AgiChannel
from pbxsim.fastagi import AgiRequestSpec, run_agi
from pbxsim.model import ChannelState, SimChannel
from routing.acd import Acd
from routing.connect import connect_call
from routing.model import Offer
from routing.node import AcdNode
from routing.state import InMemoryAcdStore
from routing.testing import group, op

TARGET_MS = 100.0


class TimedNode(AcdNode):
    """An ACD node that notes when each caller left its queue."""

    left: dict[str, float]

    async def abandon(self, call_id: str, *, counted: bool = True) -> list[Offer]:
        offers = await super().abandon(call_id, counted=counted)
        self.left[call_id] = time.perf_counter()
        return offers


class HangupClock:
    """The simulator's event sink: when each channel hung up (it writes HANGUP right after)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        if event == "HangupRequest":
            self.at[dict(headers)["Uniqueid"]] = time.perf_counter()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def loopback_round_trip(rounds: int) -> list[float]:
    """One line there and back over 127.0.0.1, `rounds` times: the raw limit."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        writer.write(b"HANGUP\n")
        await writer.drain()
        await reader.readline()
        samples.append(time.perf_counter() - start)
    writer.close()
    server.close()
    await server.wait_closed()
    return samples


async def one_caller(n: int, port: int, sink: HangupClock) -> None:
    channel = SimChannel(
        name=f"PJSIP/carrier-{n:08x}",
        uniqueid=f"1795563091.{n}",
        linkedid=f"1795563091.{n}",
        context="from-pstn",
        exten="88005000005",
        state=ChannelState.UP,
    )
    # live time; hang-ups spread over a second so they do not all land in one loop turn
    script = CallerScript(hangup_at=0.5 + (n % 50) * 0.02)
    agi = AgiChannel(channel, script, clock=ScaledCallClock(1.0), sink=sink)
    request = AgiRequestSpec(url=f"agi://127.0.0.1:{port}/queue", channel_type="PJSIP")
    await run_agi(agi, request, "127.0.0.1", port)


async def bench_notice(callers: int) -> list[float]:
    acd = Acd(
        {"emergency": group("emergency", max_wait_seconds=3600)},
        [op("anna", emergency=9)],
        clock=wall_clock,
    )
    node = TimedNode(acd, InMemoryAcdStore(), node_id="bench")
    node.left = {}
    await node.login("anna", paused_reason="bench")  # staffed, never free: everyone waits

    async def queue(session: AgiSession) -> None:
        await connect_call(session, node, "emergency", announce_every=3600.0, hung_up=CallerHungUp)

    router = Router()
    router.add("queue", queue)
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()
    sink = HangupClock()
    try:
        await asyncio.gather(*(one_caller(n, server.port, sink) for n in range(callers)))
    finally:
        await server.drain(1.0)
    missing = set(sink.at) - set(node.left)
    if missing:
        raise SystemExit(f"{len(missing)} callers hung up and stayed in the queue")
    return [node.left[call] - sink.at[call] for call in sink.at]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", type=int, default=100)
    args = parser.parse_args()
    raw = await loopback_round_trip(500)
    notice = await bench_notice(args.callers)
    raw_ms = statistics.median(raw) * 1000
    p50, p99 = statistics.median(notice) * 1000, percentile(notice, 0.99) * 1000
    print(f"callers held, then hung up:          {len(notice)}")
    print(f"loopback line round trip (raw):      p50 {raw_ms:7.3f} ms")
    print(f"HANGUP notice -> queue updated:      p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    print(f"ratio p50 notice / loopback round trip: {p50 / raw_ms:.1f}x")
    print(f"target p99 < {TARGET_MS:g} ms: {'met' if p99 < TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())
