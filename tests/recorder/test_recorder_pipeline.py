"""The pipeline in process, with local storage: what ends up stored, in the database and in the
spool, including bad input and recovery from every intermediate state."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from databases import migrated_engine

from hotline.store.db import CallLog
from recorder.keys import KeyRing, decrypt_stream, wrapped_key_of
from recorder.models import RecordedCall, RecordingStore, State
from recorder.pipeline import CallInfo, Recorder
from recorder.settings import RecorderSettings
from recorder.spool import mixmonitor_args
from recorder.storage import LocalStorage

STARTED = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ENDED = STARTED + timedelta(minutes=3)


def _settings(tmp_path: Path, **overrides: object) -> RecorderSettings:
    base = RecorderSettings(
        spool_dir=tmp_path / "spool",
        work_dir=tmp_path / "work",
        keys_dir=tmp_path / "keys",
        local_dir=tmp_path / "store",
        idle_seconds=30,
        settle_seconds=0.01,
        retry_initial=0.01,
        retry_max=0.05,
        spool_alarm_free_bytes=0,
        spool_alarm_free_percent=0,
        retention_days={"complaint": 1825},
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    async with LocalStorage(tmp_path / "store") as local:
        yield local


def _recorder(
    tmp_path: Path, store: RecordingStore, storage: LocalStorage, ring: KeyRing, **overrides: object
) -> Recorder:
    recorder = Recorder(_settings(tmp_path, **overrides), store, storage, ring)
    recorder.prepare_directories()
    return recorder


async def _decrypt(storage: LocalStorage, ring: KeyRing, row: RecordedCall) -> bytes:
    assert row.storage_key is not None
    blob = b"".join([chunk async for chunk in storage.read(row.storage_key)])
    sink = io.BytesIO()
    decrypt_stream(ring.unwrap(row.call_id, wrapped_key_of(row)), io.BytesIO(blob), sink)
    return sink.getvalue()


def _probe(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate:format=duration",
         "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    parsed = json.loads(out.stdout)
    return {**parsed["streams"][0], **parsed["format"]}


async def test_finished_call_ends_encrypted_and_verified_in_storage(
    tmp_path: Path,
    recording_store: RecordingStore,
    storage: LocalStorage,
    key_ring: KeyRing,
    sample_wav: Path,
) -> None:
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    call_id = "1795563226.1"
    spooled = Path(mixmonitor_args(call_id, recorder.spool_dir)[0])
    assert spooled == (tmp_path / "spool" / f"{call_id}.wav").resolve()
    shutil.copy(sample_wav, spooled)

    info = CallInfo("88001234567", "agent-7", STARTED, ENDED, "complaint")
    await recorder.finished(call_id, info)
    await recorder.run_until_idle()

    row = await recording_store.get(call_id)
    assert row is not None and row.state == State.VERIFIED
    assert (row.dialled_number, row.operator, row.format) == ("88001234567", "agent-7", "opus")
    assert row.duration_seconds == pytest.approx(0.42)
    assert row.retention_until == ENDED + timedelta(days=1825)
    assert row.storage_key == f"recordings/2026/11/27/{call_id}.ogg.enc"
    assert await storage.list_keys() == [row.storage_key]
    stored = (tmp_path / "store" / row.storage_key).read_bytes()
    assert b"OggS" not in stored and b"Opus" not in stored  # no plaintext reached storage
    assert len(stored) == row.cipher_size
    audio = await _decrypt(storage, key_ring, row)
    assert audio.startswith(b"OggS") and len(audio) == row.plain_size
    probe = _probe(audio, tmp_path)
    assert probe["codec_name"] == "opus"
    assert float(str(probe["duration"])) == pytest.approx(0.42, abs=0.05)
    assert os.listdir(spooled.parent) == []
    assert list((tmp_path / "work").iterdir()) == []


async def test_idle_file_without_notification_uses_the_call_log(
    tmp_path: Path, sqlite_url: str, storage: LocalStorage, key_ring: KeyRing,
    speech: Callable[[Path, str], Path],
) -> None:  # fmt: skip
    async with migrated_engine(sqlite_url) as engine:
        await CallLog(engine).call_started(
            "1795563300.5", channel="PJSIP/trunk-1", dialled_number="88005553535",
            caller_id="79990001122", script="agi://x/main", node="n1", started_at=STARTED,
        )  # fmt: skip
        store = RecordingStore(engine)
        recorder = _recorder(tmp_path, store, storage, key_ring, format="mp3")
        old = speech(recorder.spool_dir / "1795563300.5.wav", "Здравствуйте, горячая линия.")
        fresh = shutil.copy(old, recorder.spool_dir / "1795563301.6.wav")
        os.utime(old, (time.time() - 60, time.time() - 60))

        await recorder.run_until_idle()

        row = await store.get("1795563300.5")
        assert row is not None and row.state == State.VERIFIED
        assert (row.dialled_number, row.started_at, row.format) == ("88005553535", STARTED, "mp3")
        assert _probe(await _decrypt(storage, key_ring, row), tmp_path)["codec_name"] == "mp3"
        assert await store.get("1795563301.6") is None  # still being written: untouched
        assert os.listdir(recorder.spool_dir) == [Path(fresh).name]


async def test_unreadable_audio_is_kept_as_it_was(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing
) -> None:
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    garbage = os.urandom(5000)
    (recorder.spool_dir / "c-1.wav").write_bytes(garbage)
    (recorder.spool_dir / "bad name;rm.wav").write_bytes(b"x")
    secret = tmp_path / "not-a-recording.txt"
    secret.write_text("someone else's file")
    (recorder.spool_dir / "c-9.wav").symlink_to(secret)
    await recorder.finished("c-1", CallInfo(started_at=STARTED))
    await recorder.finished("c-9", CallInfo(started_at=STARTED))
    await recorder.run_until_idle()

    row = await recording_store.get("c-1")
    assert row is not None and row.state == State.VERIFIED and row.format == "original"
    assert await _decrypt(storage, key_ring, row) == garbage
    assert await recording_store.get("c-9") is None  # a symlink is never followed
    assert sorted(os.listdir(recorder.spool_dir)) == ["bad name;rm.wav", "c-9.wav"]


@pytest.mark.parametrize("stop_after", [State.SPOOLED, State.TRANSCODED, State.ENCRYPTED,
                                        State.STORED])  # fmt: skip
async def test_restart_after_any_step_finishes_once(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path], stop_after: State,
) -> None:  # fmt: skip
    first = _recorder(tmp_path, recording_store, storage, key_ring)
    tone(first.spool_dir / "c-2.wav", 3.0)
    await first.finished("c-2", CallInfo(started_at=STARTED))
    row = await recording_store.get("c-2")
    assert row is not None
    for state in (State.SPOOLED, State.TRANSCODED, State.ENCRYPTED, State.STORED):
        await first._steps[state](row)  # one step, as a worker killed right after it would
        row = await recording_store.get("c-2")
        assert row is not None
        if state == stop_after:
            break
    if stop_after is State.ENCRYPTED:  # killed mid-upload: a partial object is left behind
        (tmp_path / "store" / str(row.storage_key)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "store" / str(row.storage_key)).write_bytes(b"partial")

    restarted = _recorder(tmp_path, recording_store, storage, key_ring)
    await restarted.run_until_idle()

    row = await recording_store.get("c-2")
    assert row is not None and row.state == State.VERIFIED
    assert await storage.list_keys() == [row.storage_key]
    assert _probe(await _decrypt(storage, key_ring, row), tmp_path)["codec_name"] == "opus"
    assert not (restarted.spool_dir / "c-2.wav").exists()


async def test_lost_work_files_and_a_corrupted_object_are_redone(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    tone(recorder.spool_dir / "c-3.wav", 2.0)
    await recorder.finished("c-3", CallInfo(started_at=STARTED))
    row = await recording_store.get("c-3")
    assert row is not None
    for state in (State.SPOOLED, State.TRANSCODED):
        await recorder._steps[state](row)
        row = await recording_store.get("c-3")
        assert row is not None
    for leftover in (tmp_path / "work").iterdir():  # work dir wiped while ENCRYPTED
        leftover.unlink()
    await recorder.run_until_idle()
    row = await recording_store.get("c-3")
    assert row is not None and row.state == State.VERIFIED

    # an object damaged between upload and verification is found and sent again
    tone(recorder.spool_dir / "c-4.wav", 2.0)
    await recorder.finished("c-4", CallInfo(started_at=STARTED))
    for _ in range(3):  # transcode, encrypt, upload
        row = await recording_store.get("c-4")
        assert row is not None
        await recorder._steps[State(row.state)](row)
    row = await recording_store.get("c-4")
    assert row is not None and row.state == State.STORED
    path = tmp_path / "store" / str(row.storage_key)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    path.write_bytes(bytes(damaged))
    await recorder.process("c-4")
    row = await recording_store.get("c-4")
    assert row is not None and row.state == State.VERIFIED
    assert _probe(await _decrypt(storage, key_ring, row), tmp_path)["codec_name"] == "opus"
