"""What the accounts hand out: a staff account as read, a session's view, the login stages,
and the refusals (a plain Russian sentence for the person, a reason for the log)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from hotline.auth import TOKEN_ROLES

__all__ = [
    "ACCOUNT_ID",
    "AccountError",
    "LoginRefused",
    "SessionView",
    "StaffAccount",
    "Stage",
    "check_account_id",
    "check_role",
]

# The id operators.yaml, the seats and the audit log share: short, plain, lower case.
ACCOUNT_ID: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AccountError(ValueError):
    """Bad input to an account command (unknown id, bad role, short password): the message
    says what to fix."""


class LoginRefused(Exception):
    """A login step refused: `message_ru` for the page, `retry_after` seconds when throttled."""

    def __init__(self, message_ru: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message_ru)
        self.message_ru = message_ru
        self.retry_after = retry_after


class Stage(StrEnum):
    """Where a session is in the login: only FULL counts for anything but the login pages."""

    CHANGE_PASSWORD = "change_password"  # logged in with a one-time password
    ENROL = "enrol"  # password good, TOTP not set up yet
    TOTP = "totp"  # password good, waiting for the code (or a recovery code)
    FULL = "full"


@dataclass(frozen=True)
class StaffAccount:
    id: str
    name: str
    role: str
    disabled: bool
    totp_enrolled: bool
    has_pin: bool
    must_change_password: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SessionView:
    """A live session as the pages and the lookup see it (never its token)."""

    account: StaffAccount
    stage: Stage
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


def check_account_id(account_id: str) -> str:
    if not ACCOUNT_ID.match(account_id):
        raise AccountError(
            f"id {account_id[:80]!r} must be 1-64 lower-case Latin letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (the id operators.yaml uses)"
        )
    return account_id


def check_role(role: str) -> str:
    if role not in TOKEN_ROLES:
        raise AccountError(f"role {role[:40]!r} is not one of {', '.join(sorted(TOKEN_ROLES))}")
    return role
