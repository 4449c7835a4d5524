"""Migration 0008_callback_public_id on a database that already holds callbacks: each row gets
its own random public id, and the API finds them by it (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database, migrate_to
from sqlalchemy import text

from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from routing.callbacks.store import CallbackStore

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with empty_database(request.param, tmp_path / "old.sqlite3", "hotline_cbmig") as url:
        yield url


async def test_callbacks_from_before_get_their_own_random_public_ids(db_url: str) -> None:
    await migrate_to(db_url, "0006_callback_talk")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            for phone in ("79161234567", "79031112233"):
                await connection.execute(
                    text(
                        "INSERT INTO callbacks (phone, group_id, priority, source, requested_at,"
                        " arrived_at, state, attempts, next_attempt_at, data, updated_at)"
                        " VALUES (:phone, 'general', 0, 'api', :at, :at, 'pending', 0, :at,"
                        " '{}', :at)"
                    ),
                    {"phone": phone, "at": AT.replace(tzinfo=None)},
                )
        await upgrade(db_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, public_id FROM callbacks"))).all()
        public_ids = [public_id for _, public_id in rows]
        assert len(set(public_ids)) == 2
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", p) for p in public_ids)
        store = CallbackStore(engine)
        for row_id, public_id in rows:
            found = await store.get_public(public_id)
            assert found is not None and found.id == row_id and found.requested_by is None
    finally:
        await engine.dispose()
