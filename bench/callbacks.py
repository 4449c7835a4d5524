"""Callback scheduling benchmark: callbacks placed per second beside raw row claims per second.

Measured in the same run, on the same database (SQLite file, and PostgreSQL when reachable):
  raw claims - ``CallbackStore.claim`` alone (one UPDATE ... WHERE state='pending' per row):
               the limit the database puts on any scheduler
  scheduled  - ``CallbackScheduler.run_due`` + serving: expire sweep, due query, claim, the
               callback queued in the ACD at its place, an operator reserved by the ACD's
               claim, two AMI Originates (operator, then citizen) through the simulator's AMI
               server on loopback, and the row written dialing -> connected
The ratio says how much of the raw claim rate survives the whole decision and both calls.

    .venv/bin/python bench/callbacks.py [--callbacks 400] [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete

from bench.throwaway_postgres import PG_ADMIN, throwaway_schema
from hotline.ami.client import AmiClient
from hotline.clock import SystemClock
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from pbxsim.originator import ScriptedOriginator
from routing.callbacks.model import Callback
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import CallbackStore
from routing.testing import group, memory_node, op

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def _fill(store: CallbackStore, count: int) -> list[int]:
    rows = []
    for i in range(count):
        row = await store.add(
            phone=f"7916{i:07d}",
            application_id=None,
            group_id="general",
            priority=0,
            source="api",
            requested_at=NOW,
            window_start=None,
            window_end=None,
            queue_seq=None,
            arrived_at=NOW,
            state="pending",
            attempts=0,
            next_attempt_at=NOW,
            data={},
            updated_at=NOW,
        )
        rows.append(row.id)
    return rows


async def raw_claims(store: CallbackStore, count: int) -> float:
    ids = await _fill(store, count)
    started = time.perf_counter()
    for callback_id in ids:
        assert await store.claim(callback_id, "bench", NOW)
    return count / (time.perf_counter() - started)


async def scheduled(store: CallbackStore, count: int) -> float:
    await _fill(store, count)
    originator = ScriptedOriginator()
    server = AmiServer(
        clock=SystemClock(), users={"b": ManagerUser("b", "s")}, originator=originator, port=0
    )
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "b", "s", ping_interval=600)
    await ami.connect()
    operators = [op(f"o{i}", general=1 + i % 9) for i in range(count)]
    node = memory_node({"general": group("general")}, operators, node_id="bench")
    await node.start()
    for spec in operators:
        await node.login(spec.id)
    scheduler = CallbackScheduler(
        store, node, ami, settings=CallbackSettings(max_in_flight=50), now=lambda: NOW
    )
    try:
        started = time.perf_counter()
        placed = 0
        while placed < count:
            placed += len(await scheduler.run_due())
            await scheduler.drain()
        elapsed = time.perf_counter() - started
    finally:
        await scheduler.close()
        await ami.close()
        await server.close()
    assert len(originator.calls) == 2 * count
    return count / elapsed


async def measure(url: str, count: int) -> tuple[float, float]:
    await upgrade(url)
    engine = create_engine(url)
    store = CallbackStore(engine)
    try:
        raw = await raw_claims(store, count)
        async with engine.begin() as connection:
            await connection.execute(delete(Callback))
        full = await scheduled(store, count)
        async with engine.begin() as connection:
            await connection.execute(delete(Callback))
    finally:
        await engine.dispose()
    return raw, full


def _report(label: str, raw: float, full: float) -> None:
    print(
        f"{label:<10} raw claims {raw:8.0f}/s   callbacks scheduled and placed {full:7.0f}/s"
        f"   ratio {full / raw:.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=400)
    parser.add_argument("--postgres", default=PG_ADMIN)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw, full = await measure(f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", args.callbacks)
        _report("sqlite", raw, full)
    if not args.no_postgres:
        async with throwaway_schema(args.postgres) as url:
            raw, full = await measure(url, args.callbacks)
            _report("postgres", raw, full)


if __name__ == "__main__":
    asyncio.run(main())
