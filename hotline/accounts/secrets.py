"""The accounts' secrets: password and PIN hashes, digests of random tokens, the TOTP secret box.

* Passwords and phone PINs: argon2id (argon2-cffi's RFC 9106 low-memory profile by default).
  Hashing and checking take tens of milliseconds of CPU, so they run in a worker thread and
  never stall calls on the event loop. A hash made with other parameters is re-made at the
  next successful login (`Passwords.needs_rehash`).
* Session tokens, recovery codes and service keys are random with 80 bits or more, so a plain
  SHA-256 is enough to make a stolen table useless; they are compared in constant time.
* The TOTP secret must be read back (to compute codes), so it cannot be hashed: `SecretBox`
  encrypts it with AES-256-GCM under a key kept in a file outside the database (mode 0600,
  created on first use in a 0700 directory). A copy of the database alone then yields no second
  factor. The account id is the associated data, so a secret moved to another row fails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "BoxKeyError",
    "Passwords",
    "SecretBox",
    "new_one_time_password",
    "new_pin",
    "new_random_token",
    "new_recovery_code",
    "normalise_recovery_code",
    "sha256_hex",
]

_BOX_VERSION: Final = "v1"
_KEY_BYTES: Final = 32
# Readable and unambiguous when typed from paper: no 0/O, 1/I/L.
_RECOVERY_ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"


class BoxKeyError(Exception):
    """The TOTP key file is missing where it must exist, unreadable, or too open."""


class Passwords:
    """argon2id hashing, off the event loop."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, secret)

    async def verify(self, stored: str, secret: str) -> bool:
        return await asyncio.to_thread(self._verify, stored, secret)

    def _verify(self, stored: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_random_token(prefix: str = "") -> str:
    """256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def new_one_time_password() -> str:
    """A password handed to a person once (on paper or by phone): 4 groups of 4, ~80 bits."""
    return "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(4)) for _ in range(4))


def new_recovery_code() -> str:
    """``xxxx-xxxx-xxxx-xxxx`` from a 31-letter alphabet (~79 bits)."""
    return new_one_time_password()


def normalise_recovery_code(typed: str) -> str:
    """What a person typed, without spaces and dashes and in lower case."""
    return "".join(ch for ch in typed.lower() if ch not in " -\t")


def new_pin(digits: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


class SecretBox:
    """AES-256-GCM under a key file kept outside the database (see the module's text)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = Path(key_file)
        self._aead = AESGCM(self._load_or_create())

    def seal(self, plain: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), context.encode("utf-8"))
        return f"{_BOX_VERSION}:" + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> str:
        version, _, body = sealed.partition(":")
        if version != _BOX_VERSION:
            raise ValueError("unknown secret box version")
        raw = base64.b64decode(body)
        plain = self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        return plain.decode("utf-8")

    def _load_or_create(self) -> bytes:
        path = self.key_file
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = AESGCM.generate_key(bit_length=_KEY_BYTES * 8)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(key)
            return key
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise BoxKeyError(
                f"{path}: the TOTP key file is readable by others (mode {mode:o}); "
                f"run `chmod 600 {path}`"
            )
        key = path.read_bytes()
        if len(key) != _KEY_BYTES:
            raise BoxKeyError(f"{path}: the TOTP key file must hold {_KEY_BYTES} bytes")
        return key
