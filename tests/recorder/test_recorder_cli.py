"""`hotline recorder keygen | rewrap | run --once`, through their argparse wiring."""

from __future__ import annotations

import argparse
import io
import shutil
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from databases import migrated_engine

from controller.settings import Settings
from hotline.settings import StoreSettings
from hotline.store.db import create_engine
from recorder.cli import add_commands
from recorder.keys import KeyRing, MasterKeyStore, decrypt_stream, wrapped_key_of
from recorder.models import RecordingStore, State
from recorder.settings import AccessSettings, RecorderSettings

ROOT = Path(__file__).resolve().parents[2]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hotline")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _settings(tmp_path: Path, db_url: str) -> Any:
    recorder = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", keys_dir=tmp_path / "keys",
        local_dir=tmp_path / "store", spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    # the retention terms the worker applies: the shipped file, found from any directory
    access = AccessSettings(retention_file=ROOT / "dialplans" / "retention.yaml")
    return Settings(recorder=recorder, recorder_access=access, store=StoreSettings(db_url))


async def _run(argv: list[str], settings: Any) -> int:
    args = _parse(argv)
    return int(await args.run(args, settings))


async def test_run_without_a_master_key_refuses_to_start(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["recorder", "run", "--once"], _settings(tmp_path, sqlite_url)) == 2
    assert "hotline recorder keygen" in capsys.readouterr().err


async def test_keygen_run_rotate_and_rewrap(
    tmp_path: Path, db_url: str, sample_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, db_url)
    assert await _run(["recorder", "keygen"], settings) == 0
    assert "recorder v1" in capsys.readouterr().out
    key_file = tmp_path / "keys" / "recorder.v1.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    (tmp_path / "spool").mkdir()
    shutil.copy(sample_wav, tmp_path / "spool" / "1795563226.1.wav")
    settings = replace(settings, recorder=replace(settings.recorder, idle_seconds=0.001))
    assert await _run(["recorder", "run", "--once"], settings) == 0

    engine = create_engine(db_url)
    try:
        store = RecordingStore(engine)
        row = await store.get("1795563226.1")
        assert row is not None and row.state == State.VERIFIED and row.key_version == 1
        assert await _run(["recorder", "keygen"], settings) == 0
        assert "rewrap" in capsys.readouterr().out
        assert await _run(["recorder", "rewrap"], settings) == 0
        assert "1 data keys re-wrapped, 0" in capsys.readouterr().out
        moved = await store.get("1795563226.1")
        assert moved is not None and moved.key_version == 2
        key_file.unlink()  # v1 retired: the recording must still open with v2 alone
        ring = KeyRing(MasterKeyStore(tmp_path / "keys"), "recorder")
        blob = (tmp_path / "store" / str(moved.storage_key)).read_bytes()
        plain = io.BytesIO()
        decrypt_stream(ring.unwrap(moved.call_id, wrapped_key_of(moved)), io.BytesIO(blob), plain)
        assert plain.getvalue().startswith(b"OggS")
        assert await _run(["recorder", "rewrap"], settings) == 0
        assert "0 data keys re-wrapped, 0" in capsys.readouterr().out
    finally:
        await engine.dispose()


async def test_rewrap_reports_keys_whose_master_key_is_gone(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, sqlite_url)
    assert await _run(["recorder", "keygen"], settings) == 0
    async with migrated_engine(sqlite_url) as engine:
        store = RecordingStore(engine)
        ring = KeyRing(MasterKeyStore(tmp_path / "keys"), "recorder")
        _, wrapped = ring.new_data_key("c-1")
        await store.register("c-1", format="opus", started_at=datetime(2026, 1, 1, tzinfo=UTC))
        await store.update("c-1", key_id="recorder", key_version=1, wrapped_key=wrapped.wrapped)
        assert await _run(["recorder", "keygen"], settings) == 0
        (tmp_path / "keys" / "recorder.v1.key").unlink()
        assert await _run(["recorder", "rewrap"], settings) == 1
        assert "0 data keys re-wrapped, 1 could not" in capsys.readouterr().out
        row = await store.get("c-1")
        assert row is not None and row.wrapped_key == wrapped.wrapped  # left untouched


async def test_the_worker_keeps_recordings_for_the_retention_file_s_term(
    tmp_path: Path, sqlite_url: str, sample_wav: Path
) -> None:
    """The worker and the purge job read one policy: dialplans/retention.yaml (here a copy
    with another default), not the settings' fallback of 365 days."""
    from recorder.settings import AccessSettings

    settings = _settings(tmp_path, sqlite_url)
    settings = replace(settings, recorder=replace(settings.recorder, idle_seconds=0.001))
    retention_file = tmp_path / "retention.yaml"
    retention_file.write_text("default_days: 42\ncategories:\n  complaint: 1095\n")
    settings = replace(settings, recorder_access=AccessSettings(retention_file=retention_file))
    assert await _run(["recorder", "keygen"], settings) == 0
    (tmp_path / "spool").mkdir()
    shutil.copy(sample_wav, tmp_path / "spool" / "1795563226.1.wav")
    assert await _run(["recorder", "run", "--once"], settings) == 0
    engine = create_engine(sqlite_url)
    try:
        row = await RecordingStore(engine).get("1795563226.1")
        assert row is not None and row.retention_until is not None
        counted_from = row.ended_at or row.started_at
        assert (row.retention_until - counted_from).days == 42
    finally:
        await engine.dispose()


async def test_the_worker_refuses_a_broken_retention_file(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from recorder.settings import AccessSettings

    settings = _settings(tmp_path, sqlite_url)
    broken = tmp_path / "retention.yaml"
    broken.write_text("default_days: 30\ncategories:\n  complaint: три года\n")
    settings = replace(settings, recorder_access=AccessSettings(retention_file=broken))
    assert await _run(["recorder", "run", "--once"], settings) == 2
    assert f"{broken}:3:" in capsys.readouterr().err
