"""The `recordings` table and `RecordingStore`, the one way the recorder's parts touch it.

One row per recorded call, keyed by the call id (Asterisk's uniqueid, which is also the spool
file's stem). The schema is owned by migration `0003_recordings` (branch "recorder"); the model
here must match it and is never used to create tables.

Columns, for the access, retention and audit modules:

* identity and call: `call_id` (unique), `dialled_number`, `operator` (agent id or None when
  the caller never reached one), `started_at`, `ended_at`, `duration_seconds` (of the audio).
* object: `format` ("opus", "wav", ...: what decrypts out), `plain_size`/`plain_sha256` (the
  transcoded audio), `cipher_size`/`cipher_sha256` (the stored object), `storage_backend`
  ("local" | "s3") and `storage_key` (the object's key in it).
* key: `key_id`, `key_version`, `wrapped_key` (see `recorder.keys`; `wrapped_key` is None once
  the data key is destroyed, `key_destroyed_at` says when).
* retention: `retention_category`, `retention_until` (purge due after it), `legal_hold` (True
  stops the purge), `purged_at`.
* pipeline: `state` (see `State`), `attempts`, `last_error`, `created_at`, `updated_at`.

States advance in this order, each step idempotent and keyed by call id:

    spooled -> transcoded -> encrypted -> stored -> verified -> purged

The pipeline goes spooled -> encrypted -> verified (one update per step: see
`recorder.pipeline`); `transcoded` and `stored` are states an older version committed, still
resumed, and where a rewind may put a row.

`verified` is the only state where the spool file may already be gone and the object is
known good; retention purges `verified` rows only (and never with `legal_hold`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from hotline.store.db import Base, UTCDateTime, require_utc, utc_now
from recorder import keys

__all__ = ["RecordedCall", "RecordingStore", "State"]


class State(StrEnum):
    """Where a recording is in the pipeline; the order is the pipeline's order."""

    SPOOLED = "spooled"
    TRANSCODED = "transcoded"
    ENCRYPTED = "encrypted"
    STORED = "stored"
    VERIFIED = "verified"
    PURGED = "purged"


UNFINISHED_STATES: tuple[State, ...] = (
    State.SPOOLED,
    State.TRANSCODED,
    State.ENCRYPTED,
    State.STORED,
)


