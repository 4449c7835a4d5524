"""`build_accounts`: everything the accounts need, built from the ``[accounts]`` settings.

The composition root calls it once with the database engine, then hands `AccountsKit.lookup`
to `hotline.access.access_middleware` and calls `install_accounts(app, kit)` for the pages.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.accounts.keys import ServiceKeys
from hotline.accounts.lookup import AccountsLookup, session_cookie_name
from hotline.accounts.secrets import Passwords, SecretBox
from hotline.accounts.service import Accounts, PasswordRules
from hotline.accounts.sessions import SessionStore, SessionTimeouts
from hotline.accounts.settings import AccountsSettings
from hotline.accounts.throttle import LoginThrottle, ThrottleRules
from hotline.audit import AuditLog
from hotline.auth import TokenLookup
from hotline.clock import wall_clock

__all__ = ["AccountsKit", "build_accounts", "is_loopback_host"]


@dataclass(frozen=True)
class AccountsKit:
    """The accounts, the service keys, the request lookup and how the cookie is set."""

    accounts: Accounts
    keys: ServiceKeys
    lookup: AccountsLookup
    secure_cookie: bool
    engine: AsyncEngine

    @property
    def cookie_name(self) -> str:
        return self.lookup.cookie_name


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_accounts(
    settings: AccountsSettings,
    engine: AsyncEngine,
    *,
    http_host: str,
    audit: AuditLog | None,
    legacy: TokenLookup | None = None,
    clock: Callable[[], float] = wall_clock,
    passwords: Passwords | None = None,
) -> AccountsKit:
    """The accounts over `engine`. The cookie loses Secure only when the settings say plain
    HTTP on loopback *and* the server listens on a loopback address (`http_host`)."""
    secure = not (settings.plain_http_loopback and is_loopback_host(http_host))
    sessions = SessionStore(
        engine, SessionTimeouts(settings.idle_timeout, settings.absolute_timeout), clock
    )
    rules = ThrottleRules(
        pair_free=settings.throttle_pair_free,
        pair_max_delay=settings.throttle_pair_max_delay,
        address_free=settings.throttle_address_free,
        address_max_delay=settings.throttle_address_max_delay,
        account_free=settings.throttle_account_free,
        account_max_delay=settings.throttle_account_max_delay,
    )
    accounts = Accounts(
        engine,
        sessions=sessions,
        throttle=LoginThrottle(rules, clock),
        box=SecretBox(Path(settings.totp_key_file)),
        passwords=passwords,
        rules=PasswordRules(min_length=settings.password_min_length),
        audit=audit,
        issuer=settings.totp_issuer,
        pin_digits=settings.pin_digits,
        clock=clock,
    )
    keys = ServiceKeys(engine, audit=audit, clock=clock)
    proxies = frozenset(p.strip() for p in settings.trusted_proxies.split(",") if p.strip())
    lookup = AccountsLookup(
        sessions,
        keys,
        legacy=legacy,
        cookie_name=session_cookie_name(secure),
        trusted_proxies=proxies,
    )
    return AccountsKit(accounts, keys, lookup, secure, engine)
