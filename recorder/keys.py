"""Envelope encryption for recordings: master keys on disk, one data key per recording.

How it fits together (for the pipeline, access, retention and audit modules):

* **Master keys** (`hotline.keyfiles`, shared with the audit chain's key) live in a directory
  outside the database (`RecorderSettings.keys_dir`,
  default `var/keys/`), one file per key version: `<key_id>.v<version>.key`, mode 0600,
  holding the 32 raw key bytes hex-encoded on one line. `hotline recorder keygen` writes the
  next version (`MasterKeyStore.generate`); the highest version of the configured key id is the
  *current* one, used for every new recording. Old versions stay until `hotline recorder
  rewrap` has moved every recording to the current one; only then may an admin delete them.
  Master keys never enter the database, logs or storage.

* **Data keys**: `KeyRing.new_data_key(recording_id)` returns a fresh random 256-bit key and
  its `WrappedKey` (master key id + version + the AES-256-GCM-wrapped bytes). Only the
  `WrappedKey` is stored, in the recording's row (`RecordedCall.key_id`, `.key_version`,
  `.wrapped_key`). The wrap binds the recording id as associated data, so a wrapped key copied
  onto another row does not unwrap. `KeyRing.unwrap(recording_id, wrapped)` gives the data key
  back; `KeyRing.rewrap` moves it under the current master key without touching the object.

* **Crypto-shredding**: `destroy(recording)` clears the row's wrapped key. Once that row is
  committed, no copy of the object anywhere (storage, backups of storage, a leaked download)
  can be decrypted again. `is_destroyed(recording)` says whether that has happened.

* **Streaming format** (`encrypt_stream` / `decrypt_stream` / `iter_decrypt`): a 20-byte
  header (magic `HLREC01\\n`, chunk size as u32 big-endian, 8-byte random nonce prefix), then
  frames of AES-256-GCM ciphertext+tag, each holding `chunk_size` plaintext bytes except the
  last (0..chunk_size). Frame nonce = prefix(7) || counter(u32) || last-flag(1) with the header
  as associated data: a reordered, dropped, duplicated or appended frame, a truncated file (even
  at a frame boundary) or an edited header fails with `IntegrityError` rather than yielding
  wrong audio. The random prefix keeps nonces unique even if a crashed pipeline encrypts a
  (possibly different) transcode again under the same data key.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hotline.keyfiles import KEY_BYTES, KeyError_, MasterKey, MasterKeyStore, check_key_id

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "CipherSummary",
    "IntegrityError",
    "KeyError_",
    "KeyRing",
    "KeyedRecording",
    "MasterKey",
    "MasterKeyStore",
    "WrappedKey",
    "decrypt_stream",
    "destroy",
    "encrypt_stream",
    "is_destroyed",
    "iter_decrypt",
]

MAGIC = b"HLREC01\n"
_HEADER = struct.Struct(">8sI8s")
HEADER_SIZE = _HEADER.size
TAG_BYTES = 16
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
_WRAP_NONCE_BYTES = 12


class IntegrityError(Exception):
    """Ciphertext was altered, truncated, reordered or encrypted under another key."""


@dataclass(frozen=True)
class WrappedKey:
    """What the database stores about a recording's data key: never the key itself."""

    key_id: str
    key_version: int
    wrapped: bytes


