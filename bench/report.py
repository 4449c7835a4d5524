"""A month's KPI report over one million calls on PostgreSQL, against a raw scan of the same
table in the same run.

A throwaway schema (bench/throwaway_postgres.py) is migrated to the real tables and indexes
(migration 0012_call_facts), then filled by COPY with `--calls` facts spread over December
2026 and `--other` over November (so the month is a range of a bigger table), and a month of
operators' time (200 on duty 08:00-20:00, a row per operator and hour, as the recorder keeps
it); ANALYZE follows, as autovacuum would. Then, `--runs` times each:

* the KPIs (`reporting.kpis.compute_kpis`: every breakdown from the rollups the recorder keeps,
  `reporting.rollups`, rebuilt here once after the COPY; occupancy from `operator_time`);
* the whole report (`reporting.output.produce`, HTML with its charts);
* the raw limit: ``SELECT count(*)`` of the month's rows and of the whole table, straight over
  asyncpg: the least any query reading the month must do.

Prints p50 and max of each and the ratio KPIs / raw month scan; exits 1 when the KPIs' p50
misses the goal (2 s).

    .venv/bin/python bench/report.py [--calls 1000000] [--other 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.throwaway_postgres import throwaway_schema
from bench.timing import timed
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from reporting.kpis import compute_kpis
from reporting.output import produce
from reporting.rollups import rebuild
from reporting.targets import Targets

GOAL_SECONDS = 2.0
DECEMBER = date(2026, 12, 1)
NOVEMBER = date(2026, 11, 1)
LINES = ("88001000001", "88002000002", "88003000003", "88004000004", "88005000005")
GROUPS = ("general", "payments", "tech", "tech2", "pensions", "health", "taxes", "docs")
OPERATORS = tuple(f"op{n:03d}" for n in range(400))
COLUMNS = (
    "call_id", "line", "started_at", "ended_at", "local_day", "local_hour", "menu_path",
    "menu_exit", "menu_seconds", "topic", "group_name", "queued", "wait_seconds", "overflowed",
    "overflow_reason", "widened", "ringing_operators", "operator_id", "answered",
    "talk_seconds", "hold_seconds", "wrap_seconds", "outcome", "abandoned_at",
    "abandoned_ringing", "callback_booked", "transferred", "escalated", "rating",
    "contact_number", "fcr_operator", "came_back", "repeat", "caller_number", "application",
)  # fmt: skip


def facts(count: int, first: date, days: int, seed: int, prefix: str) -> Iterator[tuple[Any, ...]]:
    """`count` plausible calls over `days` days from `first` (MSK days, UTC+3 instants)."""
    rng = random.Random(seed)
    msk = timedelta(hours=3)
    for i in range(count):
        day = first + timedelta(days=i % days)
        hour = 8 + rng.randrange(12)
        started = datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=UTC) - msk
        roll = rng.random()
        queued = roll > 0.25
        answered = queued and roll > 0.33
        abandoned = queued and not answered
        wait = rng.expovariate(1 / 18) if queued else None
        operator = rng.choice(OPERATORS) if answered else None
        talk = rng.expovariate(1 / 200) if answered else None
        rating = (
            (5 if rng.random() < 0.8 else rng.randint(1, 4))
            if answered and rng.random() < 0.6
            else None
        )
        outcome = "answered" if answered else ("abandoned" if abandoned else "self_service")
        yield (
            f"{prefix}{i}", rng.choice(LINES), started, started + timedelta(minutes=5), day, hour,
            "start main queue", "queue general" if queued else "hangup", 30.0, None,
            rng.choice(GROUPS) if queued else None, queued, wait, False, None, False,
            operator, operator, answered, talk, 0.0 if answered else None,
            15.0 if answered else None, outcome,
            started + timedelta(seconds=60) if abandoned else None, abandoned and roll < 0.3,
            False, False, False, rating, None,
            (rng.random() < 0.87) if answered else None, answered and rng.random() < 0.04,
            rng.random() < 0.04, f"7916{rng.randrange(10**7):07d}", None,
        )  # fmt: skip


def stays(first: date, days: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for d in range(days):
        day = first + timedelta(days=d)
        for operator in OPERATORS[:200]:
            for hour in range(8, 20):
                ready = 900.0 + rng.randrange(600)
                yield (operator, day, hour, 2100.0, 2100.0 + ready, 300.0)


async def fill(dsn: str, calls: int, other: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        began = time.perf_counter()
        await connection.copy_records_to_table(
            "call_facts", records=facts(calls, DECEMBER, 31, 1, "dec-"), columns=COLUMNS
        )
        await connection.copy_records_to_table(
            "call_facts", records=facts(other, NOVEMBER, 30, 2, "nov-"), columns=COLUMNS
        )
        await connection.copy_records_to_table(
            "operator_time",
            records=stays(DECEMBER, 31, 3),
            columns=(
                "operator_id",
                "local_day",
                "local_hour",
                "busy_seconds",
                "work_seconds",
                "paused_seconds",
            ),
        )
        await connection.execute("ANALYZE call_facts")
        await connection.execute("ANALYZE operator_time")
        return time.perf_counter() - began
    finally:
        await connection.close()


async def roll_up(url: str) -> float:
    """The rollups of the bulk-loaded facts (the recorder keeps them as it writes; COPY does
    not go through it): `reporting.rollups.rebuild`, November and December."""
    engine = create_engine(url)
    try:
        began = time.perf_counter()
        async with engine.begin() as connection:
            await rebuild(connection, NOVEMBER, date(2026, 12, 31))
        return time.perf_counter() - began
    finally:
        await engine.dispose()


def line(name: str, seconds: list[float]) -> str:
    return f"  {name:<34} p50 {statistics.median(seconds):7.3f} s   max {max(seconds):7.3f} s"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--other", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    async with throwaway_schema() as url:
        await upgrade(url)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        print(f"filling {args.calls:,} December facts and {args.other:,} November ones (COPY)")
        print(f"  loaded and analysed in {await fill(dsn, args.calls, args.other):.1f} s")
        print(f"  rolled up (rebuild of two months) in {await roll_up(url):.1f} s")
        engine = create_engine(url)
        raw = await asyncpg.connect(dsn)
        last = date(2026, 12, 31)
        try:
            kpis = await compute_kpis(engine, DECEMBER, last, Targets())
            print(f"  the month: {kpis.total.calls:,} calls, ASA {kpis.total.asa_seconds:.1f} s")
            month_scan = await timed(
                args.runs,
                lambda: raw.fetchval(
                    "SELECT count(*) FROM call_facts WHERE local_day BETWEEN $1 AND $2",
                    DECEMBER,
                    last,
                ),
            )
            table_scan = await timed(
                args.runs, lambda: raw.fetchval("SELECT count(*) FROM call_facts")
            )
            kpi_times = await timed(
                args.runs, lambda: compute_kpis(engine, DECEMBER, last, Targets())
            )
            report_times = await timed(
                args.runs, lambda: produce(engine, DECEMBER, last, Targets(), fmt="html")
            )
        finally:
            await raw.close()
            await engine.dispose()
    print("a month's report over PostgreSQL:")
    print(line("raw SELECT count(*) of the month", month_scan))
    print(line("raw SELECT count(*) of the table", table_scan))
    print(line("KPIs (all breakdowns, occupancy)", kpi_times))
    print(line("whole report (HTML and charts)", report_times))
    ratio = statistics.median(kpi_times) / statistics.median(month_scan)
    print(f"  KPIs / raw month scan: {ratio:.1f}x; goal: KPIs p50 under {GOAL_SECONDS:.0f} s")
    return 0 if statistics.median(kpi_times) < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
