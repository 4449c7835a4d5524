"""Voice-menu engine benchmark: what the engine costs per node and per call, beside the same
channel commands sent with no engine, measured in the same run.

1. Cost per node (µs), per kind: a menu that is a chain of N nodes of one kind is run by the
   engine on an instant channel (every command answered at once, no I/O); the raw baseline
   makes the same channel calls in a hand-written loop. The difference is the engine's cost.
2. Menu calls per second per core: whole calls of the general line (greeting, main menu,
   operator queue, rating, goodbye: ~20 AGI commands) through the real FastAGI server, with a
   lean fake Asterisk in another process answering every command at once. The server's CPU
   time (process_time) is the denominator, so the figure is per core of the controller. The
   raw baseline is a hand-written FastAGI handler sending the very same command sequence.
   The opening hours read the surge switch from a file, as `hotline serve`'s do at every call.
   Both are measured in alternating turns and each keeps its best turn (every turn printed),
   so that a load spike from elsewhere on the machine does not decide the ratio.

3. With --instructions: the same whole calls, the fake Asterisk a loopback transport in the
   server's process, run under valgrind, which counts the user-space instructions per call of
   each handler: an exact figure, whatever else runs on the machine.

With --logs (and --instructions), the same calls are counted again with the product's logs at
INFO, as `hotline serve` ships them: what a call's log lines cost beside the call.

Usage: .venv/bin/python bench/ivr.py [--quick] [--instructions [--logs]]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.instructions import (  # noqa: E402
    NO_SWEEP_TIMEOUTS,
    LoopbackAsterisk,
    instructions_per,
    valgrind_missing,
)
from hotline import say_ru  # noqa: E402
from hotline.agi.protocol import AgiRequest  # noqa: E402
from hotline.agi.session import Digits, Playback, Recording  # noqa: E402
from hotline.hours import SurgeSwitch, load_calendar, load_hours  # noqa: E402
from hotline.lifecycle import settle_heap  # noqa: E402
from hotline.logs import configure_logging  # noqa: E402
from hotline.settings import LogSettings  # noqa: E402
from hotline.validators import VALIDATORS  # noqa: E402
from ivr.menu.engine import Engine  # noqa: E402
from ivr.menu.loader import parse_menu  # noqa: E402
from ivr.menu.model import Services  # noqa: E402

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=ZoneInfo("Europe/Moscow"))
SNILS = "11223344595"
# Whole calls through the menu engine, per core, against a raw handler sending the same commands.
GOAL = 0.9


class InstantChannel:
    """Every command answered at once: what is left is the engine's own work."""

    def __init__(self, digit: str = "1") -> None:
        self.digit = digit
        self.call_id = "bench.1"
        self.env: Mapping[str, str] = {}

    async def answer(self) -> int:
        return 0

    async def hangup(self) -> int:
        return 1

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback:
        return Playback(None, 100)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> Digits:
        return Digits(SNILS)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return self.digit

    async def set_variable(self, name: str, value: str) -> None:
        return None

    async def get_variable(self, name: str) -> str | None:
        return None

    async def exec(self, application: str, *options: str) -> int:
        return 0

    async def record_file(self, path: str, *args: Any, **kw: Any) -> Recording:
        return Recording(None, 0, "timeout")


# --- 1. cost per node ----------------------------------------------------------------------

NODE_BODIES = {
    "play": "{{kind: play, prompts: [hotline/p], barge_in: '12', next: {nxt}}}",
    "menu": "{{kind: menu, prompts: [hotline/m], options: {{'1': {nxt}}}, fallback: {nxt}}}",
    "collect": (
        "{{kind: collect, prompts: [hotline/c], store: snils, length: 11, validate: snils,"
        " next: {nxt}, fallback: {nxt}}}"
    ),
    "condition": (
        "{{kind: condition, branches: [{{when: closed, goto: end}}, {{when: holiday,"
        " goto: end}}], otherwise: {nxt}}}"
    ),
    "set": "{{kind: set, values: {{topic: 'оплата ${{did}}'}}, next: {nxt}}}",
    "say": "{{kind: say, what: number, value: '1251', gender: f, next: {nxt}}}",
    "goto": "{{kind: goto, to: {nxt}}}",
}


