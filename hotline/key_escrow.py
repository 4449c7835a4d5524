"""Key backups for escrow: every key file, encrypted to a passphrase, in one file.

Format (JSON, one object): `format`, `created_at`, the scrypt parameters and salt, the AES-GCM
nonce and the ciphertext (base64). The key encrypting the backup is
`scrypt(passphrase, salt, n=2**15, r=8, p=1)` (32 MiB of memory per guess, which is what makes
a short passphrase expensive to brute-force); the plaintext is the JSON list of keys (key id,
version, which directory they belong to, hex secret, creation time); everything outside the
ciphertext is bound to it as associated data, so a changed parameter or date fails to open
like a wrong passphrase does.

A passphrase rather than a public key: the escrow holder (the security officer) types it at
the drill and at a restore, and it lives on paper in the safe, not on the host. Backups are
written 0600 and never over an existing file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = ["MIN_PASSPHRASE", "EscrowError", "EscrowedKey", "open_backup", "seal_backup"]

_FORMAT: Final = "hotline-keys-backup/1"
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
MIN_PASSPHRASE: Final = 12


class EscrowError(Exception):
    """A backup cannot be written or opened (wrong passphrase, damaged or foreign file)."""


@dataclass(frozen=True)
class EscrowedKey:
    """One key version inside a backup; `role` names its directory (`audit`, `recorder`)."""

    role: str
    key_id: str
    version: int
    secret: bytes
    created_at: datetime

    def __repr__(self) -> str:  # never print the secret by accident
        return f"EscrowedKey({self.role}, {self.key_id} v{self.version})"


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise EscrowError(f"the escrow passphrase must have at least {MIN_PASSPHRASE} characters")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _header_bytes(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def seal_backup(keys: list[EscrowedKey], passphrase: str, out: Path) -> None:
    """Write `keys` encrypted to `passphrase` into the new file `out` (0600, never replaced)."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = {
        "format": _FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kdf": {"name": "scrypt", "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P},
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
    }
    plain = json.dumps(
        [
            {
                "role": key.role,
                "key_id": key.key_id,
                "version": key.version,
                "secret": key.secret.hex(),
                "created_at": key.created_at.isoformat(),
            }
            for key in keys
        ]
    ).encode()
    secret = _derive(passphrase, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    sealed = AESGCM(secret).encrypt(nonce, plain, _header_bytes(header))
    document = {**header, "ciphertext": base64.b64encode(sealed).decode()}
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise EscrowError(f"{out} exists: a backup is never written over another") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def open_backup(path: Path, passphrase: str) -> list[EscrowedKey]:
    """The keys inside the backup at `path`; EscrowError if it cannot be opened."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != _FORMAT:
            raise EscrowError(f"{path} is not a hotline key backup")
        header = {name: document[name] for name in ("format", "created_at", "kdf", "salt", "nonce")}
        kdf = header["kdf"]
        if kdf.get("name") != "scrypt" or int(kdf["n"]) < 2**14:
            raise EscrowError(f"{path}: unsupported or weakened key derivation {kdf!r}")
        salt = base64.b64decode(header["salt"])
        nonce = base64.b64decode(header["nonce"])
        sealed = base64.b64decode(document["ciphertext"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise EscrowError(f"{path} cannot be read as a key backup: {error}") from None
    secret = _derive(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    try:
        plain = AESGCM(secret).decrypt(nonce, sealed, _header_bytes(header))
    except InvalidTag:
        raise EscrowError(f"{path}: wrong passphrase, or the file was altered") from None
    return [
        EscrowedKey(
            item["role"],
            item["key_id"],
            int(item["version"]),
            bytes.fromhex(item["secret"]),
            datetime.fromisoformat(item["created_at"]),
        )
        for item in json.loads(plain)
    ]
