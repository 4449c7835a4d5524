"""The app's "call the hotline" button: a one-time code that ties a call to an application.

The app's backend has authenticated the citizen; it registers their phone and application
number (`CallIntents.register`) and shows them a 6-digit code valid a few minutes. When a call
from that phone keys in that code in time (`CallIntents.redeem`), the menu takes the
application number as known and the operator's pop shows it. Caller ID can be forged, so the
phone alone proves nothing: the code is required, it works once, and a few wrong codes from a
phone burn every live code of that phone (a forger gets `intent_wrong_codes` guesses at 10^6
codes, then nothing).

Codes are kept as SHA-256 of phone and code, never in clear; the table's rows are personal
data and the retention job's `purge_expired` deletes them once spent or expired. The limits
are counted in the shared database so every controller node counts together.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import (
    Column,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from hotline.clock import wall_clock
from hotline.store.db import Base, UTCDateTime
from workspace.settings import WorkspaceSettings

__all__ = ["CODE_DIGITS", "CallIntents", "IssuedCode", "TooManyIntents", "intents_table"]

CODE_DIGITS: Final = 6

intents_table = Table(
    "call_intents",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String, nullable=False),
    Column("application_number", String, nullable=False),
    Column("code_hash", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("wrong_codes", Integer, nullable=False),
    Column("requested_by", String, nullable=False),
    Index("ix_call_intents_phone", "phone", "created_at"),
)


class TooManyIntents(Exception):
    """This phone asked for more codes this hour than the settings allow."""


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime


def _hash(phone: str, code: str) -> str:
    return hashlib.sha256(f"hotline-intent:{phone}:{code}".encode()).hexdigest()


class CallIntents:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: WorkspaceSettings,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def register(self, phone: str, application: str, requested_by: str) -> IssuedCode:
        """A fresh code for `phone` (normalised) and `application`; `TooManyIntents` past the
        hourly limit."""
        now = self.now()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        expires = now + timedelta(seconds=self._settings.intent_code_seconds)
        recent = select(func.count()).where(
            intents_table.c.phone == phone,
            intents_table.c.created_at > now - timedelta(hours=1),
        )
        async with self._engine.begin() as connection:
            if (await connection.execute(recent)).scalar_one() >= (
                self._settings.intents_per_phone_per_hour
            ):
                raise TooManyIntents()
            await connection.execute(
                insert(intents_table).values(
                    phone=phone, application_number=application, code_hash=_hash(phone, code),
                    created_at=now, expires_at=expires, used_at=None, wrong_codes=0,
                    requested_by=requested_by,
                )
            )  # fmt: skip
        return IssuedCode(code, expires)

    async def redeem(self, phone: str, code: str) -> str | None:
        """The application number of a live code `phone` registered, spending it; None for a
        wrong, expired or spent code (which counts against the phone's live codes)."""
        if not phone or len(code) != CODE_DIGITS or not code.isdigit():
            return None
        now = self.now()
        live = (
            intents_table.c.phone == phone,
            intents_table.c.used_at.is_(None),
            intents_table.c.expires_at > now,
        )
        async with self._engine.begin() as connection:
            match = select(intents_table.c.id, intents_table.c.application_number).where(
                *live, intents_table.c.code_hash == _hash(phone, code)
            )
            row = (await connection.execute(match.limit(1))).first()
            if row is not None:
                spend = update(intents_table).where(intents_table.c.id == row.id, *live)
                done = await connection.execute(spend.values(used_at=now))
                return row.application_number if done.rowcount else None
            await self._count_wrong(connection, live, now)
        return None

    async def _count_wrong(
        self, connection: AsyncConnection, live: tuple[ColumnElement[bool], ...], now: datetime
    ) -> None:
        limit = self._settings.intent_wrong_codes
        wrong = intents_table.c.wrong_codes + 1
        await connection.execute(update(intents_table).where(*live).values(wrong_codes=wrong))
        burn = update(intents_table).where(*live, intents_table.c.wrong_codes >= limit)
        await connection.execute(burn.values(used_at=now))

    async def purge_spent(self) -> int:
        """Delete spent and expired codes (they are personal data and serve nothing more)."""
        now = self.now()
        gone = delete(intents_table).where(
            or_(intents_table.c.used_at.is_not(None), intents_table.c.expires_at <= now)
        )
        async with self._engine.begin() as connection:
            return int((await connection.execute(gone)).rowcount)