def chain(kind: str, length: int) -> str:
    lines = ['number: "1000"', "group: general", "start: n0", "nodes:"]
    for i in range(length):
        lines.append(f"  n{i}: " + NODE_BODIES[kind].format(nxt=f"n{i + 1}"))
    lines.append(f"  n{length}: {{kind: hangup}}")
    if kind == "condition":
        lines.append("  end: {kind: hangup}")
    return "\n".join(lines) + "\n"


async def raw_calls(kind: str, channel: InstantChannel, length: int, hours: Any) -> None:
    """What the chain asks of the channel, hand-written: the floor under the engine. The
    opening hours are looked up once per call, as the engine does."""
    status = hours.status(NOON)
    for _ in range(length):
        if kind == "play":
            await channel.stream_file("hotline/p", "12")
        elif kind == "menu":
            if (await channel.stream_file("hotline/m", "1")).digit is None:
                await channel.wait_for_digit(5000)
        elif kind == "collect":
            VALIDATORS["snils"](await channel.get_data("hotline/c", 10000, 11))
        elif kind == "condition":
            _ = not status.open or status.kind == "holiday"
        elif kind == "say":
            for name in say_ru.number_files(1251, "f"):
                await channel.stream_file(name)
    await channel.hangup()


async def per_node(kind: str, length: int, rounds: int, services: Services) -> tuple[float, float]:
    """(engine µs per node, raw µs per node)"""
    menu = parse_menu(chain(kind, length), f"{kind}.yaml")
    engine = Engine(max_steps=length + 10)
    channel = InstantChannel()
    # The engine keeps no per-call state, but the loop and caches warm up first.
    for _ in range(3):
        await engine.run(channel, menu, services, NOON)
        await raw_calls(kind, channel, length, services.hours)
    started = time.perf_counter()
    for _ in range(rounds):
        await engine.run(channel, menu, services, NOON)
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        await raw_calls(kind, channel, length, services.hours)
    raw_s = time.perf_counter() - started
    scale = 1e6 / (rounds * length)
    return engine_s * scale, raw_s * scale


# --- 2. whole calls over FastAGI ------------------------------------------------------------

ENV = (
    "agi_network: yes\nagi_network_script: hotline?did=88001000001\n"
    "agi_request: agi://127.0.0.1/hotline?did=88001000001\n"
    "agi_channel: Local/88001000001@from-pstn-00000000;2\nagi_language: ru\nagi_type: Local\n"
    "agi_uniqueid: {n}\nagi_version: 22.10.1\nagi_callerid: 79161234567\n"
    "agi_calleridname: Иванов Иван\nagi_callingpres: 0\nagi_callingani2: 0\n"
    "agi_callington: 0\nagi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\n"
    "agi_context: from-pstn\nagi_extension: 88001000001\n"
    "agi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1\n\n"
)


def reply_to(line: bytes) -> bytes:
    """Asterisk's instant answer: the caller presses 0 whenever asked for a key."""
    if line.startswith(b"WAIT FOR DIGIT"):
        return b"200 result=48\n"
    if line.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=100\n"
    if line.startswith((b"SET VARIABLE", b"HANGUP")):
        return b"200 result=1\n"
    return b"200 result=0\n"


async def one_call(port: int, n: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV.format(n=f"1795563091.{n}").encode())
    commands = 0
    while line := await reader.readline():
        commands += 1
        writer.write(reply_to(line))
    writer.close()
    return commands


def asterisk_process(port: int, calls: int, concurrency: int, done: Any) -> None:
    """The fake Asterisk, in its own process so that the server has its core to itself."""

    async def run() -> int:
        slots = asyncio.Semaphore(concurrency)

        async def guarded(n: int) -> int:
            async with slots:
                return await one_call(port, n)

        return sum(await asyncio.gather(*(guarded(n) for n in range(calls))))

    done.put(asyncio.run(run()))


async def calls_per_core(
    handler: Callable[[Any], Awaitable[None]], calls: int
) -> tuple[float, int]:
    """(calls per CPU-second of the server, AGI commands in all)"""
    from hotline.agi.router import Router
    from hotline.agi.server import FastAgiServer

    router = Router()
    router.add("hotline", handler)
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()
    done: Any = multiprocessing.get_context("spawn").Queue()
    client = multiprocessing.get_context("spawn").Process(
        target=asterisk_process, args=(server.port, calls, 50, done)
    )
    # The heap settled now, unmeasured, as `hotline serve` settles it once started: otherwise
    # the garbage of the setup (menus, imports) or of the previous turn makes whichever turn
    # comes next pay for a full collection.
    settle_heap()
    cpu = time.process_time()
    client.start()
    while client.is_alive() or done.empty():
        await asyncio.sleep(0.01)
        if not client.is_alive() and done.empty():
            raise RuntimeError("the fake Asterisk died")
        if not done.empty():
            break
    cpu = time.process_time() - cpu
    commands = done.get()
    client.join()
    await server.drain(5)
    return calls / cpu, commands