class KeyRing:
    """Makes, unwraps and rewraps data keys with the master keys of one `MasterKeyStore`."""

    def __init__(self, store: MasterKeyStore, key_id: str) -> None:
        check_key_id(key_id)
        self.store = store
        self.key_id = key_id

    def new_data_key(self, recording_id: str) -> tuple[bytes, WrappedKey]:
        """A fresh data key and its wrap under the current master key."""
        data_key = secrets.token_bytes(KEY_BYTES)
        return data_key, self._wrap(self.store.current(self.key_id), recording_id, data_key)

    def unwrap(self, recording_id: str, wrapped: WrappedKey) -> bytes:
        master = self.store.get(wrapped.key_id, wrapped.key_version)
        blob = wrapped.wrapped
        nonce, sealed = blob[:_WRAP_NONCE_BYTES], blob[_WRAP_NONCE_BYTES:]
        try:
            key = AESGCM(master.secret).decrypt(nonce, sealed, _wrap_aad(master, recording_id))
        except InvalidTag:
            raise KeyError_(
                f"data key of recording {recording_id!r} does not unwrap with "
                f"{master.key_id} v{master.version}"
            ) from None
        if len(key) != KEY_BYTES:  # pragma: no cover - only if someone wrapped a wrong length
            raise KeyError_(f"data key of recording {recording_id!r} has a wrong length")
        return key

    def rewrap(self, recording_id: str, wrapped: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current master key (returned as is if it is)."""
        current = self.store.current(self.key_id)
        if (wrapped.key_id, wrapped.key_version) == (current.key_id, current.version):
            return wrapped
        return self._wrap(current, recording_id, self.unwrap(recording_id, wrapped))

    def is_current(self, wrapped: WrappedKey) -> bool:
        current = self.store.current(self.key_id)
        return (wrapped.key_id, wrapped.key_version) == (current.key_id, current.version)

    @staticmethod
    def _wrap(master: MasterKey, recording_id: str, data_key: bytes) -> WrappedKey:
        nonce = secrets.token_bytes(_WRAP_NONCE_BYTES)
        sealed = AESGCM(master.secret).encrypt(nonce, data_key, _wrap_aad(master, recording_id))
        return WrappedKey(master.key_id, master.version, nonce + sealed)


def _wrap_aad(master: MasterKey, recording_id: str) -> bytes:
    return f"hotline-recorder-dek|{master.key_id}|{master.version}|{recording_id}".encode()


class KeyedRecording(Protocol):
    """What `destroy` needs of a recording row (satisfied by `recorder.models.RecordedCall`)."""

    call_id: str
    key_id: str | None
    key_version: int | None
    wrapped_key: bytes | None


def destroy(recording: KeyedRecording) -> None:
    """Crypto-shred: forget the recording's wrapped data key. The caller commits the row.

    The key id and version are kept: they say which master key the recording *was* under,
    which the audit trail wants, and are useless without the wrapped bytes.
    """
    recording.wrapped_key = None


def is_destroyed(recording: KeyedRecording) -> bool:
    return recording.wrapped_key is None


def wrapped_key_of(recording: KeyedRecording) -> WrappedKey:
    """The stored `WrappedKey` of a row; `KeyError_` once it has been destroyed."""
    if recording.wrapped_key is None or recording.key_id is None or recording.key_version is None:
        raise KeyError_(f"recording {recording.call_id!r} has no data key (destroyed?)")
    return WrappedKey(recording.key_id, recording.key_version, recording.wrapped_key)


@dataclass(frozen=True)
class CipherSummary:
    """Sizes and SHA-256 digests of both sides of one `encrypt_stream` run."""

    plain_size: int
    plain_sha256: str
    cipher_size: int
    cipher_sha256: str


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise ValueError("recording too long for one stream (2^32 frames)")
    return prefix[:7] + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(
    data_key: bytes, source: BinaryIO, sink: BinaryIO, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> CipherSummary:
    """Encrypt `source` into `sink` frame by frame; memory use is about two chunks."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE}")
    aead = AESGCM(data_key)
    header = _HEADER.pack(MAGIC, chunk_size, secrets.token_bytes(8))
    prefix = header[-8:]
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    plain_size = 0
    sink.write(header)
    cipher_hash.update(header)
    cipher_size = len(header)
    chunk = _read_exactly(source, chunk_size)
    counter = 0
    while True:
        following = _read_exactly(source, chunk_size) if len(chunk) == chunk_size else b""
        last = not following
        frame = aead.encrypt(_nonce(prefix, counter, last), chunk, header)
        sink.write(frame)
        plain_hash.update(chunk)
        cipher_hash.update(frame)
        plain_size += len(chunk)
        cipher_size += len(frame)
        if last:
            break
        chunk, counter = following, counter + 1
    return CipherSummary(plain_size, plain_hash.hexdigest(), cipher_size, cipher_hash.hexdigest())


def iter_decrypt(data_key: bytes, source: BinaryIO) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks in order, for streaming playback.

    Each chunk is released only after its tag checked out; a stream that turns out to be
    truncated raises `IntegrityError` at the point where the missing frame should have been.
    """
    header = _read_exactly(source, HEADER_SIZE)
    if len(header) != HEADER_SIZE:
        raise IntegrityError("not an encrypted recording (short header)")
    magic, chunk_size, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise IntegrityError("not an encrypted recording (bad magic)")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"implausible chunk size {chunk_size}")
    aead = AESGCM(data_key)
    frame_size = chunk_size + TAG_BYTES
    frame = _read_exactly(source, frame_size)
    counter = 0
    while True:
        following = _read_exactly(source, frame_size) if len(frame) == frame_size else b""
        last = not following
        if len(frame) < TAG_BYTES:
            raise IntegrityError("encrypted recording is truncated")
        try:
            yield aead.decrypt(_nonce(prefix, counter, last), frame, header)
        except InvalidTag:
            raise IntegrityError(
                f"frame {counter} fails authentication (altered, reordered, truncated or wrong key)"
            ) from None
        if last:
            return
        frame, counter = following, counter + 1


def decrypt_stream(data_key: bytes, source: BinaryIO, sink: BinaryIO) -> int:
    """Decrypt a whole stream into `sink`; returns the plaintext size.

    Plaintext already written to `sink` before an `IntegrityError` must be discarded by the
    caller (write to a temporary file and rename on success).
    """
    total = 0
    for chunk in iter_decrypt(data_key, source):
        sink.write(chunk)
        total += len(chunk)
    return total


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, fewer only at end of stream (raw files may return short reads)."""
    parts = []
    remaining = size
    while remaining:
        part = source.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
