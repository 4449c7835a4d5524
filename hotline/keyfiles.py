"""Directories of secret keys kept outside the database: one file per key version.

Shared by the recorder's master keys (`recorder.keys`) and the audit chain's key
(`hotline.audit`), and backed up, restored and rotated by `hotline keys ...`
(`controller.keys_cli`). A key file is `<key_id>.v<version>.key`, mode 0600, holding the
32 raw key bytes hex-encoded on one line, in a directory of mode 0700. The highest version of
a key id is the *current* one; older versions stay as long as something still needs them
(recordings wrapped under them, audit entries signed with them). Reads are fresh each time,
because keys rotate while the controller runs. The file's modification time is the key's
creation time (`created_at`): a restore puts it back, so a key's age survives a disaster.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from hotline.private import private_dir

__all__ = ["KEY_BYTES", "KeyError_", "KeyFile", "MasterKey", "MasterKeyStore", "check_key_id"]

KEY_BYTES: Final = 32
_KEY_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_KEY_FILE: Final = re.compile(r"^(?P<key_id>[A-Za-z0-9_-]{1,64})\.v(?P<version>[0-9]{1,9})\.key$")


class KeyError_(Exception):  # not KeyError, the builtin with another meaning
    """A key is missing, malformed or unreadable, or a data key cannot be unwrapped."""


@dataclass(frozen=True)
class MasterKey:
    """One version of a key, as read from its file."""

    key_id: str
    version: int
    secret: bytes

    def __repr__(self) -> str:  # never print the secret by accident
        return f"MasterKey(key_id={self.key_id!r}, version={self.version})"


@dataclass(frozen=True)
class KeyFile:
    """A key file found in the directory: which key, which version, where, since when."""

    key_id: str
    version: int
    path: Path
    created_at: datetime


def check_key_id(key_id: str) -> None:
    if not _KEY_ID.match(key_id):
        raise KeyError_(f"key id {key_id!r} must be 1-64 of A-Z a-z 0-9 _ -")


class MasterKeyStore:
    """The directory of key files. Reads are fresh each time (keys rotate while running)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, key_id: str, version: int) -> Path:
        check_key_id(key_id)
        return self.directory / f"{key_id}.v{version}.key"

    def files(self) -> list[KeyFile]:
        """Every key file of every key id, by key id then version."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _KEY_FILE.match(entry.name)
            if match and entry.is_file():
                created = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                found.append(KeyFile(match["key_id"], int(match["version"]), entry, created))
        return sorted(found, key=lambda key: (key.key_id, key.version))

    def versions(self, key_id: str) -> list[int]:
        """Versions of `key_id` present on disk, oldest first."""
        check_key_id(key_id)
        return [key.version for key in self.files() if key.key_id == key_id]

    def generate(self, key_id: str) -> MasterKey:
        """Write the next version of `key_id` (0600, never overwriting) and return it."""
        version = max(self.versions(key_id), default=0) + 1
        secret = secrets.token_bytes(KEY_BYTES)
        self.write(key_id, version, secret)
        return MasterKey(key_id, version, secret)

    def write(self, key_id: str, version: int, secret: bytes) -> Path:
        """Create the file of one key version (0600 in a 0700 directory); never overwrites."""
        if len(secret) != KEY_BYTES:
            raise KeyError_(f"key {key_id} v{version} holds {len(secret)} bytes, need 32")
        private_dir(self.directory)  # narrowed too if it existed wider
        path = self.path(key_id, version)
        # O_EXCL: two concurrent keygens must not both believe they wrote the same version
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def get(self, key_id: str, version: int) -> MasterKey:
        path = self.path(key_id, version)
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise KeyError_(f"master key {key_id} v{version} not found at {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise KeyError_(f"master key file {path} is unreadable: {error}") from None
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            raise KeyError_(f"master key file {path} is not hex") from None
        if len(secret) != KEY_BYTES:
            raise KeyError_(f"master key file {path} holds {len(secret)} bytes, need 32")
        if path.stat().st_mode & 0o077:
            raise KeyError_(f"master key file {path} is readable by others: chmod 600 it")
        return MasterKey(key_id, version, secret)

    def current(self, key_id: str) -> MasterKey:
        """The newest version of `key_id`, the one new data is protected with."""
        versions = self.versions(key_id)
        if not versions:
            raise KeyError_(
                f"no key {key_id!r} in {self.directory}: create one with `hotline keys rotate` "
                "(the recordings' key also with `hotline recorder keygen`)"
            )
        return self.get(key_id, versions[-1])
