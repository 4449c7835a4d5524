"""Attacks on the audit log, replayed: each must now fail safely.

* Rewriting rows and recomputing plain SHA-256 links (what anyone with write access to the
  database could do to the old, unkeyed chain) fails `hotline audit verify`.
* Cutting entries off the end is caught by the anchors the controller exported to an S3 bucket
  with object lock in compliance mode (a real SeaweedFS), which refuses to delete or rewrite them.
* 1,000 unauthenticated requests with 7 KB ids add a bounded number of bytes.

Tampering is done as an insider would: straight SQL around the append-only triggers (dropped on
SQLite, `session_replication_role = replica` as superuser on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestClient, TestServer
from audit_kit import START, fill_audit, tamper_audit
from botocore.exceptions import ClientError
from databases import DATABASE_KINDS, empty_database, migrate_to, migrated_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.audit_cli import cmd_audit_verify
from controller.settings import Settings
from hotline.audit import AuditLog, audit_log_for, ensure_audit_key, entry_hash
from hotline.audit_anchors import Anchor, AnchorBucket, AnchorError
from hotline.audit_bounds import FIELD_CAP, OTHER_SOURCES
from hotline.audit_watch import AuditWatch
from hotline.auth import Actor, TokenBook
from hotline.keyfiles import MasterKeyStore
from hotline.security import AUDIT_ANCHOR_AGE, AUDIT_CHAIN_OK
from hotline.settings import AuditSettings, StoreSettings
from hotline.store.db import create_engine
from recorder.http import build_app
from recorder.keys import KeyRing
from recorder.models import RecordingStore
from recorder.playback import RecordingAccess
from recorder.storage import LocalStorage

if TYPE_CHECKING:
    from seaweed import Seaweed


@dataclasses.dataclass
class Db:
    url: str
    engine: AsyncEngine
    schema: str | None  # PostgreSQL schema (= role) name; None for SQLite
    keys_dir: Path

    def settings(self, **audit: object) -> Settings:
        return dataclasses.replace(
            Settings(),
            store=StoreSettings(database_url=self.url),
            audit=AuditSettings(keys_dir=self.keys_dir, **audit),  # type: ignore[arg-type]
        )

    def log(self) -> AuditLog:
        return audit_log_for(self.engine, self.settings().audit)

    async def tamper(self, *statements: str) -> None:
        """Raw SQL around the append-only triggers, as a DBA or a file editor could."""
        await tamper_audit(self.engine, self.schema, *statements)

    async def rows(self) -> list[dict[str, object]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(text("SELECT * FROM recording_audit ORDER BY seq"))
            return [dict(row._mapping) for row in result]


@pytest.fixture(params=DATABASE_KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    async with empty_database(request.param, tmp_path / "hotline.sqlite3", "hotline_aud") as url:
        schema = None if url.startswith("sqlite") else make_url(url).username
        async with migrated_engine(url) as engine:
            yield Db(url, engine, schema, tmp_path / "keys")


async def _verify_cli(db: Db, **audit: object) -> int:
    args = argparse.Namespace(anchor=None)
    return await cmd_audit_verify(args, db.settings(**audit))


async def _rewrite_as_plain(db: Db, from_seq: int, *, relabel: bool, user: str) -> None:
    """Change who acted in entry `from_seq` and recompute every link from it on with plain
    SHA-256 (the documented format: what an attacker without the key can compute)."""
    records = await db.log().entries()
    prev = records[from_seq - 2].hash if from_seq > 1 else "0" * 64
    statements = []
    for record in records[from_seq - 1 :]:
        if record.seq == from_seq:
            record = dataclasses.replace(record, user_id=user)
        digest = entry_hash(prev, record.hashed_fields())
        scheme = ", scheme = 'sha256', key_id = NULL, key_version = NULL" if relabel else ""
        statements.append(
            f"UPDATE recording_audit SET user_id = '{record.user_id}', prev_hash = '{prev}', "
            f"hash = '{digest}'{scheme} WHERE seq = {record.seq}"
        )
        prev = digest
    await db.tamper(*statements)


# --- the keyed chain ----------------------------------------------------------------------


async def test_keyed_entries_link_by_hmac_of_the_pinned_format(db: Db) -> None:
    store = MasterKeyStore(db.keys_dir)
    store.write("audit", 1, bytes(range(32)))
    log = db.log()
    first = await log.record(
        Actor("петров", "supervisor"),
        "download",
        recording_id="1732701600.42",
        source="10.1.2.3",
        outcome="ok",
        detail={"bytes": 1024, "format": "ogg"},
        at=START,
    )
    # Pinned by value: a change of the keyed format would orphan every exported anchor. The
    # link is HMAC-SHA-256 under the key file's 32 bytes of 64 zeros (the genesis) followed by
    # this exact JSON, which names the scheme and the key version inside what is signed:
    canonical = (
        '{"action":"download","at":"2026-11-27T09:00:00.000000+00:00",'
        '"detail":"{\\"bytes\\":1024,\\"format\\":\\"ogg\\"}","key_id":"audit","key_version":1,'
        '"outcome":"ok","recording_id":"1732701600.42","role":"supervisor",'
        '"scheme":"hmac-sha256","source":"10.1.2.3","user_id":"петров"}'
    )
    expected = "9be9b590b84e4de4300e998d111a76a833598751176e0186c6dc9e48c2fa75c5"
    message = ("0" * 64 + canonical).encode()
    assert hmac.new(bytes(range(32)), message, hashlib.sha256).hexdigest() == expected
    assert (first.hash, first.scheme, first.key_id, first.key_version) == (
        expected,
        "hmac-sha256",
        "audit",
        1,
    )
    assert (await log.entries()) == [first]
    assert (await log.verify()).ok
    assert oct((db.keys_dir / "audit.v1.key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("relabel", [False, True], ids=["hash-only", "relabelled-sha256"])
async def test_rewriting_rows_and_recomputing_sha256_fails_verify(
    db: Db, relabel: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    await ensure_audit_key(db.log())  # the key file the controller creates on first start
    await fill_audit(db.log(), 4)
    assert await _verify_cli(db) == 0

    await _rewrite_as_plain(db, 3, relabel=relabel, user="someone-else")

    assert (await db.rows())[2]["user_id"] == "someone-else"
    report = await db.log().verify()
    assert not report.ok and report.broken is not None
    assert report.broken.seq == 3
    assert report.broken.kind == ("downgraded" if relabel else "edited")
    assert await _verify_cli(db) == 1
    assert "BROKEN at entry #3" in capsys.readouterr().err


async def test_rewriting_the_whole_chain_as_sha256_fails_while_the_key_exists(db: Db) -> None:
    await ensure_audit_key(db.log())
    await fill_audit(db.log(), 3)
    await _rewrite_as_plain(db, 1, relabel=True, user="nobody")
    report = await db.log().verify()
    assert report.broken is not None and report.broken.kind == "unkeyed"
    assert report.broken.seq == 4  # the head: every link is consistent, none is keyed


async def test_old_sha256_entries_stay_and_the_chain_continues_keyed(db: Db) -> None:
    unkeyed = AuditLog(db.engine)  # an installation before the switch
    await fill_audit(unkeyed, 2)
    legacy = await db.rows()

    log = db.log()
    await ensure_audit_key(log)  # the switch: key v1 and an entry saying so, signed with it
    await fill_audit(log, 2, first=2)

    rows = await db.rows()
    assert rows[:2] == legacy  # untouched: same links, scheme sha256
    assert [row["scheme"] for row in rows] == ["sha256"] * 2 + ["hmac-sha256"] * 3
    assert rows[2]["action"] == "audit_key_rotated" and rows[2]["prev_hash"] == legacy[1]["hash"]
    report = await log.verify()
    assert report.ok and report.entries == 5
    # an old (plain) entry edited and rehashed breaks the first keyed link after it
    await _rewrite_as_plain(db, 2, relabel=False, user="edited")
    broken = (await log.verify()).broken
    assert broken is not None and broken.seq == 3


async def test_a_rotated_key_continues_the_chain_and_old_entries_need_the_old_key(db: Db) -> None:
    log = db.log()
    await ensure_audit_key(log)
    await fill_audit(log, 2)
    store = MasterKeyStore(db.keys_dir)
    await log.note_key_rotation(store.generate("audit").version)
    await fill_audit(log, 2, first=2)

    assert [row["key_version"] for row in await db.rows()] == [1, 1, 1, 2, 2, 2]
    assert (await log.verify()).ok
    (db.keys_dir / "audit.v1.key").unlink()  # lost without a backup
    broken = (await db.log().verify()).broken
    assert broken is not None and (broken.seq, broken.kind) == (1, "key")
    assert "audit v1 not found" in broken.message


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_migration_0009_keeps_old_links_and_the_chain_continues_keyed(
    tmp_path: Path, kind: str
) -> None:
    """A database at 0004_audit with rows written by the old code, upgraded in place."""
    async with empty_database(kind, tmp_path / "old.sqlite3", "hotline_mig") as url:
        await migrate_to(url, "0004_audit")
        engine = create_engine(url)
        try:
            prev = "0" * 64
            for index in range(3):  # what the old AuditLog wrote: plain SHA-256 links
                at = START + timedelta(minutes=index)
                fields = {
                    "at": at.isoformat(timespec="microseconds"),
                    "user_id": "ivanova",
                    "role": "quality_auditor",
                    "action": "play",
                    "recording_id": str(index),
                    "source": "10.0.0.5",
                    "outcome": "ok",
                    "detail": "{}",
                }
                digest = entry_hash(prev, fields)
                async with engine.begin() as connection:
                    await connection.execute(
                        text(
                            "INSERT INTO recording_audit VALUES (:seq, :at, 'ivanova', "
                            "'quality_auditor', 'play', :rec, '10.0.0.5', 'ok', '{}', :prev, "
                            ":hash)"
                        ),
                        {
                            "seq": index + 1,
                            "at": at,
                            "rec": str(index),
                            "prev": prev,
                            "hash": digest,
                        },
                    )
                prev = digest
            await migrate_to(url, "heads")
            log = audit_log_for(engine, AuditSettings(keys_dir=tmp_path / "keys"))
            old = await log.entries()
            assert [entry.hash for entry in old][-1] == prev  # untouched by the migration
            assert {entry.scheme for entry in old} == {"sha256"}
            await ensure_audit_key(log)
            await fill_audit(log, 1, first=3)
            report = await log.verify()
            assert report.ok and report.entries == 5
            assert [e.scheme for e in await log.entries()][3:] == ["hmac-sha256"] * 2
        finally:
            await engine.dispose()


# --- bounded rows -------------------------------------------------------------------------


async def test_every_field_and_the_detail_are_capped(db: Db) -> None:
    huge = "7" * 7000
    entry = await db.log().record(
        Actor(huge, huge),
        huge,
        recording_id=huge,
        source=huge,
        outcome=huge,
        detail={"id": huge, "many": list(range(5000)), huge: {"a": {"b": {"c": {"d": huge}}}}},
    )
    for value in (entry.user_id, entry.role, entry.action, entry.recording_id, entry.source):
        assert value is not None and len(value) <= FIELD_CAP
        assert (
            "truncated 7000 chars sha256:" + hashlib.sha256(huge.encode()).hexdigest()[:16] in value
        )
    assert len(entry.detail) <= 1024
    assert (await db.log().verify()).ok


async def test_a_flood_of_unauthenticated_requests_with_7kb_ids_adds_bounded_bytes(
    db: Db, tmp_path: Path
) -> None:
    """1,000 requests with 7 KB ids once added 17 MB of undeletable rows."""
    log = db.log()
    master = MasterKeyStore(tmp_path / "master")
    master.generate("recorder")
    async with LocalStorage(tmp_path / "objects") as storage:
        access = RecordingAccess(
            RecordingStore(db.engine), storage, KeyRing(master, "recorder"), log
        )
        app = build_app(access, TokenBook.of({}))
        async with TestClient(TestServer(app)) as client:
            for index in range(1000):
                long_id = f"{index:04d}" + "x" * 7000
                response = await client.get(f"/recordings/{long_id}/audio")
                assert response.status == 401
    await log.flush_refusals(everything=True)  # what the audit watch does each minute

    rows = await db.rows()
    text_bytes = sum(
        len(str(row[name]).encode())
        for row in rows
        for name in ("user_id", "role", "action", "recording_id", "source", "outcome", "detail")
    )
    assert text_bytes < 8_000, f"{len(rows)} rows, {text_bytes} bytes"
    first_rows = [row for row in rows if row["action"] == "play"]
    summaries = [row for row in rows if row["action"] == "refusals_repeated"]
    counted = sum(json.loads(str(row["detail"]))["count"] for row in summaries)
    assert len(first_rows) + counted == 1000  # every refusal is accounted for
    assert all("truncated 7004 chars" in str(row["recording_id"]) for row in first_rows)
    assert (await log.verify()).ok


async def test_a_flood_from_many_addresses_shares_one_summary_beyond_the_cap(db: Db) -> None:
    log = db.log()
    for index in range(500):
        await log.refused(
            None,
            "play",
            recording_id="x",
            source=f"10.1.{index // 250}.{index % 250}",
            outcome="unauthenticated",
            at=START,
        )
    await log.flush_refusals(START, everything=True)
    rows = await db.rows()
    others = [row for row in rows if row["source"] == OTHER_SOURCES]
    assert len(rows) == 101  # one row for each of the first 100 addresses, one for the rest
    assert len(others) == 1
    assert '"count":400' in str(others[0]["detail"])
    assert '"distinct_sources":400' in str(others[0]["detail"])


async def test_refusals_from_synchronous_code_are_aggregated_too(db: Db) -> None:
    """What the access middleware's `on_refused` hook calls for each 401/403."""
    log = db.log()
    for _ in range(300):
        log.refused_soon(
            None,
            "GET /api/operators",
            source="203.0.113.9",
            outcome="401",
            detail={"path": "/api/operators/" + "9" * 7000},
        )
    await log.settle()
    await log.flush_refusals(everything=True)
    rows = await db.rows()
    assert [row["action"] for row in rows] == ["GET /api/operators", "refusals_repeated"]
    assert json.loads(str(rows[1]["detail"]))["count"] == 299
    assert len(str(rows[0]["detail"])) <= 1024


