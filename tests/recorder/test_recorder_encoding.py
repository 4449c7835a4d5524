"""The pipeline's in-process encoder on real audio: what comes back out of storage decodes to the
call as it was recorded (length, rate, pitch), a cut-short or never-finished WAV keeps all that
was recorded, and a spool file that is not audio is kept whole with the reason on its row."""

from __future__ import annotations

import io
import itertools
import logging
import math
import os
import stat
import struct
import wave
from array import array
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from recorder.audio import encode_file
from recorder.keys import KeyRing, decrypt_stream, wrapped_key_of
from recorder.models import RecordedCall, RecordingStore, State
from recorder.pipeline import CallInfo, Recorder
from recorder.settings import RecorderSettings
from recorder.storage import LocalStorage

STARTED = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Heard:
    """A stored recording decoded back as a listener's player would."""

    codec: str
    recorded_rate: int  # the rate the Ogg/Opus header says the call was recorded at
    seconds: float
    samples_8k: array[int]  # the decoded audio at 8 kHz mono 16-bit


@pytest.fixture
async def rig(
    tmp_path: Path, recording_store: RecordingStore, key_ring: KeyRing
) -> AsyncIterator[tuple[Recorder, LocalStorage]]:
    settings = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", keys_dir=tmp_path / "keys",
        local_dir=tmp_path / "store", settle_seconds=0.01, retry_initial=0.01, retry_max=0.05,
        spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    async with LocalStorage(settings.local_dir) as storage:
        recorder = Recorder(settings, recording_store, storage, key_ring)
        recorder.prepare_directories()
        yield recorder, storage


async def _stored_audio(storage: LocalStorage, ring: KeyRing, row: RecordedCall) -> bytes:
    assert row.storage_key is not None
    blob = b"".join([chunk async for chunk in storage.read(row.storage_key)])
    sink = io.BytesIO()
    decrypt_stream(ring.unwrap(row.call_id, wrapped_key_of(row)), io.BytesIO(blob), sink)
    return sink.getvalue()


def _hear(audio: bytes) -> Heard:
    head = audio.find(b"OpusHead")  # RFC 7845: the input sample rate at byte 12, little-endian
    recorded_rate = struct.unpack_from("<I", audio, head + 12)[0] if head >= 0 else 0
    samples: array[int] = array("h")
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        to_8k = av.AudioResampler(format="s16", layout="mono", rate=8000)
        for frame in container.decode(stream):
            for converted in to_8k.resample(frame):
                samples.frombytes(bytes(converted.planes[0])[: converted.samples * 2])
        for converted in to_8k.resample(None):
            samples.frombytes(bytes(converted.planes[0])[: converted.samples * 2])
    return Heard(codec, recorded_rate, len(samples) / 8000, samples)