def recorded_sequence(entry: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The channel calls one whole call makes through the entry (answer, HOTLINE_DID, the
    menu, its checkpoints, HOTLINE_DONE), to replay them with no engine."""
    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Recorder(InstantChannel):
        request = AgiRequest.from_env({"agi_network_script": "hotline?did=88001000001"})
        hung_up = False

        def __getattribute__(self, name: str) -> Any:
            attribute = super().__getattribute__(name)
            if name in ("digit", "call_id", "env", "request", "hung_up") or not callable(attribute):
                return attribute

            async def recorded(*args: Any) -> Any:
                calls.append((name, args))
                return await attribute(*args)

            return recorded

    asyncio.run(entry(Recorder("0")))
    return calls


def bench_switch() -> SurgeSwitch:
    """A surge switch in a file, off, as `hotline serve` has one: every call looks at it."""
    directory = tempfile.mkdtemp(prefix="bench-ivr-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    switch = SurgeSwitch(Path(directory) / "surge")
    switch.off()
    return switch


def bench_services(switch: SurgeSwitch) -> Services:
    hours = load_hours(
        ROOT / "dialplans/hours.yaml", load_calendar(ROOT / "dialplans/calendar.yaml"), switch
    )
    return Services(hours=hours, validators=VALIDATORS, say=say_ru)


Handler = Callable[[Any], Awaitable[None]]


def whole_call_handlers(services: Services, switch: SurgeSwitch) -> tuple[Handler, Handler]:
    """The menu engine's entry for the shipped menus, and the raw handler sending the very
    command sequence one of its calls sends."""
    from ivr.entry import CallEntry
    from ivr.menu.library import load_library

    library, problems = load_library(ROOT / "dialplans", services, "88001000001", switch)
    assert not problems, problems
    entry = CallEntry(None, "bench", library=library, clock=lambda: NOON)
    sequence = recorded_sequence(entry)

    async def raw_handler(session: Any) -> None:
        for name, call_args in sequence:
            await getattr(session, name)(*call_args)

    return entry, raw_handler


# --- 3. instructions (valgrind): whole calls in one process, counted exactly ---------------


async def in_process(handler: Handler, calls: int) -> None:
    """`calls` whole calls through the FastAGI server, 50 at a time, on loopback transports."""
    from hotline.agi.connection import AgiConnection
    from hotline.agi.router import Router
    from hotline.agi.server import FastAgiServer

    loop = asyncio.get_running_loop()
    router = Router()
    router.add("hotline", handler)
    server = FastAgiServer(router, host="127.0.0.1", port=0, **NO_SWEEP_TIMEOUTS)
    await server.start()  # listening, unused
    settle_heap()  # as `hotline serve` does once started
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            done: asyncio.Future[None] = loop.create_future()
            transport = LoopbackAsterisk(loop, done, reply_to)
            protocol = transport.protocol = AgiConnection(server, loop)
            protocol.connection_made(transport)  # type: ignore[arg-type]
            protocol.data_received(ENV.format(n=f"1795563091.{remaining}").encode())
            await done

    await asyncio.gather(*(worker() for _ in range(50)))
    server.support.flush()  # what the sweeps would have pushed
    await server.drain(5)


def instructions_per_call(kind: str, calls: int, logs: bool = False) -> float:
    """Instructions per whole call (start-up, imports and loading the menus cancel out)."""
    logging = ["--logs"] if logs else []
    return instructions_per(
        lambda count: [__file__, "--in-process", kind, "--calls", str(count), *logging], 50, calls
    )


def report_logged_calls(calls: int) -> None:
    """The same calls with the product's logs at INFO (JSON, to /dev/null), as `hotline
    serve` ships: what a call's lines cost beside it (not a goal: the raw handler writes
    only the server's line)."""
    per = {kind: instructions_per_call(kind, calls, logs=True) for kind in ("engine", "raw")}
    print("with logs at INFO (JSON lines to /dev/null):")
    for kind, label in (("engine", "menu engine"), ("raw", "raw handler")):
        print(f"{label:12} {per[kind]:10,.0f} instructions a call")
    print(f"engine / raw with logs: {per['raw'] / per['engine']:.2f}x")


def report_instructions(quick: bool, logs: bool = False) -> int:
    if valgrind_missing():
        return 0
    calls = 100 if quick else 500
    print(
        "whole calls of 88001000001, user-space instructions per call (valgrind), uvloop, one"
        f" process, {calls} calls apart; load is irrelevant"
    )
    per = {kind: instructions_per_call(kind, calls) for kind in ("engine", "raw")}
    for kind, label in (("engine", "menu engine"), ("raw", "raw handler")):
        print(f"{label:12} {per[kind]:10,.0f} instructions a call")
    print(f"engine's own: {per['engine'] - per['raw']:,.0f} instructions a call")
    ratio = per["raw"] / per["engine"]
    met = ratio >= GOAL
    print(f"engine / raw (calls per instruction): {ratio:.2f}x (goal >= {GOAL}x: ", end="")
    print("met)" if met else "MISSED)")
    if logs:
        report_logged_calls(calls)
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument(
        "--loop",
        default="uvloop",
        choices=["uvloop", "asyncio"],
        help="event loop of the measured server (the controller's default: uvloop)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the server's user-space instructions per whole call with valgrind instead"
        " (exact whatever the machine's load; no kernel, no sockets)",
    )
    parser.add_argument(
        "--logs",
        action="store_true",
        help="with --instructions, count the calls again with the product's logs at INFO",
    )
    parser.add_argument("--in-process", choices=["engine", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    if args.in_process:
        if args.logs:
            configure_logging(LogSettings(), open(os.devnull, "w"))  # for the whole process
        switch = bench_switch()
        entry, raw_handler = whole_call_handlers(bench_services(switch), switch)
        asyncio.run(in_process(entry if args.in_process == "engine" else raw_handler, args.calls))
        return 0
    if args.instructions:
        return report_instructions(args.quick, args.logs)
    # The whole calls are measured in turns, engine and raw handler alternating, and each
    # keeps its best turn: on a machine others load, a turn that ran beside a busy neighbour
    # says more about the neighbour than about the code.
    rounds, turns, calls = (50, 3, 1000) if args.quick else (400, 5, 2000)
    switch = bench_switch()
    services = bench_services(switch)

    print(f"engine cost per node (chain of 50 nodes, {rounds} runs, instant channel)")
    print(f"{'kind':10} {'engine µs':>10} {'raw µs':>10} {'engine cost µs':>15}")
    costs = []
    for kind in NODE_BODIES:
        engine_us, raw_us = asyncio.run(per_node(kind, 50, rounds, services))
        costs.append(engine_us - raw_us)
        print(f"{kind:10} {engine_us:10.2f} {raw_us:10.2f} {engine_us - raw_us:15.2f}")
    print(f"{'mean':10} {'':10} {'':10} {sum(costs) / len(costs):15.2f}")

    entry, raw_handler = whole_call_handlers(services, switch)
    print(
        f"\nwhole calls of 88001000001 over FastAGI ({turns} turns of {calls} calls each,"
        f" engine and raw alternating, best turn kept; 50 at once, server CPU time, {args.loop})"
    )
    handlers = {"menu engine": entry, "raw handler": raw_handler}
    seen: dict[str, list[float]] = {label: [] for label in handlers}
    commands = 0
    for turn in range(turns):
        order = list(handlers) if turn % 2 == 0 else list(reversed(handlers))
        for label in order:
            per_core, commands = asyncio.run(calls_per_core(handlers[label], calls))
            seen[label].append(per_core)
    results = {label: max(figures) for label, figures in seen.items()}
    for label, figures in seen.items():
        turns_text = " ".join(f"{figure:.0f}" for figure in figures)
        per_call = commands / calls
        print(
            f"{label:12} {results[label]:9.0f} calls/s per core  ({per_call:.0f} AGI commands a"
            f" call; turns: {turns_text})"
        )
    ratio = results["menu engine"] / results["raw handler"]
    met = ratio >= GOAL
    print(f"engine / raw: {ratio:.2f}x (goal >= {GOAL}x: {'met' if met else 'MISSED'})")
    print(f"load average: {Path('/proc/loadavg').read_text().split()[0]}")
    return 0 if met else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