# --- anchors in an object-locked bucket ---------------------------------------------------


@pytest.fixture
async def anchors(seaweed: Seaweed) -> AsyncIterator[AnchorBucket]:
    if seaweed.process is None:  # a recorder fault test may have left it stopped
        seaweed.start()
    bucket = AnchorBucket(
        bucket=f"anchors-{hashlib.sha256(str(id(seaweed)).encode()).hexdigest()[:6]}-"
        f"{datetime.now(UTC).strftime('%H%M%S%f')}",
        endpoint=seaweed.endpoint,
        access_key="test",
        secret_key="test",
        retention=timedelta(days=1),
    )
    async with bucket:
        await bucket.create()
        yield bucket


async def test_seaweedfs_refuses_to_delete_or_rewrite_a_locked_anchor(
    anchors: AnchorBucket,
) -> None:
    anchor = Anchor(7, "ab" * 32, "hmac-sha256", datetime.now(UTC))
    version = await anchors.put(anchor)
    client = anchors._client
    key = anchors.prefix + anchor.object_key
    retention = await client.get_object_retention(Bucket=anchors.bucket, Key=key, VersionId=version)
    assert retention["Retention"]["Mode"] == "COMPLIANCE"

    soon = datetime.now(UTC) + timedelta(hours=1)  # shorter than the day it is locked for
    refused = []
    for attempt in (
        lambda: client.delete_object(Bucket=anchors.bucket, Key=key, VersionId=version),
        lambda: client.delete_object(
            Bucket=anchors.bucket, Key=key, VersionId=version, BypassGovernanceRetention=True
        ),
        lambda: client.put_object_retention(
            Bucket=anchors.bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon},
        ),
        lambda: client.put_object_retention(
            Bucket=anchors.bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon},
            BypassGovernanceRetention=True,
        ),
    ):
        with pytest.raises(ClientError) as refusal:
            await attempt()
        refused.append(refusal.value.response["Error"]["Code"])
    assert refused == ["AccessDenied"] * 4

    # Writing over the name or deleting it only adds versions: the locked one is still read.
    await client.put_object(Bucket=anchors.bucket, Key=key, Body=b'{"format":"forged"}')
    await client.delete_object(Bucket=anchors.bucket, Key=key)
    assert await anchors.latest(10) == [anchor]
    locked = await client.get_object(Bucket=anchors.bucket, Key=key, VersionId=version)
    async with locked["Body"] as body:
        assert Anchor.from_json(await body.read()) == anchor


