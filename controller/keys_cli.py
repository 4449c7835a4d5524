"""`hotline keys list|backup|restore|rotate|drill`: the keys kept outside the database.

Two kinds of key live in key directories (`hotline.keyfiles`): the recorder's master key
(`[recorder] keys_dir`, `master_key_id`: it wraps every recording's data key) and the audit
chain's key (`[audit] keys_dir`, `key_id`: it signs every audit entry). Losing either is a
disaster (recordings unplayable, the audit chain unverifiable), so:

* `backup --out FILE` writes every version of both, encrypted to the escrow passphrase
  (`hotline.key_escrow`: scrypt + AES-256-GCM), 0600, for the security officer's safe;
* `restore --in FILE` puts them back (0600 files in 0700 directories, their creation times
  kept); a file already there with other bytes stops it before anything is written;
* `rotate --kind audit|recorder` makes a new current version (the audit chain continues with
  it from an entry saying so; recordings need `hotline recorder rewrap` afterwards);
* `drill` proves a backup works without touching the live keys: back up, restore into a
  scratch directory, then verify the audit chain and unwrap recordings' data keys with the
  restored copies only.

The passphrase comes from `--passphrase-file`, else `$HOTLINE_ESCROW_PASSPHRASE`, else a prompt.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from controller.settings import Settings
from hotline.audit import AuditLog, ChainKeys, VerifyReport, audit_log_for
from hotline.key_escrow import EscrowedKey, EscrowError, open_backup, seal_backup
from hotline.keyfiles import KeyError_, MasterKeyStore
from hotline.store.db import create_engine
from recorder.keys import KeyRing, WrappedKey
from recorder.models import RecordedCall

__all__ = ["DrillResult", "add_commands", "backup_keys", "restore_keys", "run_drill"]

_DRILL_RECORDINGS = 20


def add_commands(commands: Any) -> None:
    """Register `keys list|backup|restore|rotate|drill`."""
    keys = commands.add_parser("keys", help="master and audit keys: backup, restore, rotation")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every key version and its age").set_defaults(run=cmd_list)
    backup = actions.add_parser("backup", help="write every key, encrypted, for escrow")
    backup.add_argument("--out", type=Path, required=True, help="new file (never overwritten)")
    restore = actions.add_parser("restore", help="put keys back from an escrow backup")
    restore.add_argument("--in", dest="source", type=Path, required=True, help="the backup")
    drill = actions.add_parser("drill", help="back up and restore into scratch, then check")
    for parser in (backup, restore, drill):
        parser.add_argument("--passphrase-file", type=Path, help="file holding the passphrase")
    backup.set_defaults(run=cmd_backup)
    restore.set_defaults(run=cmd_restore)
    drill.set_defaults(run=cmd_drill)
    rotate = actions.add_parser("rotate", help="make a new current version of a key")
    rotate.add_argument("--kind", choices=["audit", "recorder"], required=True)
    rotate.set_defaults(run=cmd_rotate)


def _stores(settings: Settings) -> dict[str, tuple[MasterKeyStore, str]]:
    """role -> (its key directory, its key id)."""
    return {
        "audit": (MasterKeyStore(settings.audit.keys_dir), settings.audit.key_id),
        "recorder": (MasterKeyStore(settings.recorder.keys_dir), settings.recorder.master_key_id),
    }


def backup_keys(settings: Settings) -> list[EscrowedKey]:
    """Every version of both keys, read (and checked: 32 bytes, 0600) from their files."""
    found = []
    for role, (store, key_id) in _stores(settings).items():
        for key_file in store.files():
            if key_file.key_id == key_id:
                key = store.get(key_id, key_file.version)
                found.append(
                    EscrowedKey(role, key_id, key.version, key.secret, key_file.created_at)
                )
    return found


def restore_keys(keys: list[EscrowedKey], stores: dict[str, tuple[MasterKeyStore, str]]) -> int:
    """Write the keys missing from their directories; how many were written.

    Checked before writing anything: a file of the same name with other bytes is someone
    else's key (or a damaged one) and must be looked at by a person, not replaced.
    """
    missing = []
    for key in keys:
        if key.role not in stores:
            raise KeyError_(f"backup holds a key for {key.role!r}, which this version lacks")
        store = stores[key.role][0]
        if not store.path(key.key_id, key.version).exists():
            missing.append(key)
        elif store.get(key.key_id, key.version).secret != key.secret:
            path = store.path(key.key_id, key.version)
            raise KeyError_(f"{path} exists with other bytes: move it aside to restore")
    for key in missing:
        path = stores[key.role][0].write(key.key_id, key.version, key.secret)
        stamp = key.created_at.timestamp()
        os.utime(path, (stamp, stamp))  # the key's age (rotation alerts) survives a restore
    return len(missing)


def _passphrase(args: argparse.Namespace) -> str:
    source: Path | None = args.passphrase_file
    if source is not None:
        return source.read_text(encoding="utf-8").rstrip("\r\n")
    from_environment = os.environ.get("HOTLINE_ESCROW_PASSPHRASE", "")
    if from_environment:
        return from_environment
    if not sys.stdin.isatty():
        raise EscrowError("no passphrase: use --passphrase-file or $HOTLINE_ESCROW_PASSPHRASE")
    return str(getpass.getpass("escrow passphrase: "))


def _fail(command: str, error: BaseException) -> int:
    print(f"hotline keys {command}: {error}", file=sys.stderr)
    return 2


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    for role, (store, key_id) in _stores(settings).items():
        versions = [found for found in store.files() if found.key_id == key_id]
        if not versions:
            print(f"{role}: no key {key_id!r} in {store.directory}")
        for found in versions:
            print(f"{role}: {found.path} created {found.created_at.isoformat(timespec='seconds')}")
    return 0


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        keys = backup_keys(settings)
        if not keys:
            raise KeyError_("no keys to back up")
        seal_backup(keys, _passphrase(args), args.out)
    except (KeyError_, EscrowError, OSError) as error:
        return _fail("backup", error)
    print(f"{len(keys)} key versions written to {args.out} (0600): {_names(keys)}")
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        keys = open_backup(args.source, _passphrase(args))
        written = restore_keys(keys, _stores(settings))
    except (KeyError_, EscrowError, OSError) as error:
        return _fail("restore", error)
    print(f"{written} of {len(keys)} key versions restored ({_names(keys)}); the rest were there")
    return 0


def _names(keys: list[EscrowedKey]) -> str:
    return ", ".join(f"{key.key_id} v{key.version}" for key in keys)


async def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    store, key_id = _stores(settings)[args.kind]
    try:
        key = store.generate(key_id)
    except (KeyError_, OSError) as error:
        return _fail("rotate", error)
    print(
        f"{args.kind} key {key.key_id} v{key.version} written to {store.path(key_id, key.version)}"
    )
    if args.kind == "recorder":
        print("new recordings use it now; run `hotline recorder rewrap` to move the old ones")
        return 0
    engine = create_engine(settings.store.database_url)
    try:
        entry = await audit_log_for(engine, settings.audit).note_key_rotation(key.version)
    except SQLAlchemyError as error:
        print(f"the audit log could not record the switch yet: {error}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"the audit chain continues with it from entry #{entry.seq}; back it up now")
    return 0


@dataclass(frozen=True)
class DrillResult:
    """What the drill proved: keys restored, the chain's verdict, recordings unwrapped."""

    keys: int
    audit: VerifyReport
    recordings_checked: int
    recordings_failed: list[str]

    @property
    def ok(self) -> bool:
        return self.audit.ok and not self.recordings_failed


