"""The ``[accounts]`` section: staff sessions, passwords, the TOTP key file, login throttling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccountsSettings"]


def _at_least(low: float) -> Any:
    def check(value: Any) -> str | None:
        return None if value >= low else f"must be at least {low}, got {value}"

    return check


def _setting(default: Any, low: float) -> Any:
    return field(default=default, metadata={"check": _at_least(low)})


@dataclass(frozen=True)
class AccountsSettings:
    """Staff accounts (`hotline.accounts`): the login pages, sessions and phone PINs."""

    # A session unused this long ends; and every session ends this long after its login.
    idle_timeout: float = _setting(1800.0, 60)
    absolute_timeout: float = _setting(43200.0, 300)
    # The session cookie is always HttpOnly and SameSite=Strict, and Secure unless this says
    # the server is plain HTTP on a loopback address (`./scripts/run`): then browsers would
    # not send a Secure cookie back. Ignored (Secure kept) when [http] host is not loopback.
    plain_http_loopback: bool = False
    # Reverse proxies in front of the server, comma-separated addresses: from them, the client's
    # address is the last one of X-Forwarded-For (throttling is per address). Empty: none, the
    # peer's address is the client's.
    trusted_proxies: str = ""
    password_min_length: int = _setting(12, 8)
    # AES key sealing the TOTP secrets (created 0600 on first start); keep it out of the
    # database's backups, or in a separate one.
    totp_key_file: str = "var/accounts/totp.key"
    totp_issuer: str = "Горячая линия"
    pin_digits: int = _setting(6, 4)
    # Back-off (hotline.accounts.throttle): failures free before waiting, and the longest wait.
    throttle_pair_free: int = _setting(3, 1)
    throttle_pair_max_delay: float = _setting(900.0, 1)
    throttle_address_free: int = _setting(20, 1)
    throttle_address_max_delay: float = _setting(900.0, 1)
    throttle_account_free: int = _setting(10, 1)
    throttle_account_max_delay: float = _setting(30.0, 1)
