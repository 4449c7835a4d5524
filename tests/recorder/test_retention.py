"""Retention: terms per category, legal holds, and a purge that makes recordings undecryptable.

Runs on SQLite and the real PostgreSQL with encrypted objects in local storage. A crash halfway
through a purge is simulated with a storage that fails its delete.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stored_recordings import store_encrypted
from yamlfiles import assert_refused_at_line

from controller.settings import Settings
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.settings import StoreSettings
from recorder import keys
from recorder.models import RecordedCall, RecordingStore, State
from recorder.permissions import AccessDenied, Action
from recorder.playback import RecordingAccess
from recorder.recordings_cli import cmd_hold, cmd_purge
from recorder.retention import (
    Purger,
    RetentionPolicy,
    set_hold,
)
from recorder.settings import RecorderSettings
from recorder.storage import LocalStorage, StorageUnavailable

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(365, {"consultation": 180, "complaint": 1095})
SECURITY = Actor("sidorova", "security_officer")
REPO_RETENTION_FILE = Path(__file__).resolve().parents[2] / "dialplans" / "retention.yaml"


async def store_recording(
    store: RecordingStore,
    storage: LocalStorage,
    key_ring: keys.KeyRing,
    call_id: str,
    *,
    started_at: datetime,
    category: str = "default",
    retention_until: datetime | None = None,
    audio: bytes = b"OggS fake opus payload " * 100,
) -> RecordedCall:
    """What the pipeline leaves behind: an encrypted object and a verified row."""
    await store.register(
        call_id, format="opus", started_at=started_at, operator="op-1", retention_category=category
    )
    return await store_encrypted(
        store,
        storage,
        key_ring,
        call_id,
        audio,
        chunk_size=256,
        state=State.VERIFIED.value,
        retention_until=retention_until,
    )


class FlakyStorage(LocalStorage):
    """Local storage whose deletes fail while `down` is set: the process 'dies' mid-purge."""

    down = True
    outages = 0  # deletes that fail (one each) before it comes back, whatever `down` says

    async def delete(self, key: str) -> None:
        if self.down or self.outages:
            self.outages = max(self.outages - 1, 0)
            raise StorageUnavailable("simulated: storage unreachable during purge")
        await super().delete(key)


@dataclass
class World:
    store: RecordingStore
    storage: FlakyStorage
    key_ring: keys.KeyRing
    audit: AuditLog

    def purger(self, policy: RetentionPolicy = POLICY) -> Purger:
        return Purger(self.store.engine, self.storage, self.audit, policy)

    async def add(self, call_id: str, age_days: float, **extra: object) -> RecordedCall:
        return await store_recording(
            self.store,
            self.storage,
            self.key_ring,
            call_id,
            started_at=NOW - timedelta(days=age_days),
            **extra,  # type: ignore[arg-type]
        )

    def object_path(self, call_id: str) -> Path:
        return self.storage.root / "recordings" / f"{call_id}.enc"


@pytest.fixture
async def world(
    recording_store: RecordingStore, key_ring: keys.KeyRing, tmp_path: Path
) -> AsyncIterator[World]:
    storage = FlakyStorage(tmp_path / "var" / "recorder" / "store")
    storage.down = False
    async with storage:
        yield World(recording_store, storage, key_ring, AuditLog(recording_store.engine))


# --- policy file --------------------------------------------------------------------------


def test_the_shipped_retention_file_is_valid() -> None:
    policy = RetentionPolicy.load(REPO_RETENTION_FILE)
    assert policy.default_days == 365
    assert policy.days_for("complaint") == 1095 and policy.days_for("unheard-of") == 365


def test_without_a_file_the_settings_terms_apply(tmp_path: Path) -> None:
    settings = RecorderSettings(retention_default_days=30, retention_days={"x": 7})
    policy = RetentionPolicy.load(tmp_path / "absent.yaml", settings)
    assert (policy.days_for("x"), policy.days_for("y")) == (7, 30)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("default_days: 0\n", 1, "whole number of days"),
        ("default_days: 30\ncategories:\n  complaint: три года\n", 3, "categories.complaint"),
        ("default_days: 30\ncategories:\n  a: 1\n  a: 2\n", 4, "given twice"),
        ("default_days: 30\ncategories:\n  Жалобы: 10\n", 3, "lower-case latin"),
        ("default_days: 30\ncategory:\n  a: 1\n", 2, "unknown key `category`"),
        ("categories: {}\n", 1, "`default_days` is missing"),
        ("default_days: 30\ncategories: [a]\n", 2, "must map names to days"),
        ("default_days: [30\n", 2, "not valid YAML"),
        ("- 30\n", 1, "expected `default_days:`"),
    ],
)
def test_retention_file_mistakes_point_at_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    assert_refused_at_line(RetentionPolicy.load, tmp_path / "retention.yaml", text, line, says)


# --- purge --------------------------------------------------------------------------------


async def test_only_recordings_past_their_category_term_are_due(world: World) -> None:
    await world.add("old-consultation", 181, category="consultation")
    await world.add("young-consultation", 179, category="consultation")
    await world.add("old-complaint", 400, category="complaint")  # complaints keep 3 years
    await world.add("old-default", 366)
    await world.add("explicit-date", 1, retention_until=NOW - timedelta(seconds=1))
    await world.add("explicit-later", 999, retention_until=NOW + timedelta(days=1))

    due = [row.call_id for row in await world.purger().due(NOW)]

    assert sorted(due) == ["explicit-date", "old-consultation", "old-default"]


async def test_the_term_counts_from_the_end_of_the_call(world: World) -> None:
    started = NOW - timedelta(days=180, hours=12)
    await world.add("long-call", 180.5, category="consultation")
    await world.store.update("long-call", ended_at=started + timedelta(days=1))

    assert await world.purger().due(NOW) == []
    assert [r.call_id for r in await world.purger().due(NOW + timedelta(days=1))] == ["long-call"]


async def test_purge_deletes_object_destroys_key_marks_row_and_audits(world: World) -> None:
    kept = await world.add("1732701600.5", 400)
    ciphertext_copy = world.object_path("1732701600.5").read_bytes()  # e.g. a storage backup
    # Control: while the key exists, the copy opens (so the failures below are the purge's).
    data_key = world.key_ring.unwrap("1732701600.5", keys.wrapped_key_of(kept))
    keys.decrypt_stream(data_key, io.BytesIO(ciphertext_copy), io.BytesIO())

    report = await world.purger().run(NOW)

    assert report.purged == ["1732701600.5"] and not report.failed and not report.held
    assert not world.object_path("1732701600.5").exists()
    row = await world.store.get("1732701600.5")
    assert row is not None
    assert row.state == State.PURGED and row.purged_at is not None
    assert row.wrapped_key is None and row.key_destroyed_at is not None
    entry = (await world.audit.entries(recording_id="1732701600.5"))[-1]
    assert (entry.user_id, entry.role, entry.action, entry.outcome) == (
        "retention",
        "system",
        "purge",
        "ok",
    )
    assert entry.detail_data["resumed"] is False
    # The copy is now noise: the row's key is gone, and no data key left in the database
    # opens it (every keyed row is tried, another recording kept alongside among them).
    with pytest.raises(keys.KeyError_):
        keys.wrapped_key_of(row)
    await world.add("still-kept", 1)
    keyed = [r for r in await world.store.in_states(list(State)) if r.wrapped_key is not None]
    assert [r.call_id for r in keyed] == ["still-kept"]
    for other in keyed:
        other_key = world.key_ring.unwrap(other.call_id, keys.wrapped_key_of(other))
        with pytest.raises(keys.IntegrityError):
            keys.decrypt_stream(other_key, io.BytesIO(ciphertext_copy), io.BytesIO())


async def test_purged_recording_is_refused_with_410(world: World) -> None:
    await world.add("gone.1", 400)
    await world.purger().run(NOW)
    access = RecordingAccess(world.store, world.storage, world.key_ring, world.audit)

    with pytest.raises(AccessDenied) as denial:
        await access.authorize(
            Actor("ivanova", "quality_auditor"), Action.PLAY, recording_id="gone.1", source="ws"
        )

    assert denial.value.status == 410 and "удалена" in denial.value.message
    assert (await world.audit.entries())[-1].outcome == "purged"


async def test_purge_is_idempotent(world: World) -> None:
    await world.add("twice.1", 400)
    first = await world.purger().run(NOW)
    second = await world.purger().run(NOW)

    assert first.purged == ["twice.1"] and second.purged == []
    purges = [e for e in await world.audit.entries() if e.action == "purge"]
    assert len(purges) == 1


async def test_purge_interrupted_after_the_key_is_destroyed_resumes(world: World) -> None:
    await world.add("crash.1", 400)
    world.storage.down = True

    interrupted = await world.purger().run(NOW)

    assert "crash.1" in interrupted.failed and interrupted.purged == []
    row = await world.store.get("crash.1")
    assert row is not None and row.wrapped_key is None  # shredded already: safe to stop here
    assert row.state == State.VERIFIED and world.object_path("crash.1").exists()
    # Even a hold placed now cannot save audio whose key is gone; the next run finishes.
    assert (await set_hold(world.store.engine, world.audit, SECURITY, "crash.1", hold=True,
                           reason="late", source="t")).outcome == "purged"  # fmt: skip
    world.storage.down = False
    resumed = await world.purger().run(NOW)

    assert resumed.purged == ["crash.1"]
    assert not world.object_path("crash.1").exists()
    row = await world.store.get("crash.1")
    assert row is not None and row.state == State.PURGED
    entry = [e for e in await world.audit.entries() if e.action == "purge"][-1]
    assert entry.detail_data["resumed"] is True
    assert (await world.audit.verify()).ok


async def test_legal_hold_blocks_the_purge_until_released(world: World) -> None:
    await world.add("case.77", 400)
    held = await set_hold(
        world.store.engine, world.audit, SECURITY, "case.77", hold=True, reason="дело 2-77/2026",
        source="10.0.0.9",
    )  # fmt: skip
    assert held.outcome == "ok"

    report = await world.purger().run(NOW)

    assert report.held == ["case.77"] and report.purged == []
    assert world.object_path("case.77").exists()
    row = await world.store.get("case.77")
    assert row is not None and row.legal_hold and row.wrapped_key is not None

    await set_hold(world.store.engine, world.audit, SECURITY, "case.77", hold=False,
                   reason="дело закрыто", source="10.0.0.9")  # fmt: skip
    assert (await world.purger().run(NOW)).purged == ["case.77"]
    actions = [(e.action, e.outcome) for e in await world.audit.entries(recording_id="case.77")]
    assert actions == [("hold", "ok"), ("release", "ok"), ("purge", "ok")]
    assert (await world.audit.entries(recording_id="case.77"))[0].detail_data == {
        "reason": "дело 2-77/2026"
    }


async def test_hold_placed_after_listing_still_wins(world: World) -> None:
    await world.add("race.1", 400)
    purger = world.purger()
    [row] = await purger.due(NOW)
    await set_hold(world.store.engine, world.audit, SECURITY, "race.1", hold=True, reason="r",
                   source="t")  # fmt: skip

    assert await purger.purge_one(row) == "held"
    assert world.object_path("race.1").exists()


async def test_hold_is_refused_to_other_roles_and_audited(world: World) -> None:
    await world.add("x.1", 1)
    for role in ("quality_auditor", "operator", ""):
        result = await set_hold(world.store.engine, world.audit, Actor("u", role), "x.1",
                                hold=True, reason="r", source="t")  # fmt: skip
        assert result.outcome == "refused"
    row = await world.store.get("x.1")
    assert row is not None and not row.legal_hold
    assert [e.outcome for e in await world.audit.entries()] == ["refused"] * 3


async def test_hold_on_unknown_recording_is_not_found(world: World) -> None:
    result = await set_hold(world.store.engine, world.audit, SECURITY, "nope", hold=True,
                            reason="r", source="t")  # fmt: skip
    assert result.outcome == "not_found" and "не найдена" in result.message


def test_only_the_system_role_may_run_the_purger(world: World) -> None:
    with pytest.raises(PermissionError):
        Purger(world.store.engine, world.storage, world.audit, POLICY, actor=SECURITY)


# --- the commands ------------------------------------------------------------------------


async def test_purge_hold_and_release_commands(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The commands use the default [recorder] settings: storage under ./var/recorder/store,
    # and no dialplans/retention.yaml here, so 365 days for everything.
    monkeypatch.chdir(world.storage.root.parent.parent.parent)
    await world.add("cli.old", 400)
    await world.add("cli.held", 400)
    await world.add("cli.new", 10)
    settings = dataclasses.replace(
        Settings(), store=StoreSettings(database_url=world.store.engine.url.render_as_string(False))
    )

    hold = argparse.Namespace(recording_id="cli.held", hold=True, reason="запрос суда")
    assert await cmd_hold(hold, settings) == 0
    assert "установлен" in capsys.readouterr().out
    assert await cmd_purge(argparse.Namespace(dry_run=True, limit=100), settings) == 0
    assert capsys.readouterr().out.splitlines() == [
        "cli.old\tdefault\tdue",
        "cli.held\tdefault\tlegal hold",
    ]
    assert await cmd_purge(argparse.Namespace(dry_run=False, limit=100), settings) == 0
    assert "purged 1, kept under legal hold 1" in capsys.readouterr().out
    assert not world.object_path("cli.old").exists() and world.object_path("cli.held").exists()
    missing = argparse.Namespace(recording_id="cli.none", hold=False, reason="r")
    assert await cmd_hold(missing, settings) == 1
    entry = (await world.audit.entries(recording_id="cli.held"))[0]
    assert entry.user_id.startswith("cli:") and entry.role == "system"


async def test_purge_command_reports_a_broken_retention_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dialplans").mkdir()
    (tmp_path / "dialplans" / "retention.yaml").write_text("default_days: forever\n")
    settings = dataclasses.replace(
        Settings(), store=StoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    )
    assert await cmd_purge(argparse.Namespace(dry_run=False, limit=10), settings) == 2
    assert "dialplans/retention.yaml:1:" in capsys.readouterr().err


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(10):
        # polling on purpose: database state, with no event to wait on
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_periodic_purge_survives_a_failing_run_and_stops_when_told(world: World) -> None:
    await world.add("loop.1", 400)
    world.storage.outages = 2  # the first two runs fail after shredding the key
    stop = asyncio.Event()
    loop = asyncio.create_task(world.purger().run_periodically(stop, interval=0.01))

    async def purged() -> bool:
        row = await world.store.get("loop.1")
        return row is not None and row.state == State.PURGED

    try:
        await _until(purged)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
    assert not world.object_path("loop.1").exists() and world.storage.outages == 0
