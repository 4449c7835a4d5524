"""The recordings table on SQLite and PostgreSQL: migration, idempotence, states, shredding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from hotline.store.db import Base
from recorder.models import RecordedCall, RecordingStore, State

STARTED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _drift(connection: Connection) -> list[object]:
    diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # only our table: other parts' tables may not have their models imported here
    return [d for d in diffs if "recordings" in repr(d)]


async def test_migration_matches_the_model(recording_store: RecordingStore) -> None:
    async with recording_store.engine.connect() as connection:
        assert await connection.run_sync(_drift) == []


async def test_register_is_idempotent_and_race_free(recording_store: RecordingStore) -> None:
    rows = await asyncio.gather(
        *(
            recording_store.register(
                "1795563226.1", format="opus", started_at=STARTED, dialled_number="88001000000"
            )
            for _ in range(5)
        )
    )
    assert {row.id for row in rows} == {rows[0].id}
    assert rows[0].state == State.SPOOLED and rows[0].legal_hold is False
    assert rows[0].started_at == STARTED
    again = await recording_store.register(
        "1795563226.1", format="wav", started_at=STARTED, operator="agent7"
    )
    assert again.format == "opus" and again.operator is None  # the first row is kept


async def test_advance_is_compare_and_set(recording_store: RecordingStore) -> None:
    await recording_store.register("c1", format="opus", started_at=STARTED)
    await recording_store.note_failure("c1", "storage down")
    assert await recording_store.advance("c1", State.SPOOLED, State.TRANSCODED, plain_size=10)
    assert not await recording_store.advance("c1", State.SPOOLED, State.TRANSCODED)
    row = await recording_store.get("c1")
    assert row is not None
    assert (row.state, row.plain_size, row.attempts, row.last_error) == (
        "transcoded",
        10,
        1,
        None,
    )
    assert [r.call_id for r in await recording_store.unfinished()] == ["c1"]
    await recording_store.advance("c1", State.TRANSCODED, State.VERIFIED)
    assert await recording_store.unfinished() == []


async def test_destroy_key_shreds_and_rewrap_finds_old_versions(
    recording_store: RecordingStore,
) -> None:
    for call_id, version in (("old", 1), ("new", 2)):
        await recording_store.register(call_id, format="opus", started_at=STARTED)
        await recording_store.update(
            call_id, key_id="recorder", key_version=version, wrapped_key=b"\x01" * 60
        )
    stale = await recording_store.with_key_not("recorder", 2)
    assert [r.call_id for r in stale] == ["old"]
    assert await recording_store.destroy_key("old")
    assert await recording_store.destroy_key("old")  # idempotent
    assert not await recording_store.destroy_key("missing")
    row = await recording_store.get("old")
    assert isinstance(row, RecordedCall)
    assert row.wrapped_key is None and row.key_destroyed_at is not None
    assert row.key_version == 1  # which key it was under stays known
    assert await recording_store.with_key_not("recorder", 2) == []
