"""`hotline users ...` and `hotline apikeys ...`: staff accounts and the systems' service keys.

    hotline users add ID --role R --name "..."   an account; prints a one-time password
    hotline users reset ID                       new one-time password, TOTP enrolled again,
                                                 every session ended
    hotline users disable ID                     no more logins; sessions end at once
    hotline users list
    hotline apikeys add NAME --scope S [--scope S...] --expires 90d   prints the key once
    hotline apikeys list
    hotline apikeys revoke NAME

A one-time password must be changed at the first login, which then sets up the second factor
(the person had it from someone else: it must not stay a shared secret). Every command acts as
the person at the terminal (``cli:<login>``, role ``system``) in the audit log and is a security
event (ACCOUNT_CHANGED). Exit 0 done, 2 refused (the message says why, nothing was changed).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.settings import Settings
from hotline.accounts.build import AccountsKit, build_accounts
from hotline.accounts.keys import parse_lifetime
from hotline.accounts.records import AccountError
from hotline.accounts.secrets import BoxKeyError
from hotline.audit import audit_log_for
from hotline.auth import TOKEN_ROLES, Actor, Role
from hotline.store.db import create_engine

__all__ = ["add_commands", "terminal_actor"]


def terminal_actor() -> Actor:
    """The person at the terminal, as the audit log names them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): still say it was the CLI
        login = "unknown"
    return Actor(user_id=f"cli:{login}", role=Role.SYSTEM, kind="system")


def add_commands(commands: Any) -> None:
    """Register the `users` and `apikeys` groups."""
    users = commands.add_parser("users", help="staff accounts (web login with TOTP)")
    verbs = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = verbs.add_parser("add", help="create an account; prints a one-time password")
    add.add_argument("id", help="the id operators.yaml and the audit log use (e.g. ivanova)")
    add.add_argument("--role", required=True, choices=sorted(TOKEN_ROLES))
    add.add_argument("--name", required=True, help="full name, as colleagues see it")
    add.set_defaults(run=cmd_users_add)
    reset = verbs.add_parser("reset", help="new one-time password, TOTP again, sessions ended")
    reset.add_argument("id")
    reset.set_defaults(run=cmd_users_reset)
    disable = verbs.add_parser("disable", help="no more logins; sessions end at once")
    disable.add_argument("id")
    disable.set_defaults(run=cmd_users_disable)
    verbs.add_parser("list", help="every account").set_defaults(run=cmd_users_list)
    keys = commands.add_parser("apikeys", help="service keys of systems (portal, CRM...)")
    key_verbs = keys.add_subparsers(dest="apikeys_command", required=True, metavar="ACTION")
    key_add = key_verbs.add_parser("add", help="a new key, printed once")
    key_add.add_argument("name", help="the system, e.g. portal, mobile, crm")
    key_add.add_argument(
        "--scope", action="append", required=True, help="e.g. callbacks:create (repeat)"
    )
    key_add.add_argument("--expires", default="90d", type=_lifetime, help="90d, 12h (default 90d)")
    key_add.set_defaults(run=cmd_apikeys_add)
    key_verbs.add_parser("list", help="every key, without the keys").set_defaults(
        run=cmd_apikeys_list
    )
    revoke = key_verbs.add_parser("revoke", help="revoke the active keys of NAME")
    revoke.add_argument("name")
    revoke.set_defaults(run=cmd_apikeys_revoke)


def _lifetime(text: str) -> Any:
    try:
        return parse_lifetime(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def _with_accounts(
    settings: Settings, command: str, work: Callable[[AccountsKit], Awaitable[int]]
) -> int:
    engine: AsyncEngine = create_engine(settings.store.database_url)
    try:
        kit = build_accounts(
            settings.accounts,
            engine,
            http_host=settings.http.host,
            audit=audit_log_for(engine, settings.audit),
        )
        return await work(kit)
    except (AccountError, BoxKeyError) as error:
        print(f"hotline {command}: {error}", file=sys.stderr)
        return 2
    except (OperationalError, ProgrammingError, DBAPIError) as error:
        first = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"hotline {command}: cannot use the database: {first}", file=sys.stderr)
        print("(is the database reachable and migrated? `hotline db upgrade`)", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


async def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        password = await kit.accounts.add(args.id, args.role, args.name, by=terminal_actor())
        print(f"account {args.id} created ({args.role}, {args.name})")
        print(f"one-time password: {password}")
        print("give it to the person; it must be changed at the first login at /login,")
        print("which then sets up the second factor (an authenticator app)")
        return 0

    return await _with_accounts(settings, "users add", work)


async def cmd_users_reset(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        password = await kit.accounts.reset(args.id, by=terminal_actor())
        print(f"account {args.id} reset: sessions ended, the second factor is set up again")
        print(f"one-time password: {password}")
        return 0

    return await _with_accounts(settings, "users reset", work)


async def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        await kit.accounts.disable(args.id, by=terminal_actor())
        print(f"account {args.id} disabled; its sessions have ended")
        return 0

    return await _with_accounts(settings, "users disable", work)


async def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        rows: list[tuple[str, ...]] = [("ID", "ROLE", "STATE", "TOTP", "PIN", "NAME")]
        for account in await kit.accounts.list_accounts():
            rows.append(
                (
                    account.id,
                    account.role,
                    "disabled" if account.disabled else "active",
                    "enrolled" if account.totp_enrolled else "pending",
                    "set" if account.has_pin else "-",
                    account.name,
                )
            )
        _print_table(rows)
        return 0

    return await _with_accounts(settings, "users list", work)


async def cmd_apikeys_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        key, record = await kit.keys.add(args.name, args.scope, args.expires, by=terminal_actor())
        print(f"service key for {record.name} ({' '.join(sorted(record.scopes))}),")
        print(f"expires {_when(record.expires_at)}; it is shown only now, keep it secret:")
        print(key)
        return 0

    return await _with_accounts(settings, "apikeys add", work)


async def cmd_apikeys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        now = kit.keys.now()
        rows: list[tuple[str, ...]] = [("NAME", "STATE", "SCOPES", "EXPIRES", "LAST USED", "BY")]
        for key in await kit.keys.list_keys():
            rows.append(
                (
                    key.name,
                    key.state(now),
                    " ".join(sorted(key.scopes)),
                    _when(key.expires_at),
                    _when(key.last_used_at),
                    key.created_by,
                )
            )
        _print_table(rows)
        return 0

    return await _with_accounts(settings, "apikeys list", work)


async def cmd_apikeys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(kit: AccountsKit) -> int:
        revoked = await kit.keys.revoke(args.name, by=terminal_actor())
        if not revoked:
            print(f"hotline apikeys revoke: no active key named {args.name!r}", file=sys.stderr)
            return 2
        print(f"revoked {revoked} key(s) of {args.name}")
        return 0

    return await _with_accounts(settings, "apikeys revoke", work)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
