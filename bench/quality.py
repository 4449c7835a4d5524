"""The quality page's per-operator averages over a year of scores on PostgreSQL, against a raw
count of the same period's rows in the same run.

A throwaway schema (bench/throwaway_postgres.py) is migrated (0013_quality_scores and its
index), filled by COPY with `--scores` scores spread over 12 monthly periods and 400 operators,
and analysed. Then, `--runs` times each: `quality.scores.ScoreStore.averages` of one period
(what /quality shows) and the raw limit, ``SELECT count(*)`` of that period's rows straight over
asyncpg. Prints p50 and max of each and the ratio averages / raw count.

    .venv/bin/python bench/quality.py [--scores 200000] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.throwaway_postgres import throwaway_schema
from bench.timing import timed
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from quality.scores import ScoreStore

OPERATORS = tuple(f"op{n:03d}" for n in range(400))
PERIODS = tuple(f"2026-{month:02d}" for month in range(1, 13))
COLUMNS = (
    "recording_id", "operator_id", "auditor_id", "period", "points", "total_percent",
    "comment", "scored_at",
)  # fmt: skip


def scores(count: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        points = {"greeting": rng.randint(0, 5), "correctness": rng.randint(0, 10)}
        yield (
            f"rec-{i}",
            rng.choice(OPERATORS),
            "kozlova",
            PERIODS[i % 12],
            json.dumps(points),
            100.0 * rng.random(),
            "",
            start + timedelta(minutes=i),
        )


def line(name: str, seconds: list[float]) -> str:
    p50, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
    return f"  {name:<34} p50 {p50:8.2f} ms   max {worst:8.2f} ms"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    async with throwaway_schema() as url:
        await upgrade(url)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        raw = await asyncpg.connect(dsn)
        engine = create_engine(url)
        try:
            began = time.perf_counter()
            await raw.copy_records_to_table(
                "quality_scores", records=scores(args.scores), columns=COLUMNS
            )
            await raw.execute("ANALYZE quality_scores")
            print(f"{args.scores:,} scores loaded in {time.perf_counter() - began:.1f} s")
            store = ScoreStore(engine)
            rows = await store.averages("2026-06")
            print(f"  2026-06: {len(rows)} operators, {sum(r.scores for r in rows):,} scores")
            raw_times = await timed(
                args.runs,
                lambda: raw.fetchval(
                    "SELECT count(*) FROM quality_scores WHERE period = $1", "2026-06"
                ),
            )
            avg_times = await timed(args.runs, lambda: store.averages("2026-06"))
        finally:
            await raw.close()
            await engine.dispose()
    print("per-operator averages of one period on PostgreSQL:")
    print(line("ScoreStore.averages", avg_times))
    print(line("raw count of the period", raw_times))
    ratio = statistics.median(avg_times) / statistics.median(raw_times)
    print(f"  ratio averages / raw count: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
