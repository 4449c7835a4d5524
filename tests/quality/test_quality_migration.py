"""Migration 0014_quality_superseded on a database that already holds scores: an auditor's
earlier scores of a recording are marked superseded, and the averages count their latest and
another auditor's (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database, migrate_to
from sqlalchemy import text

from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from quality.scores import Average, ScoreStore

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path / "old.sqlite3", "hotline_qmig") as url:
        yield url


async def test_scores_from_before_count_each_auditors_latest(db_url: str) -> None:
    await migrate_to(db_url, "0013_quality_scores")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            for auditor, total in [("kozlova", 0.0), ("kozlova", 100.0), ("smirnova", 85.0)]:
                await connection.execute(
                    text(
                        "INSERT INTO quality_scores (recording_id, operator_id, auditor_id,"
                        " period, points, total_percent, comment, scored_at) VALUES"
                        " ('c1', 'op1', :auditor, '2026-11', '{}', :total, '', :at)"
                    ),
                    {"auditor": auditor, "total": total, "at": AT.replace(tzinfo=None)},
                )
        await upgrade(db_url)
        # kozlova's 100 % (her 0 % corrected) and smirnova's 85 %: by hand, 92.5 % of 2
        assert await ScoreStore(engine).averages("2026-11") == [Average("op1", 2, 92.5)]
    finally:
        await engine.dispose()
