"""A recording as the recorder's pipeline leaves it, for tests of what comes after (access,
sampling, retention): the call's audio encrypted under a fresh data key into a storage, and
its row updated with the wrapped key, the sums and where the object lies; and real Opus audio
to store (`make_tone`, measured by `duration_of`)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from recorder import keys
from recorder.models import RecordedCall, RecordingStore
from recorder.storage import Storage


def make_tone(path: Path, seconds: float) -> bytes:
    """Real Opus-in-Ogg audio, as the pipeline stores it."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}:sample_rate=8000", "-c:a", "libopus",
         "-b:a", "16k", "-f", "ogg", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def duration_of(path: Path) -> float:
    """The audio's length in seconds, as ffprobe reads it."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(result.stdout.strip())


async def store_encrypted(
    store: RecordingStore,
    storage: Storage,
    key_ring: keys.KeyRing,
    call_id: str,
    audio: bytes,
    *,
    chunk_size: int = 4096,
    object_key: str | None = None,
    **fields: Any,
) -> RecordedCall:
    """Encrypt and store the audio of `call_id` (already registered in `store`) and update its
    row; `fields` are the row's other columns (state, duration...)."""
    data_key, wrapped = key_ring.new_data_key(call_id)
    sink = io.BytesIO()
    summary = keys.encrypt_stream(data_key, io.BytesIO(audio), sink, chunk_size)
    key = object_key or f"recordings/{call_id}.enc"
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / "object"
        staged.write_bytes(sink.getvalue())
        await storage.put(key, staged, summary.cipher_sha256)
    await store.update(
        call_id,
        key_id=wrapped.key_id,
        key_version=wrapped.key_version,
        wrapped_key=wrapped.wrapped,
        plain_size=summary.plain_size,
        plain_sha256=summary.plain_sha256,
        cipher_size=summary.cipher_size,
        cipher_sha256=summary.cipher_sha256,
        storage_backend=storage.name,
        storage_key=key,
        **fields,
    )
    row = await store.get(call_id)
    assert row is not None
    return row
