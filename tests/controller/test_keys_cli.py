"""`hotline keys backup|restore|rotate|drill` through the command line: the restore drill
(back up, wipe the key directory, restore: a recording still decrypts and the audit chain
still verifies), wrong passphrases and conflicting files refused with nothing written."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import migrated_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.cli import build_parser
from controller.settings import Settings
from hotline.audit import audit_log_for, ensure_audit_key
from hotline.auth import Actor
from hotline.settings import AuditSettings, StoreSettings
from recorder.keys import KeyRing, MasterKeyStore, decrypt_stream, encrypt_stream
from recorder.models import RecordingStore
from recorder.settings import RecorderSettings

PASSPHRASE = "correct horse battery staple"
AUDIO = b"RIFF....WAVEfmt " + bytes(range(256)) * 40


@dataclasses.dataclass
class Site:
    settings: Settings
    engine: AsyncEngine
    keys_dir: Path
    passphrase_file: Path
    ciphertext: bytes = b""

    async def run(self, *argv: str) -> int:
        args = build_parser().parse_args(["keys", *argv])
        return int(await args.run(args, self.settings))

    def ring(self) -> KeyRing:
        return KeyRing(MasterKeyStore(self.keys_dir), "recorder")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """A database with a recording encrypted under the master key and a keyed audit chain."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    keys_dir = tmp_path / "keys"
    settings = dataclasses.replace(
        Settings(),
        store=StoreSettings(database_url=url),
        audit=AuditSettings(keys_dir=keys_dir),
        recorder=RecorderSettings(keys_dir=keys_dir),
    )
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    async with migrated_engine(url) as engine:
        site = Site(settings, engine, keys_dir, secret)
        MasterKeyStore(keys_dir).generate("recorder")
        data_key, wrapped = site.ring().new_data_key("1732701600.1")
        store = RecordingStore(engine)
        await store.register("1732701600.1", format="opus", started_at=datetime.now(UTC))
        await store.update(
            "1732701600.1",
            key_id=wrapped.key_id,
            key_version=wrapped.key_version,
            wrapped_key=wrapped.wrapped,
        )
        sink = io.BytesIO()
        encrypt_stream(data_key, io.BytesIO(AUDIO), sink)
        site.ciphertext = sink.getvalue()
        log = audit_log_for(engine, settings.audit)
        await ensure_audit_key(log)
        await log.record(
            Actor("ivanova", "quality_auditor"),
            "play",
            recording_id="1732701600.1",
            source="10.0.0.5",
            outcome="ok",
        )
        yield site


async def _decrypts(site: Site) -> bytes:
    row = await RecordingStore(site.engine).get("1732701600.1")
    assert row is not None and row.wrapped_key is not None
    from recorder.keys import wrapped_key_of

    data_key = site.ring().unwrap(row.call_id, wrapped_key_of(row))
    out = io.BytesIO()
    decrypt_stream(data_key, io.BytesIO(site.ciphertext), out)
    return out.getvalue()


async def test_backup_wipe_restore_and_everything_still_opens(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "escrow" / "keys.json"
    backup.parent.mkdir()
    created = {p.name: p.stat().st_mtime for p in site.keys_dir.iterdir()}
    assert (
        await site.run(
            "backup", "--out", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 0
    )
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert "audit v1" in capsys.readouterr().out
    for name in created:  # no key in clear in the escrow file
        secret = (site.keys_dir / name).read_text().strip()
        assert secret not in backup.read_text()

    shutil.rmtree(site.keys_dir)  # the disaster
    with pytest.raises(Exception, match="not found"):
        await _decrypts(site)
    assert not (await audit_log_for(site.engine, site.settings.audit).verify()).ok

    assert (
        await site.run(
            "restore", "--in", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 0
    )
    assert await _decrypts(site) == AUDIO
    assert (await audit_log_for(site.engine, site.settings.audit).verify()).ok
    assert oct(site.keys_dir.stat().st_mode & 0o777) == "0o700"
    for path in site.keys_dir.iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert path.stat().st_mtime == pytest.approx(created[path.name], abs=1)  # age kept


async def test_a_wrong_passphrase_or_a_changed_file_restores_nothing(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "keys.json"
    assert (
        await site.run(
            "backup", "--out", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 0
    )
    assert (
        await site.run(
            "backup", "--out", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 2
    )  # never over an existing backup
    assert "exists: a backup is never written over another" in capsys.readouterr().err
    shutil.rmtree(site.keys_dir)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    assert await site.run("restore", "--in", str(backup), "--passphrase-file", str(wrong)) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    document = json.loads(backup.read_text())
    document["created_at"] = "2020-01-01T00:00:00+00:00"  # outside the ciphertext, still bound
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document))
    assert (
        await site.run(
            "restore", "--in", str(changed), "--passphrase-file", str(site.passphrase_file)
        )
        == 2
    )
    assert "wrong passphrase, or the file was altered" in capsys.readouterr().err
    assert not site.keys_dir.exists()  # nothing written


async def test_restore_never_replaces_a_different_key_file(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "keys.json"
    assert (
        await site.run(
            "backup", "--out", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 0
    )
    audit_key = site.keys_dir / "audit.v1.key"
    os.chmod(audit_key, 0o600)
    audit_key.write_text("00" * 32 + "\n")  # someone else's key under the same name
    (site.keys_dir / "recorder.v1.key").unlink()
    assert (
        await site.run(
            "restore", "--in", str(backup), "--passphrase-file", str(site.passphrase_file)
        )
        == 2
    )
    assert "exists with other bytes" in capsys.readouterr().err
    assert not (site.keys_dir / "recorder.v1.key").exists()  # checked before writing anything


async def test_rotate_continues_the_audit_chain_and_the_drill_passes(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await site.run("rotate", "--kind", "audit") == 0
    assert await site.run("rotate", "--kind", "recorder") == 0
    out = capsys.readouterr().out
    assert "audit key audit v2" in out and "hotline recorder rewrap" in out
    entries = await audit_log_for(site.engine, site.settings.audit).entries()
    assert (entries[-1].action, entries[-1].key_version) == ("audit_key_rotated", 2)
    assert await site.run("list") == 0
    listed = capsys.readouterr().out
    for name in ("audit.v1.key", "audit.v2.key", "recorder.v1.key", "recorder.v2.key"):
        assert name in listed

    assert await site.run("drill", "--passphrase-file", str(site.passphrase_file)) == 0
    out = capsys.readouterr().out
    assert "restored 4 key versions" in out
    assert "1 data keys unwrapped with the restored master key, 0 failed" in out
    assert "drill PASSED" in out


async def test_the_drill_fails_when_a_key_the_chain_needs_is_gone(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await site.run("rotate", "--kind", "audit") == 0
    (site.keys_dir / "audit.v1.key").unlink()  # a backup made now would lack it
    assert await site.run("drill", "--passphrase-file", str(site.passphrase_file)) == 1
    out = capsys.readouterr().out
    assert "BROKEN at entry #1 (key)" in out and "drill FAILED" in out
