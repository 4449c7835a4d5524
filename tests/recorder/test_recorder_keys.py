"""Envelope encryption: master key files, data key wraps, the framed stream format."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from recorder.keys import (
    HEADER_SIZE,
    TAG_BYTES,
    IntegrityError,
    KeyError_,
    KeyRing,
    MasterKeyStore,
    decrypt_stream,
    destroy,
    encrypt_stream,
    is_destroyed,
    iter_decrypt,
    wrapped_key_of,
)


def _encrypt(key: bytes, data: bytes, chunk: int = 1000) -> bytes:
    sink = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), sink, chunk_size=chunk)
    return sink.getvalue()


def _decrypt(key: bytes, blob: bytes) -> bytes:
    sink = io.BytesIO()
    decrypt_stream(key, io.BytesIO(blob), sink)
    return sink.getvalue()


def test_keygen_writes_private_versioned_files(tmp_path: Path) -> None:
    store = MasterKeyStore(tmp_path / "keys")
    first = store.generate("recorder")
    second = store.generate("recorder")
    assert (first.version, second.version) == (1, 2)
    assert first.secret != second.secret
    path = store.path("recorder", 2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.current("recorder").secret == second.secret
    assert "secret" not in repr(second) and second.secret.hex() not in repr(second)


def test_missing_unsafe_or_malformed_master_keys_are_clear_errors(tmp_path: Path) -> None:
    store = MasterKeyStore(tmp_path / "keys")
    with pytest.raises(KeyError_, match="keygen"):
        store.current("recorder")
    store.generate("recorder")
    path = store.path("recorder", 1)
    os.chmod(path, 0o644)
    with pytest.raises(KeyError_, match="chmod 600"):
        store.get("recorder", 1)
    os.chmod(path, 0o600)
    path.write_text("zz-not-hex\n")
    with pytest.raises(KeyError_, match="not hex"):
        store.get("recorder", 1)
    path.write_text("00" * 16)
    with pytest.raises(KeyError_, match="16 bytes"):
        store.get("recorder", 1)
    with pytest.raises(KeyError_, match="key id"):
        store.generate("../escape")


def test_data_keys_are_fresh_and_bound_to_their_recording(key_ring: KeyRing) -> None:
    key_a, wrapped_a = key_ring.new_data_key("call-a")
    key_b, _ = key_ring.new_data_key("call-b")
    assert key_a != key_b and len(key_a) == 32
    assert key_a not in wrapped_a.wrapped
    assert key_ring.unwrap("call-a", wrapped_a) == key_a
    with pytest.raises(KeyError_, match="does not unwrap"):
        key_ring.unwrap("call-b", wrapped_a)  # a wrap copied onto another row


def test_rotation_and_rewrap_keep_old_recordings_readable(key_ring: KeyRing) -> None:
    key, wrapped = key_ring.new_data_key("call-1")
    key_ring.store.generate("recorder")  # rotate: v2 is current
    assert not key_ring.is_current(wrapped)
    assert key_ring.unwrap("call-1", wrapped) == key  # v1 still on disk
    moved = key_ring.rewrap("call-1", wrapped)
    assert (moved.key_id, moved.key_version) == ("recorder", 2)
    assert key_ring.rewrap("call-1", moved) is moved
    key_ring.store.path("recorder", 1).unlink()  # admin retires v1 after rewrap
    assert key_ring.unwrap("call-1", moved) == key
    with pytest.raises(KeyError_, match="not found"):
        key_ring.unwrap("call-1", wrapped)


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000, 12345])
def test_stream_round_trips_every_size(size: int) -> None:
    key = os.urandom(32)
    data = os.urandom(size)
    sink = io.BytesIO()
    summary = encrypt_stream(key, io.BytesIO(data), sink, chunk_size=1000)
    blob = sink.getvalue()
    assert summary.plain_size == size and summary.cipher_size == len(blob)
    frames = max(1, -(-size // 1000))  # an exact multiple needs no empty closing frame
    assert len(blob) == HEADER_SIZE + size + frames * TAG_BYTES
    assert _decrypt(key, blob) == data
    assert b"".join(iter_decrypt(key, io.BytesIO(blob))) == data


def test_same_plaintext_and_key_never_give_the_same_ciphertext() -> None:
    key, data = os.urandom(32), os.urandom(3000)
    assert _encrypt(key, data) != _encrypt(key, data)


@pytest.mark.parametrize("cut", [HEADER_SIZE + 1016, HEADER_SIZE + 2032, -1, HEADER_SIZE, 5])
def test_truncation_is_detected_even_at_a_frame_boundary(cut: int) -> None:
    key = os.urandom(32)
    blob = _encrypt(key, os.urandom(3000))
    with pytest.raises(IntegrityError):
        _decrypt(key, blob[:cut])


def test_reordered_duplicated_or_appended_frames_and_edits_are_detected() -> None:
    key = os.urandom(32)
    blob = _encrypt(key, os.urandom(3000))
    header, body = blob[:HEADER_SIZE], blob[HEADER_SIZE:]
    frame = 1000 + TAG_BYTES
    frames = [body[i : i + frame] for i in range(0, len(body), frame)]
    swapped = header + frames[1] + frames[0] + b"".join(frames[2:])
    duplicated = header + frames[0] + b"".join(frames)
    appended = blob + frames[-1]
    flipped = bytearray(blob)
    flipped[HEADER_SIZE + 10] ^= 1
    header_edit = bytearray(blob)
    header_edit[HEADER_SIZE - 1] ^= 1
    for bad in (swapped, duplicated, appended, bytes(flipped), bytes(header_edit)):
        with pytest.raises(IntegrityError):
            _decrypt(key, bad)
    with pytest.raises(IntegrityError):
        _decrypt(os.urandom(32), blob)
    with pytest.raises(IntegrityError, match="magic"):
        _decrypt(key, b"RIFF" + blob[4:])


def test_destroy_makes_the_recording_undecryptable(key_ring: KeyRing) -> None:
    key, wrapped = key_ring.new_data_key("call-x")
    row = SimpleNamespace(
        call_id="call-x",
        key_id=wrapped.key_id,
        key_version=wrapped.key_version,
        wrapped_key=wrapped.wrapped,
    )
    blob = _encrypt(key, b"audio" * 100)
    assert _decrypt(key_ring.unwrap("call-x", wrapped_key_of(row)), blob) == b"audio" * 100
    destroy(row)
    assert is_destroyed(row)
    with pytest.raises(KeyError_, match="destroyed"):
        wrapped_key_of(row)
