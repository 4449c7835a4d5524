"""The audit log on SQLite and the real PostgreSQL: chain, append-only triggers, tamper detection.

Tampering is done the way an insider would: straight SQL on the table with the triggers
bypassed (dropped on SQLite, `session_replication_role = replica` as superuser on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from audit_kit import AUDITOR, START, fill_audit, tamper_audit
from databases import migrated_engine
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import hotline.audit
from controller.audit_cli import add_commands, cmd_audit_verify
from controller.settings import Settings
from hotline.audit import (
    AuditEntry,
    AuditLog,
    entry_hash,
    parse_anchor,
)
from hotline.auth import Actor, TokenBook
from hotline.settings import StoreSettings
from hotline.store.db import Base, create_engine
from recorder import recordings_cli
from recorder.recordings_cli import cmd_token


@dataclasses.dataclass
class Db:
    url: str
    engine: AsyncEngine
    schema: str | None  # PostgreSQL schema (= role) name; None for SQLite

    def timestamp(self, at: datetime) -> str:
        """A literal for the `at` column as this database stores it."""
        plain = at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return plain if self.schema is None else plain + "+00:00"

    async def tamper(self, *statements: str) -> None:
        """Run raw SQL around the append-only triggers, as a DBA or a file editor could."""
        await tamper_audit(self.engine, self.schema, *statements)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Db]:
    """A migrated database of each kind (`db_url` comes from the recorder tests' conftest)."""
    schema = None if db_url.startswith("sqlite") else make_url(db_url).username
    async with migrated_engine(db_url) as engine:
        yield Db(db_url, engine, schema)


async def _verify_cli(url: str, anchor: str | None = None) -> int:
    settings = dataclasses.replace(Settings(), store=StoreSettings(database_url=url))
    parsed = argparse.Namespace(anchor=parse_anchor(anchor) if anchor else None)
    return await cmd_audit_verify(parsed, settings)


# --- the chain ----------------------------------------------------------------------------


async def test_entries_chain_by_sha256_of_previous_hash_and_canonical_json(db: Db) -> None:
    log = AuditLog(db.engine)
    first = await log.record(
        Actor("петров", "supervisor"),
        "download",
        recording_id="1732701600.42",
        source="10.1.2.3",
        outcome="ok",
        detail={"bytes": 1024, "format": "ogg"},
        at=START,
    )
    second = await log.record(
        Actor("", ""), "play", recording_id="x", source="10.9.9.9", outcome="refused", at=START
    )

    # Pinned by value, not recomputed with the module's own helpers: a change of the chain's
    # format would orphan every anchor already exported, so it must fail here. The hash is
    # sha256 of 64 zeros (the genesis) followed by this exact JSON (sorted keys, no spaces):
    canonical = (
        '{"action":"download","at":"2026-11-27T09:00:00.000000+00:00",'
        '"detail":"{\\"bytes\\":1024,\\"format\\":\\"ogg\\"}","outcome":"ok",'
        '"recording_id":"1732701600.42","role":"supervisor","source":"10.1.2.3",'
        '"user_id":"петров"}'
    )
    genesis = "0" * 64
    expected = "aa819c78fb969b579954e86805f96948ccddd429eee1410c32a94b013303aa25"
    assert hashlib.sha256((genesis + canonical).encode()).hexdigest() == expected
    assert (first.seq, first.prev_hash, first.hash) == (1, genesis, expected)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    stored = await log.entries()
    assert stored == [first, second]  # read back exactly, timestamps included
    assert stored[0].detail_data == {"bytes": 1024, "format": "ogg"}
    report = await log.verify()
    assert report.ok and report.entries == 2 and report.head_hash == second.hash


async def test_model_matches_the_migration(db: Db) -> None:
    def drift(connection: Connection) -> list[object]:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        return [d for d in diffs if "recording_audit" in repr(d)]

    async with db.engine.connect() as connection:
        assert await connection.run_sync(drift) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE recording_audit SET outcome = 'ok' WHERE seq = 1",
        "DELETE FROM recording_audit WHERE seq = 1",
    ],
)
async def test_database_refuses_update_and_delete(db: Db, statement: str) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 2)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(statement)
    assert (await log.verify()).ok and len(await log.entries()) == 2