async def test_a_bucket_without_object_lock_is_refused(seaweed: Seaweed) -> None:
    async with seaweed.bucket() as plain:
        bucket = AnchorBucket(
            bucket=plain.bucket, endpoint=seaweed.endpoint, access_key="t", secret_key="t"
        )
        async with bucket:
            with pytest.raises(AnchorError, match="object lock"):
                await bucket.check_lock()


async def test_a_watch_on_a_bucket_without_lock_keeps_going_and_raises_the_stale_alert(
    db: Db, seaweed: Seaweed, caplog: pytest.LogCaptureFixture
) -> None:
    log = db.log()
    await ensure_audit_key(log)
    async with seaweed.bucket() as plain:
        bucket = AnchorBucket(
            bucket=plain.bucket, endpoint=seaweed.endpoint, access_key="t", secret_key="t"
        )
        watch = AuditWatch(log, db.settings().audit, bucket)
        await watch.start()  # no exception: calls must not stop for a misconfigured bucket
        try:
            assert "has no object lock" in caplog.text
            with pytest.raises(AnchorError):
                await watch.export_once()
            assert (await watch.verify_once()).ok
            assert AUDIT_ANCHOR_AGE._value.get() == float("inf")
        finally:
            await watch.close()


async def test_deleting_the_tail_is_caught_by_the_exported_anchors(
    db: Db,
    anchors: AnchorBucket,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = db.log()
    await ensure_audit_key(log)
    await fill_audit(log, 5)
    watch = AuditWatch(log, db.settings().audit, anchors)
    exported = await watch.export_once()  # what the controller does every few minutes
    assert exported is not None and exported.seq == 6
    assert (await watch.verify_once()).ok
    assert AUDIT_CHAIN_OK._value.get() == 1

    await db.tamper("DELETE FROM recording_audit WHERE seq >= 5")  # the chain itself still holds

    assert (await db.log().verify()).ok  # without anchors nothing shows
    report = await watch.verify_once()
    assert report.broken is not None and report.broken.kind == "deleted"
    assert "anchor says entry #6 existed" in report.broken.message
    assert AUDIT_CHAIN_OK._value.get() == 0
    monkeypatch.setenv("HOTLINE_ANCHOR_S3_ACCESS_KEY", "verifier")
    monkeypatch.setenv("HOTLINE_ANCHOR_S3_SECRET_KEY", "verifier")
    seaweed_settings = {
        "anchor_bucket": anchors.bucket,
        "anchor_endpoint": anchors._endpoint,
    }
    assert await _verify_cli(db, **seaweed_settings) == 1
    assert "entries at the end were deleted" in capsys.readouterr().err


async def test_the_running_controller_keys_the_chain_and_exports_anchors_by_itself(
    tmp_path: Path, anchors: AnchorBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controllers import WITHOUT_RECORDER, controller_settings, started

    monkeypatch.setenv("HOTLINE_ANCHOR_S3_ACCESS_KEY", "exporter")
    monkeypatch.setenv("HOTLINE_ANCHOR_S3_SECRET_KEY", "exporter")
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_AUDIT_KEYS_DIR": str(tmp_path / "keys"),
            "HOTLINE_AUDIT_ANCHOR_BUCKET": anchors.bucket,
            "HOTLINE_AUDIT_ANCHOR_ENDPOINT": str(anchors._endpoint),
            "HOTLINE_AUDIT_ANCHOR_INTERVAL_MINUTES": "0.002",  # every 0.12 s, for the test
        },
    )
    async with started(settings) as node:
        assert node.audit is not None
        found: list[Anchor] = []
        for _ in range(500):  # until the periodic export has run (no timing asserted)
            found = await anchors.latest(1)
            if found:
                break
            await asyncio.sleep(0.05)
        seq, digest = await node.audit.head()
    assert oct((tmp_path / "keys" / "audit.v1.key").stat().st_mode & 0o777) == "0o600"
    assert found and (found[0].seq, found[0].hash) == (seq, digest)
    assert found[0].scheme == "hmac-sha256"  # the first entry: the key's creation, signed


