"""`hotline users ...` and `hotline apikeys ...` as an admin types them."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path

import pytest
from staff import CHEAP_HASHER

from controller.cli import main
from hotline.accounts.build import build_accounts
from hotline.accounts.records import LoginRefused
from hotline.accounts.secrets import Passwords
from hotline.accounts.settings import AccountsSettings
from hotline.audit import AuditLog
from hotline.store.db import create_engine


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    monkeypatch.setenv("HOTLINE_STORE_DATABASE_URL", url)
    monkeypatch.setenv("HOTLINE_ACCOUNTS_TOTP_KEY_FILE", str(tmp_path / "keys" / "totp.key"))
    monkeypatch.setenv("HOTLINE_LOG_LEVEL", "ERROR")
    assert main(["db", "upgrade"]) == 0
    return url


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def password_in(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if "password:" in line)


async def _can_log_in(url: str, tmp_path: Path, account: str, password: str) -> bool:
    engine = create_engine(url)
    settings = AccountsSettings(totp_key_file=str(tmp_path / "keys" / "totp.key"))
    kit = build_accounts(
        settings, engine, http_host="127.0.0.1", audit=None, passwords=Passwords(CHEAP_HASHER)
    )
    try:
        await kit.accounts.login_password(account, password, "10.0.0.1")
    except LoginRefused:
        return False
    finally:
        await engine.dispose()
    return True


async def _audit(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        entries = await AuditLog(engine).entries()
    finally:
        await engine.dispose()
    return [
        (e.user_id, e.action, e.detail_data.get("account") or e.detail_data["key"]) for e in entries
    ]


def test_users_add_list_reset_disable(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "users", "add", "ivanova", "--role", "operator", "--name", "Иванова Анна"
    )
    assert code == 0 and "must be changed at the first login" in out
    first = password_in(out)
    assert asyncio.run(_can_log_in(database, tmp_path, "ivanova", first))
    code, out, _ = run(capsys, "users", "list")
    assert code == 0
    assert out.splitlines()[1].split() == [
        "ivanova",
        "operator",
        "active",
        "pending",
        "-",
        "Иванова",
        "Анна",
    ]
    code, out, _ = run(capsys, "users", "reset", "ivanova")
    assert code == 0
    second = password_in(out)
    assert not asyncio.run(_can_log_in(database, tmp_path, "ivanova", first))
    assert asyncio.run(_can_log_in(database, tmp_path, "ivanova", second))
    assert run(capsys, "users", "disable", "ivanova")[0] == 0
    assert "disabled" in run(capsys, "users", "list")[1]
    assert not asyncio.run(_can_log_in(database, tmp_path, "ivanova", second))
    who = f"cli:{getpass.getuser()}"
    assert asyncio.run(_audit(database)) == [
        (who, "account.add", "ivanova"),
        (who, "account.reset", "ivanova"),
        (who, "account.disable", "ivanova"),
    ]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["users", "add", "Иванова", "--role", "operator", "--name", "x"], "must be 1-64"),
        (["users", "add", "a" * 65, "--role", "operator", "--name", "x"], "must be 1-64"),
        (["users", "add", "ivanova", "--role", "operator", "--name", "  "], "name must be"),
        (["users", "add", "petrov", "--role", "operator", "--name", "Дубль"], "already exists"),
        (["users", "reset", "nobody"], "no account"),
        (["users", "disable", "nobody"], "no account"),
        (["apikeys", "revoke", "nothing"], "no active key"),
        (["apikeys", "add", "Portal", "--scope", "contacts:read"], "must be 1-40"),
        (["apikeys", "add", "portal", "--scope", "all"], "scopes must be like"),
    ],
)
def test_bad_commands_say_why_and_change_nothing(
    database: str, capsys: pytest.CaptureFixture[str], words: list[str], message: str
) -> None:
    assert run(capsys, "users", "add", "petrov", "--role", "supervisor", "--name", "Петров")[0] == 0
    before = asyncio.run(_audit(database))
    code, _, err = run(capsys, *words)
    assert code == 2 and message in err
    assert asyncio.run(_audit(database)) == before


def test_role_outside_the_list_is_refused(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main(["users", "add", "x", "--role", "system", "--name", "Система"])
    assert exit_code.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_apikeys_add_list_revoke(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "apikeys",
        "add",
        "portal",
        "--scope",
        "callbacks:create",
        "--scope",
        "contacts:read",
        "--expires",
        "90d",
    )
    assert code == 0
    key = out.splitlines()[-1]
    assert key.startswith("hlk_") and len(key) > 40
    code, out, _ = run(capsys, "apikeys", "list")
    assert code == 0 and key not in out
    row = out.splitlines()[1].split()
    assert row[:4] == ["portal", "active", "callbacks:create", "contacts:read"]
    assert run(capsys, "apikeys", "revoke", "portal")[0] == 0
    assert run(capsys, "apikeys", "list")[1].splitlines()[1].split()[1] == "revoked"
    who = f"cli:{getpass.getuser()}"
    assert asyncio.run(_audit(database)) == [
        (who, "apikey.add", "portal"),
        (who, "apikey.revoke", "portal"),
    ]


def test_bad_lifetime_is_refused(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["apikeys", "add", "portal", "--scope", "contacts:read", "--expires", "forever"])
    assert "must look like 90d" in capsys.readouterr().err


def test_unmigrated_database_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOTLINE_STORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    monkeypatch.setenv("HOTLINE_ACCOUNTS_TOTP_KEY_FILE", str(tmp_path / "totp.key"))
    code, _, err = run(capsys, "users", "list")
    assert code == 2 and "hotline db upgrade" in err
