"""Service keys: how the portal, the mobile app's backend and the CRM prove who they are.

A key is ``hlk_`` and 43 random URL-safe characters, printed once by `hotline apikeys add`;
the database keeps its SHA-256 only. Each key has a name (the system), scopes (what it may do,
``callbacks:create``...), an end date, and may be revoked at any time; its last use is kept.
A system presents it as ``Authorization: Bearer hlk_...`` and acts as
``Actor(user_id="service:<name>", role="", kind="service", scopes=...)``.

Creation and revocation are audit rows and security events (ACCOUNT_CHANGED); a revoked or
expired key presented is refused, audited and counted (ACCESS_DENIED); a key that will expire
within `EXPIRY_WARNING` is counted as KEY_EXPIRING when used, so an alert fires before a
system is cut off.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hotline.accounts.models import ServiceKeyRow
from hotline.accounts.records import AccountError
from hotline.accounts.secrets import new_random_token, sha256_hex
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.security import SecurityCategory, security_event

__all__ = ["KEY_PREFIX", "ServiceKey", "ServiceKeys", "parse_lifetime"]

KEY_PREFIX: Final = "hlk_"
EXPIRY_WARNING: Final = timedelta(days=14)
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SCOPE: Final = re.compile(r"^[a-z][a-z_]{0,30}:[a-z][a-z_]{0,30}$")
_LIFETIME: Final = re.compile(r"^(\d{1,4})([dh])$")
_MAX_LIFETIME: Final = timedelta(days=730)
# last_used_at is written at most this often per key: not one write per request
_NOTE_USE_EVERY: Final = timedelta(minutes=1)


@dataclass(frozen=True)
class ServiceKey:
    id: int
    name: str
    scopes: frozenset[str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


def parse_lifetime(text: str) -> timedelta:
    """``90d`` or ``12h`` -> timedelta (1 hour to 2 years); ValueError with the reason."""
    found = _LIFETIME.match(text.strip())
    if not found:
        raise ValueError(f"lifetime {text[:20]!r} must look like 90d or 12h")
    amount, unit = int(found[1]), found[2]
    lifetime = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if not timedelta(hours=1) <= lifetime <= _MAX_LIFETIME:
        raise ValueError("a key lives between 1 hour and 730 days")
    return lifetime


def _key_of(row: ServiceKeyRow) -> ServiceKey:
    return ServiceKey(
        id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class ServiceKeys:
    """Adds, lists, revokes and checks service keys (see the module's text)."""

    def __init__(
        self, engine: AsyncEngine, *, audit: AuditLog | None, clock: Callable[[], float]
    ) -> None:
        self._db = async_sessionmaker(engine, expire_on_commit=False)
        self._audit = audit
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def add(
        self, name: str, scopes: Iterable[str], lifetime: timedelta, *, by: Actor
    ) -> tuple[str, ServiceKey]:
        """A new key: (the key itself, to print once, its record)."""
        if not _NAME.match(name):
            raise AccountError(f"name {name[:50]!r} must be 1-40 of a-z, 0-9, '_' and '-'")
        wanted = sorted(set(scopes))
        bad = [s for s in wanted if not _SCOPE.match(s)]
        if not wanted or bad:
            raise AccountError(
                f"scopes must be like callbacks:create; got {', '.join(bad) or 'none'}"
            )
        key = new_random_token(KEY_PREFIX)
        now = self.now()
        row = ServiceKeyRow(
            name=name,
            key_sha256=sha256_hex(key),
            scopes=" ".join(wanted),
            created_by=by.user_id,
            created_at=now,
            expires_at=now + lifetime,
            revoked_at=None,
            last_used_at=None,
        )
        async with self._db.begin() as db:
            db.add(row)
        record = _key_of(row)
        await self._changed(by, "apikey.add", record, expires=record.expires_at.isoformat())
        return key, record

    async def list_keys(self) -> list[ServiceKey]:
        async with self._db() as db:
            rows = (await db.execute(select(ServiceKeyRow).order_by(ServiceKeyRow.id))).all()
        return [_key_of(row[0]) for row in rows]

    async def revoke(self, name: str, *, by: Actor) -> int:
        """Revoke every active key named `name`; returns how many (0: none was active)."""
        now = self.now()
        async with self._db.begin() as db:
            rows = (
                await db.execute(
                    select(ServiceKeyRow).where(
                        ServiceKeyRow.name == name, ServiceKeyRow.revoked_at.is_(None)
                    )
                )
            ).all()
            for (row,) in rows:
                row.revoked_at = now
        for (row,) in rows:
            await self._changed(by, "apikey.revoke", _key_of(row))
        return len(rows)

    async def check(self, key: str, source: str) -> Actor | None:
        """The service a presented key stands for, or None (refusals audited and counted)."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        digest = sha256_hex(key)
        async with self._db() as db:
            row = (
                await db.execute(select(ServiceKeyRow).where(ServiceKeyRow.key_sha256 == digest))
            ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.key_sha256, digest):
            security_event(SecurityCategory.ACCESS_DENIED, "unknown service key", source=source)
            return None
        record, now = _key_of(row), self.now()
        actor = Actor(f"service:{record.name}", "", kind="service", scopes=record.scopes)
        state = record.state(now)
        if state != "active":
            security_event(
                SecurityCategory.ACCESS_DENIED, f"{state} service key refused", key=record.name
            )
            await self._record(actor, "apikey.refused", record, "refused", source, state=state)
            return None
        if record.expires_at - now <= EXPIRY_WARNING:
            security_event(
                SecurityCategory.KEY_EXPIRING,
                "service key expires soon",
                key=record.name,
                expires=record.expires_at.isoformat(),
            )
        await self._note_use(record, now)
        return actor

    async def _note_use(self, record: ServiceKey, now: datetime) -> None:
        if record.last_used_at is not None and now - record.last_used_at < _NOTE_USE_EVERY:
            return
        async with self._db.begin() as db:
            await db.execute(
                update(ServiceKeyRow).where(ServiceKeyRow.id == record.id).values(last_used_at=now)
            )

    async def _changed(self, by: Actor, action: str, record: ServiceKey, **detail: str) -> None:
        security_event(
            SecurityCategory.ACCOUNT_CHANGED,
            f"{action} {record.name} by {by.user_id}",
            level=logging.INFO,
            key=record.name,
            by=by.user_id,
        )
        await self._record(by, action, record, "ok", "cli", **detail)

    async def _record(
        self,
        actor: Actor,
        action: str,
        record: ServiceKey,
        outcome: str,
        source: str,
        **detail: str,
    ) -> None:
        if self._audit is None:
            return
        await self._audit.record(
            actor,
            action,
            recording_id=None,
            source=source,
            outcome=outcome,
            detail={
                "key": record.name,
                "key_id": record.id,
                "scopes": sorted(record.scopes),
                **detail,
            },
        )
