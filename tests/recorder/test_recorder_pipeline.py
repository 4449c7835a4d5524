"""The pipeline in process, with local storage: what ends up stored, in the database and in the
spool, including bad input and recovery from every intermediate state."""

from __future__ import annotations

import asyncio
import hashlib
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
from recorder.audio import encode_file
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


class Killed(Exception):
    """The worker dies here (the step's database update never commits)."""


class KilledBeforeCommit(RecordingStore):
    """A store whose worker is killed just before a step's row update commits."""

    async def advance(self, call_id: str, expected: State, new: State, **values: object) -> None:
        raise Killed(f"killed before {expected.value} -> {new.value} committed")


async def _one_step(recorder: Recorder, store: RecordingStore, call_id: str) -> RecordedCall:
    """Run the row's next step alone, as a worker killed right after it would."""
    row = await store.get(call_id)
    assert row is not None
    await recorder._steps[State(row.state)](row)
    row = await store.get(call_id)
    assert row is not None
    return row


async def _older_version_left(
    recorder: Recorder, store: RecordingStore, storage: LocalStorage, call_id: str, state: State
) -> None:
    """Leave the row where the older pipeline, one step and one commit per state, stopped:
    `transcoded` (the encoded file on disk) or `stored` (the object uploaded, not verified)."""
    if state is State.TRANSCODED:
        audio = recorder.work_dir / f"{call_id}.ogg"
        seconds = encode_file(recorder.spool_dir / f"{call_id}.wav", audio, "opus")
        await store.advance(call_id, State.SPOOLED, state, duration_seconds=seconds)
        return
    row = await _one_step(recorder, store, call_id)
    assert row.storage_key is not None and row.cipher_sha256 is not None
    await storage.put(row.storage_key, recorder.work_dir / f"{call_id}.enc", row.cipher_sha256)
    await store.advance(call_id, State.ENCRYPTED, state)


KILL_POINTS = [
    "registered", "encrypted but not committed", "encrypted", "mid-upload",
    "uploaded but not committed", "older version: transcoded", "older version: stored",
]  # fmt: skip


@pytest.mark.parametrize("killed", KILL_POINTS)
async def test_restart_after_a_kill_anywhere_finishes_once(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path], killed: str,
) -> None:  # fmt: skip
    first = _recorder(tmp_path, recording_store, storage, key_ring)
    dying = Recorder(first.settings, KilledBeforeCommit(recording_store.engine), storage, key_ring)
    tone(first.spool_dir / "c-2.wav", 3.0)
    await first.finished("c-2", CallInfo(started_at=STARTED))
    row = await recording_store.get("c-2")
    assert row is not None
    if killed == "encrypted but not committed":  # ciphertext and scratch audio left behind
        with pytest.raises(Killed):
            await dying._steps[State.SPOOLED](row)
        (tmp_path / "work" / "c-2.ogg.part").write_bytes(b"half an encoding")
        assert (tmp_path / "work" / "c-2.enc.part").exists()  # sealed, not yet named
    elif killed != "registered" and not killed.startswith("older"):
        row = await _one_step(first, recording_store, "c-2")
        assert row.state == State.ENCRYPTED and row.storage_key is not None
        if killed == "mid-upload":  # a partial object is left behind
            (tmp_path / "store" / row.storage_key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "store" / row.storage_key).write_bytes(b"partial")
        if killed == "uploaded but not committed":
            with pytest.raises(Killed):
                await dying._steps[State.ENCRYPTED](row)
            assert await storage.list_keys() == [row.storage_key]
    elif killed.startswith("older"):
        state = State.TRANSCODED if killed.endswith("transcoded") else State.STORED
        await _older_version_left(first, recording_store, storage, "c-2", state)

    restarted = _recorder(tmp_path, recording_store, storage, key_ring)
    await restarted.run_until_idle()

    row = await recording_store.get("c-2")
    assert row is not None and row.state == State.VERIFIED and row.last_error is None
    assert await storage.list_keys() == [row.storage_key]
    heard = _probe(await _decrypt(storage, key_ring, row), tmp_path)
    assert heard["codec_name"] == "opus"
    assert float(str(heard["duration"])) == pytest.approx(3.0, abs=0.05)
    assert not (restarted.spool_dir / "c-2.wav").exists()
    assert list((tmp_path / "work").iterdir()) == []


class DamagesFirstUpload(LocalStorage):
    """Storage that flips a byte of the first object it keeps (a disk or a network fault)."""

    damaged = False

    async def put(self, key: str, path: Path, sha256: str) -> None:
        await super().put(key, path, sha256)
        if not self.damaged:
            self.damaged = True
            stored = self.root / key
            data = bytearray(stored.read_bytes())
            data[100] ^= 0xFF
            stored.write_bytes(bytes(data))


