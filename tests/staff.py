"""Staff accounts for tests: the real `hotline.accounts` over a migrated database, a clock the
test moves by hand, and argon2id at its cheapest parameters so a test's logins stay quick
(the parameters are the only difference from production; `test_password_rehash` checks that
hashes made with other ones are renewed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from databases import migrated_engine

from hotline.accounts.build import AccountsKit, build_accounts
from hotline.accounts.secrets import Passwords
from hotline.accounts.settings import AccountsSettings
from hotline.audit import AuditLog
from hotline.auth import Actor, TokenLookup
from hotline.clock import ManualClock

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ADMIN_CLI = Actor("cli:tester", "system", kind="system")
START = 1_800_000_000.0  # a whole TOTP step


@asynccontextmanager
async def staff_kit(
    url: str,
    tmp_path: Path,
    *,
    clock: ManualClock | None = None,
    settings: AccountsSettings | None = None,
    legacy: TokenLookup | None = None,
    http_host: str = "127.0.0.1",
    passwords: Passwords | None = None,
) -> AsyncIterator[AccountsKit]:
    """The accounts over the database at `url` (migrated here)."""
    settings = settings or AccountsSettings(totp_key_file=str(tmp_path / "keys" / "totp.key"))
    async with migrated_engine(url) as engine:
        yield build_accounts(
            settings,
            engine,
            http_host=http_host,
            audit=AuditLog(engine),
            legacy=legacy,
            clock=clock or ManualClock(START),
            passwords=passwords or Passwords(CHEAP_HASHER),
        )


def totp_code(secret: str, clock: ManualClock) -> str:
    """The code an authenticator app shows at the clock's time."""
    return pyotp.TOTP(secret).at(clock())