async def run_drill(settings: Settings, passphrase: str) -> DrillResult:
    """Back up, restore into a scratch directory, check with the restored keys only."""
    keys = backup_keys(settings)
    with tempfile.TemporaryDirectory(prefix="hotline-key-drill-") as scratch:
        root = Path(scratch)
        seal_backup(keys, passphrase, root / "backup.json")
        restored = open_backup(root / "backup.json", passphrase)
        stores = {
            role: (MasterKeyStore(root / role), key_id)
            for role, (_, key_id) in _stores(settings).items()
        }
        restore_keys(restored, stores)
        engine = create_engine(settings.store.database_url)
        try:
            audit_store, audit_id = stores["audit"]
            report = await AuditLog(engine, ChainKeys(audit_store, audit_id)).verify()
            ring = KeyRing(*stores["recorder"])
            checked, failed = await _unwrap_sample(engine, ring)
        finally:
            await engine.dispose()
    return DrillResult(len(restored), report, checked, failed)


async def _unwrap_sample(engine: Any, ring: KeyRing) -> tuple[int, list[str]]:
    stmt = (
        select(RecordedCall.call_id, RecordedCall.key_id, RecordedCall.key_version)
        .add_columns(RecordedCall.wrapped_key)
        .where(RecordedCall.wrapped_key.is_not(None))
        .order_by(RecordedCall.id.desc())
        .limit(_DRILL_RECORDINGS)
    )
    async with engine.connect() as connection:
        rows = list(await connection.execute(stmt))
    failed = []
    for row in rows:
        try:
            ring.unwrap(row.call_id, WrappedKey(row.key_id, row.key_version, row.wrapped_key))
        except KeyError_:
            failed.append(row.call_id)
    return len(rows), failed


async def cmd_drill(args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = await run_drill(settings, _passphrase(args))
    except (KeyError_, EscrowError, OSError, SQLAlchemyError) as error:
        return _fail("drill", error)
    print(f"restored {result.keys} key versions into a scratch directory")
    print(f"audit chain with the restored key: {result.audit.describe()}")
    print(
        f"recordings: {result.recordings_checked} data keys unwrapped with the restored master "
        f"key, {len(result.recordings_failed)} failed {result.recordings_failed or ''}".rstrip()
    )
    print("drill PASSED" if result.ok else "drill FAILED")
    return 0 if result.ok else 1