async def test_an_object_damaged_on_upload_is_sent_again_before_the_spool_file_goes(
    tmp_path: Path, recording_store: RecordingStore, key_ring: KeyRing,
    tone: Callable[[Path, float], Path], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    async with DamagesFirstUpload(tmp_path / "store") as storage:
        recorder = _recorder(tmp_path, recording_store, storage, key_ring)
        tone(recorder.spool_dir / "c-5.wav", 2.0)
        await recorder.finished("c-5", CallInfo(started_at=STARTED))
        await recorder.run_until_idle()

        row = await recording_store.get("c-5")
        assert storage.damaged and row is not None and row.state == State.VERIFIED
        assert row.attempts == 1  # the damaged upload counted as a failed attempt
        assert "reads back differently" in caplog.text
        assert _probe(await _decrypt(storage, key_ring, row), tmp_path)["codec_name"] == "opus"
        assert not (recorder.spool_dir / "c-5.wav").exists()


async def test_restart_removes_the_spool_files_of_finished_recordings_only(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    """Killed after verifying, before removing the spool files: the restart removes those,
    and leaves the files of calls never registered (still being written) to the scan."""
    first = _recorder(tmp_path, recording_store, storage, key_ring)
    for n in range(3):
        tone(first.spool_dir / f"c-{n}.wav", 1.0)
        await first.finished(f"c-{n}", CallInfo(started_at=STARTED))
        while (await _one_step(first, recording_store, f"c-{n}")).state != State.VERIFIED:
            pass
    tone(first.spool_dir / "c-9.wav", 1.0)  # written just now: not idle, not notified

    restarted = _recorder(tmp_path, recording_store, storage, key_ring)
    await restarted.run_until_idle()

    assert os.listdir(restarted.spool_dir) == ["c-9.wav"]
    assert len(await storage.list_keys()) == 3
    assert await recording_store.get("c-9") is None


async def test_lost_work_files_and_a_corrupted_object_are_redone(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    tone(recorder.spool_dir / "c-3.wav", 2.0)
    await recorder.finished("c-3", CallInfo(started_at=STARTED))
    row = await _one_step(recorder, recording_store, "c-3")
    assert row.state == State.ENCRYPTED
    for leftover in (tmp_path / "work").iterdir():  # work dir wiped while ENCRYPTED
        leftover.unlink()
    await recorder.run_until_idle()
    row = await recording_store.get("c-3")
    assert row is not None and row.state == State.VERIFIED

    # an object an older version uploaded is damaged before it verified it: sent again
    tone(recorder.spool_dir / "c-4.wav", 2.0)
    await recorder.finished("c-4", CallInfo(started_at=STARTED))
    await _older_version_left(recorder, recording_store, storage, "c-4", State.STORED)
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


async def test_a_step_run_again_on_a_stale_row_keeps_the_committed_ciphertext(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    """A second run of the first step (a stale row, another worker) loses its compare-and-set:
    the ciphertext on disk stays the one whose key the committed row holds."""
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    tone(recorder.spool_dir / "c-6.wav", 2.0)
    await recorder.finished("c-6", CallInfo(started_at=STARTED))
    stale = await recording_store.get("c-6")
    assert stale is not None
    await _one_step(recorder, recording_store, "c-6")
    assert await recorder._steps[State.SPOOLED](stale) is None  # lost the compare-and-set

    row = await recording_store.get("c-6")
    assert row is not None and row.state == State.ENCRYPTED
    sealed = (tmp_path / "work" / "c-6.enc").read_bytes()
    assert hashlib.sha256(sealed).hexdigest() == row.cipher_sha256
    await recorder.run_until_idle()
    row = await recording_store.get("c-6")
    assert row is not None and row.state == State.VERIFIED
    assert _probe(await _decrypt(storage, key_ring, row), tmp_path)["codec_name"] == "opus"


REFUSE_ONE_ROW = {  # the database refuses one recording's row (a fault in that row alone)
    "sqlite": [
        "CREATE TRIGGER refuse_c_bad BEFORE INSERT ON recordings WHEN NEW.call_id = 'c-bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_c_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.call_id = 'c-bad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_c_bad BEFORE INSERT ON recordings "
        "FOR EACH ROW EXECUTE FUNCTION refuse_c_bad()",
    ],
}
ACCEPT_EVERY_ROW = {
    "sqlite": ["DROP TRIGGER refuse_c_bad"],
    "postgresql": ["DROP TRIGGER refuse_c_bad ON recordings"],
}


async def _execute(store: RecordingStore, statements: dict[str, list[str]]) -> None:
    async with store.engine.begin() as connection:
        for statement in statements[store.engine.dialect.name]:
            await connection.exec_driver_sql(statement)


async def test_a_recording_the_database_refuses_holds_back_none_of_those_found_with_it(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    recorder = _recorder(tmp_path, recording_store, storage, key_ring, idle_seconds=0.001)
    found_together = ["c-a", "c-bad", "c-z"]
    for call_id in found_together:
        tone(recorder.spool_dir / f"{call_id}.wav", 0.5)
    await _execute(recording_store, REFUSE_ONE_ROW)

    await recorder.run_until_idle()

    for call_id in ("c-a", "c-z"):
        row = await recording_store.get(call_id)
        assert row is not None and row.state == State.VERIFIED
    assert await recording_store.get("c-bad") is None
    assert os.listdir(recorder.spool_dir) == ["c-bad.wav"]  # kept, not lost

    await _execute(recording_store, ACCEPT_EVERY_ROW)
    await _recorder(
        tmp_path, recording_store, storage, key_ring, idle_seconds=0.001
    ).run_until_idle()

    row = await recording_store.get("c-bad")
    assert row is not None and row.state == State.VERIFIED
    heard = _probe(await _decrypt(storage, key_ring, row), tmp_path)
    assert float(str(heard["duration"])) == pytest.approx(0.5, abs=0.05)
    assert os.listdir(recorder.spool_dir) == []
    assert len(await storage.list_keys()) == 3


async def test_recordings_are_kept_when_the_call_log_cannot_be_read(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    async with recording_store.engine.begin() as connection:  # the call log lives elsewhere
        await connection.exec_driver_sql("ALTER TABLE calls RENAME TO calls_elsewhere")
    recorder = _recorder(tmp_path, recording_store, storage, key_ring, idle_seconds=0.001)
    tone(recorder.spool_dir / "c-told.wav", 0.5)
    tone(recorder.spool_dir / "c-idle.wav", 0.5)

    await recorder.finished("c-told", CallInfo("88001234567", started_at=STARTED))
    await recorder.run_until_idle()

    told = await recording_store.get("c-told")
    assert told is not None and told.state == State.VERIFIED
    assert (told.dialled_number, told.started_at) == ("88001234567", STARTED)
    idle = await recording_store.get("c-idle")
    assert idle is not None and idle.state == State.VERIFIED and idle.dialled_number == ""
    assert os.listdir(recorder.spool_dir) == []


async def test_a_burst_of_hang_ups_is_registered_in_a_few_transactions_each_told_its_own(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    """A peak's notifications share transactions (group commit), and every row is there when
    its `finished` returns; a lone hang-up still gets its own transaction at once."""
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    burst = [f"1795563300.{n}" for n in range(40)]
    for call_id in [*burst, "1795563400.1"]:
        tone(recorder.spool_dir / f"{call_id}.wav", 0.1)
    told = CallInfo("88001000001", started_at=STARTED)

    await asyncio.gather(*(recorder.finished(call_id, told) for call_id in burst))

    for call_id in burst:
        row = await recording_store.get(call_id)
        assert row is not None and row.state == State.SPOOLED
        assert (row.dialled_number, row.started_at) == ("88001000001", STARTED)
    assert recorder.registrar.transactions <= 2  # the first alone, the 39 that waited together

    before = recorder.registrar.transactions
    await recorder.finished("1795563400.1", told)
    assert recorder.registrar.transactions == before + 1
    assert await recording_store.get("1795563400.1") is not None


async def test_a_hang_up_the_database_refuses_fails_alone_in_its_burst(
    tmp_path: Path, recording_store: RecordingStore, storage: LocalStorage, key_ring: KeyRing,
    tone: Callable[[Path, float], Path],
) -> None:  # fmt: skip
    recorder = _recorder(tmp_path, recording_store, storage, key_ring)
    burst = ["c-a", "c-b", "c-bad", "c-y", "c-z"]
    for call_id in burst:
        tone(recorder.spool_dir / f"{call_id}.wav", 0.1)
    await _execute(recording_store, REFUSE_ONE_ROW)

    outcomes = await asyncio.gather(
        *(recorder.finished(call_id) for call_id in burst), return_exceptions=True
    )

    failed = {c: o for c, o in zip(burst, outcomes, strict=True) if isinstance(o, BaseException)}
    assert list(failed) == ["c-bad"] and "refused" in str(failed["c-bad"])
    for call_id in ("c-a", "c-b", "c-y", "c-z"):
        row = await recording_store.get(call_id)
        assert row is not None and row.state == State.SPOOLED
    assert await recording_store.get("c-bad") is None
    assert sorted(os.listdir(recorder.spool_dir)) == sorted(f"{c}.wav" for c in burst)