class RecordedCall(Base):
    """One recorded call. Text columns have no length limit: a long id must not lose a call."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("call_id", name="uq_recordings_call_id"),
        Index("ix_recordings_state", "state"),
        Index("ix_recordings_retention_until", "retention_until"),
        Index("ix_recordings_operator_started", "operator", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String)
    dialled_number: Mapped[str] = mapped_column(String, default="")
    operator: Mapped[str | None] = mapped_column(String, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    format: Mapped[str] = mapped_column(String)
    plain_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plain_sha256: Mapped[str | None] = mapped_column(String, nullable=True)
    cipher_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cipher_sha256: Mapped[str | None] = mapped_column(String, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String, nullable=True)
    key_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    storage_backend: Mapped[str | None] = mapped_column(String, nullable=True)
    storage_key: Mapped[str | None] = mapped_column(String, nullable=True)
    retention_category: Mapped[str] = mapped_column(String, default="default")
    retention_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String, default=State.SPOOLED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:  # no wrapped key, no dialled number in logs
        return f"RecordedCall(call_id={self.call_id!r}, state={self.state!r})"


class RecordingStore:
    """Reads and writes `recordings` rows; each method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def register(
        self,
        call_id: str,
        *,
        format: str,
        started_at: datetime,
        dialled_number: str = "",
        operator: str | None = None,
        ended_at: datetime | None = None,
        retention_category: str = "default",
    ) -> RecordedCall:
        """Create the row in state `spooled`, or return the existing one unchanged.

        Idempotent by call id: a repeated notification or a restarted worker never makes a
        second row, and concurrent registrations cannot race to an error.
        """
        now = utc_now()
        values: dict[str, Any] = {
            "call_id": call_id,
            "format": format,
            "started_at": require_utc(started_at, "started_at"),
            "ended_at": require_utc(ended_at, "ended_at") if ended_at else None,
            "dialled_number": dialled_number,
            "operator": operator,
            "retention_category": retention_category,
            "state": State.SPOOLED.value,
            "legal_hold": False,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        insert = sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert
        stmt = (
            insert(RecordedCall)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["call_id"])
            .returning(RecordedCall)
        )
        async with self.sessions.begin() as session:
            created = (await session.execute(stmt)).scalar_one_or_none()
        # a new row comes back from the INSERT itself; only an existing one is read again
        row = created if created is not None else await self.get(call_id)
        if row is None:  # pragma: no cover - the row cannot vanish between two statements
            raise RuntimeError(f"recording {call_id!r} was not stored")
        return row

    async def get(self, call_id: str) -> RecordedCall | None:
        async with self.sessions() as session:
            stmt = select(RecordedCall).where(RecordedCall.call_id == call_id)
            return (await session.execute(stmt)).scalar_one_or_none()

    async def registered(self, call_ids: Sequence[str], batch: int = 500) -> list[str]:
        """Those of `call_ids` that have a row, in one query per `batch` ids."""
        found: list[str] = []
        async with self.sessions() as session:
            for first in range(0, len(call_ids), batch):
                wanted = call_ids[first : first + batch]
                stmt = select(RecordedCall.call_id).where(RecordedCall.call_id.in_(wanted))
                found += (await session.execute(stmt)).scalars()
        return found

    async def update(self, call_id: str, **values: Any) -> None:
        """Set columns of one row (and `updated_at`)."""
        values["updated_at"] = utc_now()
        async with self.sessions.begin() as session:
            await session.execute(
                update(RecordedCall).where(RecordedCall.call_id == call_id).values(**values)
            )

    async def advance(
        self, call_id: str, expected: State, new: State, **values: Any
    ) -> RecordedCall | None:
        """Move a row from `expected` to `new` state (compare-and-set) and return it as it now
        is (the pipeline goes on without reading it again); None if it was not in `expected`,
        which means another worker (or an earlier run) already did the step. The last error is
        cleared unless `values` sets it."""
        values = {"last_error": None, **values, "state": new.value, "updated_at": utc_now()}
        table = cast(Table, RecordedCall.__table__)
        stmt = (
            update(table)
            .where(table.c.call_id == call_id, table.c.state == expected.value)
            .values(**values)
            .returning(*table.c)
        )
        # Core on a bare connection: the ORM session's update path (key resolution, identity
        # map) cost ~0.7 ms of CPU per call, and every recording takes two of these
        async with self.engine.begin() as connection:
            advanced = (await connection.execute(stmt)).one_or_none()
        return None if advanced is None else RecordedCall(**advanced._mapping)

    async def note_failure(self, call_id: str, error: str) -> None:
        """Count a failed attempt and keep the latest reason (for the operator's eyes)."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(RecordedCall)
                .where(RecordedCall.call_id == call_id)
                .values(
                    attempts=RecordedCall.attempts + 1,
                    last_error=error[:2000],
                    updated_at=utc_now(),
                )
            )

    async def in_states(self, states: Sequence[State], limit: int = 1000) -> list[RecordedCall]:
        """Rows in any of `states`, oldest first."""
        stmt = (
            select(RecordedCall)
            .where(RecordedCall.state.in_([s.value for s in states]))
            .order_by(RecordedCall.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def unfinished(self, limit: int = 1000) -> list[RecordedCall]:
        """Rows the pipeline still has work on (restart recovery starts from these)."""
        return await self.in_states(UNFINISHED_STATES, limit)

    async def destroy_key(self, call_id: str) -> bool:
        """Crypto-shred one recording (see `recorder.keys.destroy`) and commit; False if the
        call has no recording. Idempotent."""
        async with self.sessions.begin() as session:
            stmt = select(RecordedCall).where(RecordedCall.call_id == call_id).with_for_update()
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return False
            if row.wrapped_key is not None:
                keys.destroy(row)
                row.key_destroyed_at = utc_now()
                row.updated_at = row.key_destroyed_at
        return True

    async def with_key_not(self, key_id: str, version: int, limit: int = 500) -> list[RecordedCall]:
        """Rows whose live data key is wrapped by something other than `key_id` v`version`
        (what `hotline recorder rewrap` must move)."""
        stmt = (
            select(RecordedCall)
            .where(
                RecordedCall.wrapped_key.is_not(None),
                (RecordedCall.key_id != key_id) | (RecordedCall.key_version != version),
            )
            .order_by(RecordedCall.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def replace_wrapped_key(
        self, call_id: str, old: keys.WrappedKey, new: keys.WrappedKey
    ) -> bool:
        """Swap a row's wrapped key for its rewrap, only if it still holds `old` (a purge or
        another rewrap in between wins); True if swapped."""
        stmt = (
            update(RecordedCall)
            .where(
                RecordedCall.call_id == call_id,
                RecordedCall.wrapped_key == old.wrapped,
                RecordedCall.key_id == old.key_id,
                RecordedCall.key_version == old.key_version,
            )
            .values(
                key_id=new.key_id,
                key_version=new.key_version,
                wrapped_key=new.wrapped,
                updated_at=utc_now(),
            )
        )
        async with self.sessions.begin() as session:
            result = await session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))