def _sign_changes(samples: array[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


async def test_recorded_speech_and_tone_come_back_as_recorded(
    rig: tuple[Recorder, LocalStorage], recording_store: RecordingStore, key_ring: KeyRing,
    speech: Callable[[Path, str], Path], tone: Callable[..., Path],
) -> None:  # fmt: skip
    recorder, storage = rig
    said = speech(recorder.spool_dir / "1795563400.1.wav", "Горячая линия, оператор слушает.")
    tone(recorder.spool_dir / "1795563400.2.wav", 3.0, 440)
    said_seconds = _wav_seconds(said)
    for call_id in ("1795563400.1", "1795563400.2"):
        await recorder.finished(call_id, CallInfo(started_at=STARTED))
    await recorder.run_until_idle()

    speech_row = await recording_store.get("1795563400.1")
    tone_row = await recording_store.get("1795563400.2")
    assert speech_row is not None and tone_row is not None
    assert (speech_row.state, speech_row.format) == (State.VERIFIED, "opus")
    assert speech_row.duration_seconds == pytest.approx(said_seconds, abs=0.001)
    heard = _hear(await _stored_audio(storage, key_ring, speech_row))
    assert (heard.codec, heard.recorded_rate) == ("opus", 8000)
    assert heard.seconds == pytest.approx(said_seconds, abs=0.02)
    assert max(abs(sample) for sample in heard.samples_8k) > 3000  # speech, not silence

    heard = _hear(await _stored_audio(storage, key_ring, tone_row))
    assert heard.seconds == pytest.approx(3.0, abs=0.02)
    # 440 Hz for 3 s crosses zero 2,640 times: the pitch survived the encoding
    assert _sign_changes(heard.samples_8k) == pytest.approx(2640, rel=0.03)
    assert os.listdir(recorder.spool_dir) == []


def _plain_wav(path: Path, seconds: float, frequency: int) -> Path:
    """A sine as MixMonitor writes it: 8 kHz mono 16-bit, the plain 44-byte header."""
    count = round(seconds * 8000)
    step = 2 * math.pi * frequency / 8000
    samples = array("h", (round(8000 * math.sin(step * n)) for n in range(count)))
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(samples.tobytes())
    return path


def _cut_short(path: Path) -> float:
    """A WAV whose header promises 3 s but whose data stops after 1.5 s (disk full, a copy
    interrupted); the seconds really there."""
    path.write_bytes(path.read_bytes()[: 44 + 8000 * 2 * 3 // 2])
    return 1.5


def _never_finished(path: Path) -> float:
    """A WAV as Asterisk leaves it when it dies mid-call: both size fields still zero."""
    data = bytearray(path.read_bytes())
    data[4:8] = bytes(4)
    data[40:44] = bytes(4)  # MixMonitor's header is the plain 44 bytes: "data" size at 40
    path.write_bytes(bytes(data))
    return 3.0


@pytest.mark.parametrize("damage", [_cut_short, _never_finished])
async def test_a_damaged_wav_keeps_all_the_audio_it_holds(
    rig: tuple[Recorder, LocalStorage], recording_store: RecordingStore, key_ring: KeyRing,
    damage: Callable[[Path], float],
) -> None:  # fmt: skip
    recorder, storage = rig
    spooled = _plain_wav(recorder.spool_dir / "1795563401.1.wav", 3.0, 600)
    assert spooled.read_bytes()[36:40] == b"data"
    seconds = damage(spooled)
    await recorder.finished("1795563401.1", CallInfo(started_at=STARTED))
    await recorder.run_until_idle()

    row = await recording_store.get("1795563401.1")
    assert row is not None and (row.state, row.format) == (State.VERIFIED, "opus")
    assert row.duration_seconds == pytest.approx(seconds, abs=0.001)
    assert _hear(await _stored_audio(storage, key_ring, row)).seconds == pytest.approx(
        seconds, abs=0.02
    )


async def test_a_wav_with_a_broken_header_is_kept_whole_with_the_reason(
    rig: tuple[Recorder, LocalStorage], recording_store: RecordingStore, key_ring: KeyRing,
    tone: Callable[..., Path], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    recorder, storage = rig
    spooled = tone(recorder.spool_dir / "1795563402.1.wav", 1.0)
    broken = bytearray(spooled.read_bytes())
    broken[12:36] = b"\xff" * 24  # the "fmt " chunk overwritten: no format, no rate
    spooled.write_bytes(bytes(broken))
    await recorder.finished("1795563402.1", CallInfo(started_at=STARTED))
    row = await recording_store.get("1795563402.1")
    assert row is not None

    with caplog.at_level(logging.ERROR, logger="recorder.pipeline"):
        await recorder._steps[State.SPOOLED](row)  # the encoding and encryption step alone
    row = await recording_store.get("1795563402.1")
    assert row is not None and (row.state, row.format) == (State.ENCRYPTED, "original")
    assert "1795563402.1.wav is not readable audio" in str(row.last_error)
    assert "original file kept" in str(row.last_error)
    assert "1795563402.1.wav is not readable audio" in caplog.text
    assert spooled.read_bytes() == bytes(broken)  # nothing removed before it is stored

    await recorder.run_until_idle()
    row = await recording_store.get("1795563402.1")
    assert row is not None and row.state == State.VERIFIED
    assert await _stored_audio(storage, key_ring, row) == bytes(broken)
    assert not spooled.exists()  # gone only once its exact bytes were verified in storage


def test_an_encoded_call_is_written_private_whatever_the_umask(tmp_path: Path) -> None:
    """libavformat writes the file by its path, into a file made 0600 first: a call is never
    readable by other users of the machine, not even for the time of the encoding."""
    source = _plain_wav(tmp_path / "call.wav", 2.0, 440)
    target = tmp_path / "call.opus.part"
    target.write_bytes(b"left by a crash")
    target.chmod(0o644)
    previous = os.umask(0)
    try:
        seconds = encode_file(source, target, "opus")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    heard = _hear(target.read_bytes())
    assert (heard.codec, heard.recorded_rate) == ("opus", 8000)
    assert abs(heard.seconds - 2.0) <= 0.02 and abs(seconds - 2.0) <= 0.02