async def test_database_refuses_emptying_the_table(db: Db) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 2)
    # PostgreSQL's TRUNCATE skips row triggers, so it has its own; SQLite has no TRUNCATE, and
    # its "truncate optimisation" of a bare DELETE is disabled by the DELETE trigger.
    statement = "DELETE FROM recording_audit" if db.schema is None else "TRUNCATE recording_audit"

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(statement)
    assert len(await log.entries()) == 2


async def test_concurrent_writers_on_two_engines_do_not_fork_the_chain(db: Db) -> None:
    other = create_engine(db.url)  # a second process would have its own pool, like this
    try:
        logs = [AuditLog(db.engine), AuditLog(other)]
        await asyncio.gather(
            *(
                logs[index % 2].record(
                    AUDITOR, "play", recording_id=str(index), source="ws", outcome="ok"
                )
                for index in range(30)
            )
        )
    finally:
        await other.dispose()
    entries = await AuditLog(db.engine).entries()
    assert [entry.seq for entry in entries] == list(range(1, 31))
    assert sorted(entry.recording_id or "" for entry in entries) == sorted(map(str, range(30)))
    assert (await AuditLog(db.engine).verify()).ok


# --- tamper detection -----------------------------------------------------------------------


async def test_edited_entry_is_reported(db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    await fill_audit(AuditLog(db.engine), 5)
    await db.tamper("UPDATE recording_audit SET outcome = 'refused' WHERE seq = 3")

    report = await AuditLog(db.engine).verify()

    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (3, "edited")
    assert await _verify_cli(db.url) == 1
    assert "BROKEN at entry #3 (edited)" in capsys.readouterr().err


async def test_edited_and_rehashed_entry_is_reported_at_its_successor(db: Db) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 4)
    entry = (await log.entries())[1]
    forged = dataclasses.replace(entry, user_id="someone-else")
    new_hash = entry_hash(forged.prev_hash, forged.hashed_fields())
    await db.tamper(
        f"UPDATE recording_audit SET user_id = 'someone-else', hash = '{new_hash}' WHERE seq = 2"
    )

    report = await log.verify()

    assert report.broken is not None and report.broken.seq == 3
    assert "entry #2 was edited and its hash recomputed" in report.broken.message


async def test_deleted_entry_is_reported(db: Db) -> None:
    await fill_audit(AuditLog(db.engine), 5)
    await db.tamper("DELETE FROM recording_audit WHERE seq = 2")

    report = await AuditLog(db.engine).verify()

    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (2, "deleted")
    assert "entry #2 deleted" in report.broken.message


async def test_deleted_first_entry_is_reported(db: Db) -> None:
    await fill_audit(AuditLog(db.engine), 3)
    await db.tamper("DELETE FROM recording_audit WHERE seq = 1")

    report = await AuditLog(db.engine).verify()

    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (1, "deleted")


async def test_deleted_tail_is_caught_by_the_anchor(
    db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 5)
    assert await _verify_cli(db.url) == 0
    printed = capsys.readouterr().out
    assert "intact: 5 entries" in printed
    head_seq, head_hash = await log.head()
    anchor = f"{head_seq}:{head_hash}"
    assert f"#{anchor.replace(':', ' ')}" in printed

    await db.tamper("DELETE FROM recording_audit WHERE seq >= 4")

    assert (await log.verify()).ok  # the chain alone cannot see a cut-off end...
    assert await _verify_cli(db.url, anchor) == 1  # ...the anchor kept outside can
    assert "the anchor says entry #5 existed" in capsys.readouterr().err


async def test_rewritten_log_is_caught_by_the_anchor(db: Db) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 3)
    anchor = await log.head()
    await db.tamper("DELETE FROM recording_audit")
    for _ in range(4):  # a whole new, self-consistent chain without the awkward entries
        await log.record(AUDITOR, "list", recording_id=None, source="10.0.0.5", outcome="ok")

    report = await log.verify(anchor=anchor)

    assert report.broken is not None and report.broken.kind == "anchor"


async def test_reordered_entries_are_reported(db: Db) -> None:
    await fill_audit(AuditLog(db.engine), 5)
    await db.tamper(
        "UPDATE recording_audit SET seq = -1 WHERE seq = 3",
        "UPDATE recording_audit SET seq = 3 WHERE seq = 4",
        "UPDATE recording_audit SET seq = 4 WHERE seq = -1",
    )

    report = await AuditLog(db.engine).verify()

    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (3, "reordered")