async def test_the_anchor_command_exports_the_head_and_needs_a_bucket(
    db: Db,
    anchors: AnchorBucket,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from controller.audit_cli import cmd_audit_anchor

    await ensure_audit_key(db.log())
    await fill_audit(db.log(), 2)
    args = argparse.Namespace(create_bucket=True)
    assert await cmd_audit_anchor(args, db.settings()) == 2
    assert "set [audit] anchor_bucket first" in capsys.readouterr().err

    monkeypatch.setenv("HOTLINE_ANCHOR_S3_ACCESS_KEY", "admin")
    monkeypatch.setenv("HOTLINE_ANCHOR_S3_SECRET_KEY", "admin")
    settings = db.settings(anchor_bucket=anchors.bucket, anchor_endpoint=anchors._endpoint)
    assert await cmd_audit_anchor(args, settings) == 0  # the bucket exists already: kept
    seq, digest = await db.log().head()
    assert f"anchored #{seq} {digest}" in capsys.readouterr().out
    assert [(a.seq, a.hash) for a in await anchors.latest(5)] == [(seq, digest)]
    assert (
        await _verify_cli(db, anchor_bucket=anchors.bucket, anchor_endpoint=anchors._endpoint) == 0
    )
    assert "1 exported anchors match" in capsys.readouterr().out


async def test_key_ages_become_the_expiry_gauge(db: Db, tmp_path: Path) -> None:
    from hotline.audit_watch import WatchedKey
    from hotline.security import KEY_EXPIRY

    store = MasterKeyStore(db.keys_dir)
    old = store.write("recorder", 1, bytes(32))
    year_ago = (datetime.now(UTC) - timedelta(days=400)).timestamp()
    os.utime(old, (year_ago, year_ago))
    store.generate("audit")
    watched = [
        WatchedKey("audit", store, "audit"),
        WatchedKey("recorder_master", store, "recorder"),
        WatchedKey("missing", MasterKeyStore(tmp_path / "nowhere"), "audit"),
    ]
    watch = AuditWatch(db.log(), AuditSettings(key_max_age_days=365), None, watched)
    await watch.export_once()

    def gauge(kind: str) -> float:
        return float(KEY_EXPIRY.labels(kind=kind)._value.get())

    assert 364 * 86400 < gauge("audit") <= 365 * 86400  # fresh: about a year left
    assert gauge("recorder_master") < 0  # overdue for rotation
    assert gauge("missing") == 0  # no key at all counts as expired
