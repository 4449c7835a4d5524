"""The durable call log: one row per call, written at call start and completed at hangup.

The schema is owned by the Alembic migrations in `hotline/store/migrations`; the models here
must match them (a test compares the two) and are never used to create tables.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Dialect,
    Index,
    String,
    TypeDecorator,
    UniqueConstraint,
    event,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime

from hotline.private import create_parents, open_private, tighten

__all__ = [
    "Base",
    "CallLog",
    "CallRecord",
    "UTCDateTime",
    "create_engine",
    "require_utc",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime, the only form the call log stores."""
    return datetime.now(UTC)


def require_utc(value: datetime, name: str = "datetime") -> datetime:
    """Convert an aware datetime to UTC; refuse naive ones, whose zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back as aware UTC, on SQLite as well as PostgreSQL.

    SQLite has no time zone type and hands back naive values; PostgreSQL's timestamptz hands
    back aware ones. Normalising here keeps callers from ever comparing naive with aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base for the call log; its metadata is the migrations' autogenerate target."""


class CallRecord(Base):
    """One call handled by the controller, keyed by Asterisk's channel uniqueid.

    Text columns have no length limit on purpose: an unusually long caller name must never
    cost us the record of the call.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("call_id", name="uq_calls_call_id"),
        Index("ix_calls_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String)
    channel: Mapped[str] = mapped_column(String)
    dialled_number: Mapped[str] = mapped_column(String)
    caller_id: Mapped[str] = mapped_column(String)
    script: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String, nullable=True)
    node: Mapped[str] = mapped_column(String)

    def __repr__(self) -> str:
        return (
            f"CallRecord(call_id={self.call_id!r}, started_at={self.started_at!r}, "
            f"outcome={self.outcome!r})"
        )


SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_TIMEOUT_SECONDS = 120.0


def create_engine(url: str) -> AsyncEngine:
    """Build the async engine for `url`, preparing SQLite so that it behaves under concurrency.

    For a SQLite file the parent directory is created (a fresh node has no data directory yet),
    and every connection gets WAL (readers do not block the writer) and foreign keys (off by
    default in SQLite, on in every other database we might move to).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _create_async_engine(url, pool_pre_ping=True)
    _ensure_sqlite_parent(parsed.database)
    # SQLite takes one writer at a time, so under a burst the pool's connections all wait on
    # the write lock (busy_timeout) and callers queue for a connection behind them; a loaded
    # CI saw that queue pass the pool's default 30 s and a call's row was lost. A row written
    # late is better than none.
    engine = _create_async_engine(url, pool_timeout=SQLITE_POOL_TIMEOUT_SECONDS)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def sqlite_zeroes_freed_space(engine: AsyncEngine) -> bool:
    """Whether `engine` (SQLite) was made by `create_engine`, whose connections zero freed
    space (``secure_delete``)."""
    return event.contains(engine.sync_engine, "connect", _sqlite_on_connect)


def _ensure_sqlite_parent(database: str | None) -> None:
    """Create the SQLite file 0600 (in private directories when they are missing), unless the
    database is in memory. It holds callers' numbers: SQLite alone would create it 0644, and
    its -wal, -shm and -journal files copy the database file's mode, so they follow."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    create_parents(path)
    with contextlib.suppress(FileExistsError):  # an empty file is a new SQLite database
        open_private(path, exclusive=True).close()
    for companion in ("", "-wal", "-shm", "-journal"):  # made 0644 by an older version
        tighten(path.with_name(path.name + companion))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite pragmas; they are connection settings, not schema."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Writers queue for the one write lock. The driver's 5 s wait ran out on a loaded
        # 2-core machine during a 1,500-call hour ("database is locked": a call's outcome
        # lost); a write that waits longer than this has a real problem behind it.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Freed pages are zeroed: a deleted or overwritten value (a shredded data key, a
        # purged phone number) cannot be read back from the file's free space.
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


class CallLog:
    """Writes and reads call records; safe to call from many concurrent AGI sessions.

    Each method uses its own short session, so a slow caller never holds a transaction open.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def call_started(
        self,
        call_id: str,
        *,
        channel: str,
        dialled_number: str,
        caller_id: str,
        script: str,
        node: str,
        started_at: datetime | None = None,
    ) -> CallRecord:
        """Record a new call and return the stored row.

        Idempotent: AGI retries and a second node seeing the same call must not create a
        duplicate or fail, so a repeated call_id keeps the first row and returns it unchanged.
        """
        values = {
            "call_id": call_id,
            "channel": channel,
            "dialled_number": dialled_number,
            "caller_id": caller_id,
            "script": script,
            "node": node,
            "started_at": require_utc(started_at or utc_now(), "started_at"),
        }
        async with self._sessions.begin() as session:  # one connection for both statements
            await self._insert_if_absent(session, values)
            stmt = select(CallRecord).where(CallRecord.call_id == call_id)
            record = (await session.execute(stmt)).scalar_one_or_none()
        if record is None:  # pragma: no cover - would mean the row vanished between statements
            raise RuntimeError(f"call {call_id!r} was not stored")
        return record

    async def _insert_if_absent(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING, so concurrent duplicates cannot race to an error."""
        dialect = self._engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite_insert if dialect == "sqlite" else pg_insert
            stmt = insert(CallRecord).values(**values)
            await session.execute(stmt.on_conflict_do_nothing(index_elements=["call_id"]))
            return
        try:  # other databases: a savepoint keeps the outer transaction usable
            async with session.begin_nested():
                session.add(CallRecord(**values))
        except IntegrityError:
            pass

    async def call_ended(
        self, call_id: str, outcome: str, ended_at: datetime | None = None
    ) -> bool:
        """Close a call's record; False if the call was never recorded (nothing is invented).

        Repeating it overwrites with the latest values, so a retried hangup is harmless.
        """
        when = require_utc(ended_at or utc_now(), "ended_at")
        stmt = (
            update(CallRecord)
            .where(CallRecord.call_id == call_id)
            .values(ended_at=when, outcome=outcome)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def get(self, call_id: str) -> CallRecord | None:
        """The record for one call, or None if it was never started."""
        async with self._sessions() as session:
            stmt = select(CallRecord).where(CallRecord.call_id == call_id)
            return (await session.execute(stmt)).scalar_one_or_none()

    async def recent(self, limit: int = 50) -> list[CallRecord]:
        """The newest calls first, for the operator dashboard and for debugging."""
        if limit <= 0:
            return []
        stmt = (
            select(CallRecord)
            .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.execute(stmt)).scalars())