async def test_inserted_entry_with_a_valid_hash_is_reported(db: Db) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 4)
    second = (await log.entries())[1]
    fields = dict(second.hashed_fields(), action="hold", recording_id="forged")
    forged_hash = entry_hash(second.hash, fields)
    await db.tamper(
        "UPDATE recording_audit SET seq = seq * 10",
        "INSERT INTO recording_audit (seq, at, user_id, role, action, recording_id, source, "
        "outcome, detail, prev_hash, hash) VALUES (25, "
        f"'{db.timestamp(second.at)}', '{second.user_id}', "
        f"'{second.role}', 'hold', 'forged', '{second.source}', 'ok', '{second.detail}', "
        f"'{second.hash}', '{forged_hash}')",
    )

    report = await log.verify()

    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (25, "inserted")


async def test_inserted_entry_with_a_made_up_link_is_reported(db: Db) -> None:
    log = AuditLog(db.engine)
    await fill_audit(log, 3)
    await db.tamper(
        "UPDATE recording_audit SET seq = seq * 10",
        "INSERT INTO recording_audit (seq, at, user_id, role, action, recording_id, source, "
        "outcome, detail, prev_hash, hash) VALUES (15, '2026-11-27 09:00:30', 'x', 'x', "
        f"'purge', 'r', 's', 'ok', '{{}}', '{'a' * 64}', '{'b' * 64}')",
    )

    report = await log.verify()

    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (15, "inserted")


async def test_verify_of_an_empty_log_is_ok(db: Db) -> None:
    report = await AuditLog(db.engine).verify()
    assert report.ok and report.entries == 0 and report.head_hash == "0" * 64


async def test_verify_reads_a_log_longer_than_one_batch(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hotline.audit, "_VERIFY_BATCH", 3)
    log = AuditLog(db.engine)
    await fill_audit(log, 11)  # several verification batches
    assert (await log.verify()).entries == 11
    await db.tamper("UPDATE recording_audit SET source = 'elsewhere' WHERE seq = 8")

    report = await log.verify()

    assert report.entries == 9 and report.broken is not None  # judged with one look-ahead
    assert report.broken.seq == 8


# --- the command --------------------------------------------------------------------------


async def test_verify_command_on_an_unmigrated_database_says_so(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _verify_cli(sqlite_url) == 2
    assert "hotline db upgrade" in capsys.readouterr().err


def test_verify_command_parses_and_rejects_a_malformed_anchor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "verify", "--anchor", f"#7:{'A' * 64}"])
    assert args.anchor == (7, "a" * 64) and args.run is cmd_audit_verify
    with pytest.raises(SystemExit):
        parser.parse_args(["audit", "verify", "--anchor", "7:nothex"])
    assert "SEQ:HASH" in capsys.readouterr().err


def test_audit_entry_is_registered_on_the_shared_base() -> None:
    assert Base.metadata.tables["recording_audit"] is AuditEntry.__table__


def test_all_commands_parse_and_join_an_existing_recordings_group() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    other = commands.add_parser("recordings").add_subparsers(dest="x")  # as another part might
    other.add_parser("reprocess")
    add_commands(commands)
    recordings_cli.add_commands(commands)

    lines = [
        ["audit", "verify"],
        ["recordings", "reprocess"],
        ["recordings", "purge", "--dry-run"],
        ["recordings", "hold", "1732701600.1", "--reason", "дело 1"],
        ["recordings", "release", "1732701600.1", "--reason", "закрыто"],
        ["recordings", "sample", "--period", "2026-11", "--per-operator", "3"],
        ["recordings", "clip", "1.2", "--from", "1", "--to", "2.5", "-o", "c.ogg"],
        ["recordings", "token", "--user", "ivanova", "--role", "supervisor"],
    ]
    parsed = [parser.parse_args(line) for line in lines]

    assert parsed[3].hold is True and parsed[4].hold is False
    assert (parsed[6].start, parsed[6].end) == (1.0, 2.5)
    assert all(callable(getattr(args, "run", None)) for args in parsed[2:])


async def test_token_command_prints_a_token_and_only_its_hash_for_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = argparse.Namespace(user="ivanova", role="supervisor")
    assert await cmd_token(args, Settings()) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    entry = out[-1]
    assert token not in entry
    book_file = tmp_path / "tokens.yaml"
    book_file.write_text("users:\n" + entry + "\n", encoding="utf-8")
    assert TokenBook.load(book_file).lookup(token) == Actor("ivanova", "supervisor")
