"""Server-side sessions: the browser holds a random token, the database only its SHA-256.

A session ends when unused for `idle_timeout` seconds, `absolute_timeout` seconds after the
login, at logout, or when its account is disabled or reset; a login left half-way (password
given, code not yet) ends 15 minutes after it began. Each new login also deletes the rows of
sessions that have ended without being presented again, so abandoned ones do not pile up.
Every step of the login that raises what a session may do (password, then second factor)
replaces the token with a new one, so a token planted in a browser before the login
(fixation) never becomes a logged-in one.
Each session carries its own CSRF token, which forms and scripts echo (`hotline.access`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hotline.accounts.models import StaffAccountRow, StaffSessionRow
from hotline.accounts.records import SessionView, StaffAccount, Stage
from hotline.accounts.secrets import new_random_token, sha256_hex

__all__ = ["SessionStore", "SessionTimeouts", "account_of_row"]

# last_seen_at is written at most this often: not one write per API request.
_TOUCH_EVERY = timedelta(seconds=15)
# A login left half-way (password given, no code yet) ends sooner than a session.
LOGIN_STEPS_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class SessionTimeouts:
    idle: float = 1800.0
    absolute: float = 43200.0


def account_of_row(row: StaffAccountRow) -> StaffAccount:
    return StaffAccount(
        id=row.id,
        name=row.name,
        role=row.role,
        disabled=row.disabled,
        totp_enrolled=row.totp_enrolled,
        has_pin=row.pin_hash is not None,
        must_change_password=row.must_change_password,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SessionStore:
    """Creates, reads (applying the timeouts), promotes and ends sessions."""

    def __init__(
        self, engine: AsyncEngine, timeouts: SessionTimeouts, clock: Callable[[], float]
    ) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.timeouts = timeouts
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def create(self, account_id: str, stage: Stage, address: str) -> str:
        """A new session; returns its token (for the cookie, never stored)."""
        token = new_random_token()
        now = self.now()
        row = StaffSessionRow(
            token_sha256=sha256_hex(token),
            account_id=account_id,
            stage=stage.value,
            csrf_token=secrets.token_urlsafe(32),
            address=address[:200],
            created_at=now,
            last_seen_at=now,
        )
        async with self._sessions.begin() as db:
            await db.execute(delete(StaffSessionRow).where(self._ended_by(now)))
            db.add(row)
        return token

    def _ended_by(self, now: datetime) -> Any:
        """SQL: the sessions that have ended by `now` (see `_expired`)."""
        return or_(
            StaffSessionRow.last_seen_at <= now - timedelta(seconds=self.timeouts.idle),
            StaffSessionRow.created_at <= now - timedelta(seconds=self.timeouts.absolute),
            and_(
                StaffSessionRow.stage != Stage.FULL.value,
                StaffSessionRow.created_at <= now - LOGIN_STEPS_TIMEOUT,
            ),
        )

    async def count(self) -> int:
        async with self._sessions() as db:
            return len((await db.execute(select(StaffSessionRow.token_sha256))).all())

    async def get(self, token: str) -> SessionView | None:
        """The session of `token` if it is still alive (touching it), else None."""
        if not token or len(token) > 200:
            return None
        digest = sha256_hex(token)
        now = self.now()
        async with self._sessions.begin() as db:
            found = (
                await db.execute(
                    select(StaffSessionRow, StaffAccountRow)
                    .join(StaffAccountRow, StaffAccountRow.id == StaffSessionRow.account_id)
                    .where(StaffSessionRow.token_sha256 == digest)
                )
            ).first()
            if found is None:
                return None
            session, account = found
            if account.disabled or self._expired(session, now):
                await db.delete(session)
                return None
            if now - session.last_seen_at >= _TOUCH_EVERY:
                session.last_seen_at = now
            return SessionView(
                account_of_row(account),
                Stage(session.stage),
                session.csrf_token,
                session.created_at,
                session.last_seen_at,
            )

    def _expired(self, session: StaffSessionRow, now: datetime) -> bool:
        age = now - session.created_at
        idle = now - session.last_seen_at >= timedelta(seconds=self.timeouts.idle)
        over = age >= timedelta(seconds=self.timeouts.absolute)
        half_way = session.stage != Stage.FULL.value and age >= LOGIN_STEPS_TIMEOUT
        return idle or over or half_way

    async def promote(self, token: str, stage: Stage) -> str:
        """Move the session to `stage` under a new token (and CSRF token); returns the token.
        The absolute timeout still counts from the first step of the login."""
        digest = sha256_hex(token)
        new_token = new_random_token()
        async with self._sessions.begin() as db:
            await db.execute(
                update(StaffSessionRow)
                .where(StaffSessionRow.token_sha256 == digest)
                .values(
                    token_sha256=sha256_hex(new_token),
                    stage=stage.value,
                    csrf_token=secrets.token_urlsafe(32),
                    last_seen_at=self.now(),
                )
            )
        return new_token

    async def destroy(self, token: str) -> None:
        async with self._sessions.begin() as db:
            await db.execute(
                delete(StaffSessionRow).where(StaffSessionRow.token_sha256 == sha256_hex(token))
            )

    async def destroy_all_of(self, account_id: str) -> int:
        async with self._sessions.begin() as db:
            result = await db.execute(
                delete(StaffSessionRow).where(StaffSessionRow.account_id == account_id)
            )
        return int(getattr(result, "rowcount", 0) or 0)
