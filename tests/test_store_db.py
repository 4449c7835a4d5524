"""The call log against real databases: SQLite in a temp dir and the CI PostgreSQL.

On PostgreSQL each test gets its own role and a schema of the same name. PostgreSQL's default
search_path starts with "$user", so everything the production code creates (including
alembic_version) lands in that schema without the code knowing. Reruns and parallel runs
therefore never see each other's tables, and teardown drops both.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import DATABASE_KINDS, empty_database, migrated_engine
from sqlalchemy import Connection, inspect

# Every part's models, so the drift check compares all tables with all migrations.
import hotline.accounts.models
import hotline.audit
import hotline.store
import quality.scores  # noqa: F401
import recorder.models  # noqa: F401
import reporting.fact_store  # noqa: F401
import routing.callbacks.model
import routing.snapshot  # noqa: F401
import workspace.attachments
import workspace.intents
import workspace.store
import workspace.ticket_store  # noqa: F401
from hotline.store.db import Base, CallLog, CallRecord, create_engine
from hotline.store.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind; the SQLite file sits in a directory not yet created."""
    sqlite_file = tmp_path / "not" / "yet" / "calls.sqlite3"
    async with empty_database(request.param, sqlite_file, "hotline_test") as url:
        yield url


@pytest.fixture
async def call_log(db_url: str) -> AsyncIterator[CallLog]:
    """A CallLog over a database migrated to head, the way production gets its schema."""
    async with migrated_engine(db_url) as engine:
        yield CallLog(engine)


async def _start(
    log: CallLog,
    call_id: str,
    *,
    channel: str = "PJSIP/trunk-0000001a",
    node: str = "node-a",
    started_at: datetime | None = None,
) -> CallRecord:
    return await log.call_started(
        call_id,
        channel=channel,
        dialled_number="122",
        caller_id='"Иван Петров" <+79990001122>',
        script="agi://controller/main",
        node=node,
        started_at=started_at,
    )


async def _count(log: CallLog, call_id: str) -> int:
    return sum(1 for record in await log.recent(1000) if record.call_id == call_id)


def _schema_drift(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


# --- migrations -------------------------------------------------------------------------


# The contacts' full-text index is PostgreSQL's own; SQLite cannot compare it and says so.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_migrations_take_an_empty_database_to_head(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini around: the config must be built in code
    assert await current_revision(db_url) is None

    await upgrade(db_url)

    # every product part's branch of migrations is applied: the heads are the revisions no
    # other migration file builds on, read here from the files themselves
    assert head_revision() == ",".join(sorted(_leaf_revisions()))
    assert await current_revision(db_url) == head_revision()
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert {"calls", "alembic_version"} <= await connection.run_sync(_table_names)
            assert await connection.run_sync(_schema_drift) == [], "models and migrations differ"
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    await upgrade(db_url)
    await upgrade(db_url)
    assert await current_revision(db_url) == head_revision()


async def test_two_nodes_starting_at_once_migrate_the_database_once(db_url: str) -> None:
    """A rolling upgrade or a cluster's cold start: several controllers (processes: Alembic's
    context is one per process) run the migrations of the same new version together; one does
    the work, the others wait for it and find the schema at head; none fails."""
    script = "import asyncio, sys; from hotline.store.migrate import upgrade; "
    script += "asyncio.run(upgrade(sys.argv[1]))"
    nodes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, db_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    errors = [(await node.communicate())[1].decode() for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], errors
    assert await current_revision(db_url) == head_revision()


def test_migrations_ship_inside_the_package() -> None:
    package_dir = Path(hotline.store.__file__).resolve().parent
    assert MIGRATIONS_DIR.parent == package_dir
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_calls.py").is_file()


async def test_sqlite_engine_creates_directory_and_enables_wal_and_foreign_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh" / "node" / "calls.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        assert path.parent.is_dir()
        async with engine.connect() as connection:
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert journal == "wal"
        assert foreign_keys == 1
        assert busy == 30_000  # writers wait their turn instead of failing after 5 s
    finally:
        await engine.dispose()


# --- the call log -----------------------------------------------------------------------


async def test_call_started_stores_the_call(call_log: CallLog) -> None:
    started = datetime(2024, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    record = await _start(call_log, "1732701600.42", started_at=started)

    assert record.call_id == "1732701600.42"
    assert record.caller_id == '"Иван Петров" <+79990001122>'
    assert record.started_at == started and record.started_at.tzinfo == UTC
    assert record.ended_at is None and record.outcome is None
    assert record.node == "node-a"


async def test_call_started_is_idempotent(call_log: CallLog) -> None:
    first = await _start(call_log, "1732701600.1")
    again = await _start(call_log, "1732701600.1", channel="PJSIP/other-0001", node="node-b")

    assert again.id == first.id
    assert again.channel == first.channel and again.node == "node-a"  # first write wins
    assert await _count(call_log, "1732701600.1") == 1


async def test_concurrent_duplicate_call_started_make_one_row(call_log: CallLog) -> None:
    records = await asyncio.gather(*(_start(call_log, "1732701600.7") for _ in range(10)))

    assert len({r.id for r in records}) == 1
    assert await _count(call_log, "1732701600.7") == 1


async def test_call_ended_completes_the_record(call_log: CallLog) -> None:
    await _start(call_log, "1732701600.2")
    moscow = timezone(timedelta(hours=3))
    ended = datetime(2024, 11, 27, 13, 5, 0, tzinfo=moscow)

    assert await call_log.call_ended("1732701600.2", "completed", ended) is True

    record = await call_log.get("1732701600.2")
    assert record is not None
    assert record.outcome == "completed"
    assert record.ended_at == ended
    assert record.ended_at is not None and record.ended_at.tzinfo == UTC
    assert record.ended_at.hour == 10


async def test_call_ended_for_unknown_call_changes_nothing(call_log: CallLog) -> None:
    assert await call_log.call_ended("no-such-call", "hangup") is False
    assert await call_log.get("no-such-call") is None


async def test_naive_datetimes_are_refused(call_log: CallLog) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await _start(call_log, "1732701600.3", started_at=datetime(2024, 11, 27, 10, 0))
    await _start(call_log, "1732701600.3")
    with pytest.raises(ValueError, match="timezone-aware"):
        await call_log.call_ended("1732701600.3", "completed", datetime(2024, 11, 27, 10, 1))


async def test_recent_returns_newest_first_up_to_limit(call_log: CallLog) -> None:
    base = datetime(2024, 11, 27, 9, 0, tzinfo=UTC)
    for minute, call_id in [(1, "b"), (0, "a"), (2, "c")]:
        await _start(call_log, call_id, started_at=base + timedelta(minutes=minute))

    assert [r.call_id for r in await call_log.recent(2)] == ["c", "b"]
    assert [r.call_id for r in await call_log.recent(10)] == ["c", "b", "a"]
    assert await call_log.recent(0) == []


def _leaf_revisions() -> set[str]:
    revision = re.compile(r'^revision(?::\s*str)?\s*=\s*"([^"]+)"', re.MULTILINE)
    parent = re.compile(r'^down_revision[^=]*=\s*"([^"]+)"', re.MULTILINE)
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text()
        revisions.update(revision.findall(text))
        parents.update(parent.findall(text))
    assert "0001" in revisions
    return revisions - parents
