"""Envelope encryption of attachments: one random data key per file, wrapped by a master key
kept on disk outside the database.

The workspace does not import the recorder (parts never import each other), so this is the
workspace's own small version of the same scheme, on `cryptography`'s AES-256-GCM:

* **Master keys**: files `<key_id>.v<version>.key` in `[workspace] attachments_keys_dir`
  (mode 0600, 64 hex digits on one line, the recorder's file format, so the same directory
  and backup routine serve both). The highest version is current; `MasterKeys.generate`
  writes the next one and never overwrites.
* **Data keys**: `seal(attachment_id, plaintext)` makes a fresh 256-bit key, encrypts the file
  with it (one GCM message: attachments are bounded in size, no streaming needed) and returns
  the ciphertext and the `WrappedDataKey` for the database row. The attachment id is the
  associated data of both the file and the wrap: a ciphertext or wrapped key copied onto
  another row does not open.
* **Crypto-shredding**: the row's wrapped key set to NULL. Without it no copy of the file
  (storage, its backups) can be decrypted again.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hotline.private import private_dir

__all__ = ["MasterKeys", "SealError", "WrappedDataKey", "open_sealed", "seal"]

_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_MAGIC: Final = b"HLATT01\n"  # the file format's name and version, checked on reading
_KEY_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SealError(Exception):
    """A master key is missing or unreadable, or a file or key does not open (altered,
    another attachment's, or shredded)."""


@dataclass(frozen=True)
class WrappedDataKey:
    """What the database keeps about an attachment's data key: never the key itself."""

    key_id: str
    key_version: int
    wrapped: bytes


class MasterKeys:
    """The directory of master key files of one key id (read fresh each time: keys rotate)."""

    def __init__(self, directory: Path, key_id: str) -> None:
        if not _KEY_ID.match(key_id):
            raise ValueError(f"key id {key_id!r}: letters, digits, _ and - only")
        self.directory = Path(directory)
        self.key_id = key_id

    def _path(self, version: int) -> Path:
        return self.directory / f"{self.key_id}.v{version}.key"

    def versions(self) -> list[int]:
        pattern = re.compile(rf"^{re.escape(self.key_id)}\.v([0-9]{{1,9}})\.key$")
        if not self.directory.is_dir():
            return []
        found = (pattern.match(entry.name) for entry in self.directory.iterdir())
        return sorted(int(match[1]) for match in found if match)

    def generate(self) -> int:
        """Write the next version (0600, O_EXCL: two writers never share one); its number."""
        private_dir(self.directory)
        version = max(self.versions(), default=0) + 1
        fd = os.open(self._path(version), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return version

    def ensure(self) -> None:
        """A first key when there is none (a fresh installation)."""
        if not self.versions():
            self.generate()

    def secret(self, version: int) -> bytes:
        path = self._path(version)
        try:
            if path.stat().st_mode & 0o077:
                raise SealError(f"master key file {path} is readable by others: chmod 600 it")
            secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            raise SealError(f"master key {self.key_id} v{version} not found at {path}") from None
        except (OSError, ValueError) as error:
            raise SealError(f"master key file {path} is unreadable: {error}") from None
        if len(secret) != _KEY_BYTES:
            raise SealError(f"master key file {path} holds {len(secret)} bytes, need 32")
        return secret

    def current(self) -> int:
        versions = self.versions()
        if not versions:
            raise SealError(f"no master key {self.key_id!r} in {self.directory}")
        return versions[-1]


def _aad(attachment_id: str, what: bytes) -> bytes:
    return b"hotline-attachment:" + what + b":" + attachment_id.encode()


def seal(keys: MasterKeys, attachment_id: str, plaintext: bytes) -> tuple[bytes, WrappedDataKey]:
    """The file's ciphertext (magic, nonce, GCM message) and its wrapped data key."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plaintext, _aad(attachment_id, b"file"))
    version = keys.current()
    wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed_key = AESGCM(keys.secret(version)).encrypt(
        wrap_nonce, data_key, _aad(attachment_id, b"key")
    )
    wrapped = WrappedDataKey(keys.key_id, version, wrap_nonce + sealed_key)
    return _MAGIC + nonce + body, wrapped


def open_sealed(
    keys: MasterKeys, attachment_id: str, wrapped: WrappedDataKey, ciphertext: bytes
) -> bytes:
    """The plaintext of an attachment, or `SealError` if anything was altered or swapped."""
    if wrapped.key_id != keys.key_id:
        raise SealError(f"attachment {attachment_id}: wrapped by unknown key {wrapped.key_id}")
    blob = wrapped.wrapped
    try:
        data_key = AESGCM(keys.secret(wrapped.key_version)).decrypt(
            blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(attachment_id, b"key")
        )
        if not ciphertext.startswith(_MAGIC):
            raise SealError(f"attachment {attachment_id}: not an attachment file")
        rest = ciphertext[len(_MAGIC) :]
        return AESGCM(data_key).decrypt(
            rest[:_NONCE_BYTES], rest[_NONCE_BYTES:], _aad(attachment_id, b"file")
        )
    except InvalidTag:
        raise SealError(f"attachment {attachment_id} does not open: altered or swapped") from None
