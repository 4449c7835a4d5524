"""The audit log: append-only and hash-chained, checked by `hotline audit verify`.

Shared by every part that must leave a trace of who did what (the recorder's accesses to
recordings, the ACD administration API's edits); the table keeps its first name,
`recording_audit` (migration 0004_audit). Every access to a recording and every refused
attempt becomes one row of it: who (user id and role), what (action and recording id), when,
from where, the outcome and a small JSON detail. Each row carries
`hash = sha256(prev_hash + canonical JSON of the row)`, where `prev_hash` is the hash of the
row before it (64 zeros for the first), so editing, deleting, reordering or inserting a row
breaks the chain at that point.

Append-only is enforced three times: this module has no update or delete path; the migration
installs triggers refusing UPDATE/DELETE (and TRUNCATE on PostgreSQL); and the verifier finds
what someone who dropped the triggers did. A chain cannot reveal rows cut off its *end*, nor a
chain rewritten wholesale; for that `verify` prints the head (`#seq hash`), which an admin keeps
outside the database and passes back as `--anchor`.

Appends are serialised so that two writers never fork the chain: PostgreSQL takes a
transaction-scoped advisory lock, SQLite a write lock up front (`BEGIN IMMEDIATE`), both before
reading the head. The unique `seq` primary key and unique `hash` would stop a fork anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import BigInteger, Index, String, UniqueConstraint, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from hotline.auth import Actor
from hotline.store.db import Base, UTCDateTime, require_utc, utc_now

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "ChainBreak",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "parse_anchor",
]

GENESIS_HASH: Final = "0" * 64
# Arbitrary constant naming "the audit chain" among PostgreSQL advisory locks.
_PG_LOCK_KEY: Final = 0x4A7D1E0C
_VERIFY_BATCH: Final = 1000


class AuditEntry(Base):
    """One row of the audit log (schema owned by migration 0004_audit; a test compares them)."""

    __tablename__ = "recording_audit"
    __table_args__ = (
        UniqueConstraint("hash", name="uq_recording_audit_hash"),
        Index("ix_recording_audit_recording_id", "recording_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    recording_id: Mapped[str | None] = mapped_column(String, nullable=True)
    source: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String)
    detail: Mapped[str] = mapped_column(String)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class AuditRecord:
    """One audit entry as read back or just written."""

    seq: int
    at: datetime
    user_id: str
    role: str
    action: str
    recording_id: str | None
    source: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str

    @property
    def detail_data(self) -> dict[str, Any]:
        loaded = json.loads(self.detail)
        return loaded if isinstance(loaded, dict) else {}

    def hashed_fields(self) -> dict[str, Any]:
        return _hashed_fields(
            self.at,
            self.user_id,
            self.role,
            self.action,
            self.recording_id,
            self.source,
            self.outcome,
            self.detail,
        )


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hashed_fields(
    at: datetime,
    user_id: str,
    role: str,
    action: str,
    recording_id: str | None,
    source: str,
    outcome: str,
    detail: str,
) -> dict[str, Any]:
    # `seq` is left out on purpose: order is proven by the links, so a renumbered row shows up
    # as reordered/inserted/deleted rather than as an edit.
    return {
        "at": require_utc(at, "at").isoformat(timespec="microseconds"),
        "user_id": user_id,
        "role": role,
        "action": action,
        "recording_id": recording_id,
        "source": source,
        "outcome": outcome,
        "detail": detail,
    }


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the entry), hex."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        user_id=row.user_id,
        role=row.role,
        action=row.action,
        recording_id=row.recording_id,
        source=row.source,
        outcome=row.outcome,
        detail=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold: the entry and a sentence saying why."""

    seq: int
    kind: str  # edited | deleted | reordered | inserted | anchor
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification: the entries checked, the head, and the first break if any."""

    entries: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def describe(self) -> str:
        if self.broken is not None:
            return (
                f"audit log BROKEN at entry #{self.broken.seq} ({self.broken.kind}): "
                f"{self.broken.message}"
            )
        if not self.entries:
            return "audit log is empty"
        return (
            f"audit log intact: {self.entries} entries; head #{self.head_seq} {self.head_hash} "
            "(keep this line outside the database and check it later with --anchor)"
        )


def parse_anchor(value: str) -> tuple[int, str]:
    """`SEQ:HASH` (as printed by verify, `#` optional) -> (seq, hash); ValueError if malformed."""
    seq_text, sep, digest = value.strip().lstrip("#").partition(":")
    digest = digest.strip().lower()
    if not sep or not seq_text.strip().isdigit() or len(digest) != 64:
        raise ValueError(f"anchor {value!r} must look like SEQ:HASH (64 hex digits)")
    try:
        bytes.fromhex(digest)
    except ValueError:
        raise ValueError(f"anchor {value!r}: hash is not hexadecimal") from None
    return int(seq_text), digest


class AuditLog:
    """Appends to and verifies the audit chain; safe for concurrent writers and processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditRecord:
        """Append one entry and return it once committed."""
        when = require_utc(at or utc_now(), "at")
        detail_text = canonical_json(dict(detail or {}))
        fields = _hashed_fields(
            when, actor.user_id, actor.role, action, recording_id, source, outcome, detail_text
        )
        async with self._engine.connect() as connection:
            await self._lock_chain(connection)
            head = await _head(connection)
            seq = head[0] + 1
            prev_hash = head[1]
            digest = entry_hash(prev_hash, fields)
            values: dict[str, Any] = {
                "seq": seq,
                "at": when,
                "user_id": actor.user_id,
                "role": actor.role,
                "action": action,
                "recording_id": recording_id,
                "source": source,
                "outcome": outcome,
                "detail": detail_text,
                "prev_hash": prev_hash,
                "hash": digest,
            }
            await connection.execute(insert(AuditEntry).values(**values))
            await connection.commit()
        return AuditRecord(**values)

    async def _lock_chain(self, connection: AsyncConnection) -> None:
        """Take the chain's write lock inside the connection's (new) transaction."""
        if self._engine.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
            )
        elif self._engine.dialect.name == "sqlite":
            # The sqlite3 module would only BEGIN (deferred) at the INSERT, after we read the
            # head; IMMEDIATE takes the write lock now, so the head cannot move under us.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry; (0, GENESIS_HASH) for an empty log."""
        async with self._engine.connect() as connection:
            return await _head(connection)

    async def entries(
        self, *, recording_id: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditRecord]:
        """Entries in chain order, optionally for one recording."""
        stmt = select(AuditEntry.__table__).where(AuditEntry.seq > after_seq)
        if recording_id is not None:
            stmt = stmt.where(AuditEntry.recording_id == recording_id)
        stmt = stmt.order_by(AuditEntry.seq).limit(limit)
        async with self._engine.connect() as connection:
            return [_record(row) for row in await connection.execute(stmt)]

    async def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Recompute the whole chain; report the first broken entry (and check `anchor`)."""
        async with self._engine.connect() as connection:

            async def seq_of_hash(digest: str) -> int | None:
                stmt = select(AuditEntry.seq).where(AuditEntry.hash == digest)
                return (await connection.execute(stmt)).scalar_one_or_none()

            checker = _ChainChecker(seq_of_hash)
            async for record in _all_entries(connection):
                broken = await checker.feed(record)
                if broken is not None:
                    return checker.report(broken)
            broken = await checker.finish()
            if broken is None and anchor is not None:
                broken = await _check_anchor(connection, anchor, checker.head_seq)
            return checker.report(broken)


async def _head(connection: AsyncConnection) -> tuple[int, str]:
    stmt = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    row = (await connection.execute(stmt)).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))


async def _all_entries(connection: AsyncConnection) -> AsyncIterator[AuditRecord]:
    """Every entry in seq order, read in batches so a long log does not fill memory."""
    after: int | None = None
    while True:
        stmt = select(AuditEntry.__table__).order_by(AuditEntry.seq).limit(_VERIFY_BATCH)
        if after is not None:
            stmt = stmt.where(AuditEntry.seq > after)
        rows = [_record(row) for row in await connection.execute(stmt)]
        for record in rows:
            yield record
        if len(rows) < _VERIFY_BATCH:
            return
        after = rows[-1].seq


async def _check_anchor(
    connection: AsyncConnection, anchor: tuple[int, str], head_seq: int
) -> ChainBreak | None:
    seq, digest = anchor
    if seq > head_seq:
        return ChainBreak(
            head_seq + 1,
            "deleted",
            f"the log ends at #{head_seq}, but the anchor says entry #{seq} existed: "
            "entries at the end were deleted",
        )
    stored = (
        await connection.execute(select(AuditEntry.hash).where(AuditEntry.seq == seq))
    ).scalar_one_or_none()
    if stored != digest:
        return ChainBreak(
            seq,
            "anchor",
            f"entry #{seq} has hash {stored}, the anchor says {digest}: the log was rewritten",
        )
    return None


class _ChainChecker:
    """Walks entries in seq order with one entry of look-ahead, to tell the kinds of break apart.

    An entry is judged when the one after it arrives (or at the end), because "this entry was
    inserted" is visible only in its successor linking past it.
    """

    def __init__(self, seq_of_hash: Callable[[str], Awaitable[int | None]]) -> None:
        self._seq_of_hash = seq_of_hash
        self._before_previous: AuditRecord | None = None
        self._previous: AuditRecord | None = None
        self._pending: AuditRecord | None = None
        self.count = 0
        self.head_seq = 0
        self.head_hash = GENESIS_HASH

    def report(self, broken: ChainBreak | None) -> VerifyReport:
        return VerifyReport(self.count, self.head_seq, self.head_hash, broken)

    async def feed(self, record: AuditRecord) -> ChainBreak | None:
        self.count += 1
        pending, self._pending = self._pending, record
        if pending is None:
            return None
        return await self._judge(pending, record)

    async def finish(self) -> ChainBreak | None:
        pending, self._pending = self._pending, None
        return None if pending is None else await self._judge(pending, None)

    async def _judge(self, entry: AuditRecord, following: AuditRecord | None) -> ChainBreak | None:
        previous = self._previous
        expected_prev = previous.hash if previous else GENESIS_HASH
        content_ok = entry_hash(entry.prev_hash, entry.hashed_fields()) == entry.hash
        if entry.prev_hash == expected_prev:
            if not content_ok:
                return ChainBreak(
                    entry.seq,
                    "edited",
                    f"entry #{entry.seq} was edited: its content no longer matches its hash",
                )
            self._before_previous, self._previous = previous, entry
            self.head_seq, self.head_hash = entry.seq, entry.hash
            return None
        return await self._broken_link(entry, following, previous, expected_prev)

    async def _broken_link(
        self,
        entry: AuditRecord,
        following: AuditRecord | None,
        previous: AuditRecord | None,
        expected_prev: str,
    ) -> ChainBreak:
        after = f"entry #{previous.seq}" if previous else "the start of the log"
        linked_seq = await self._seq_of_hash(entry.prev_hash)
        if linked_seq is not None and linked_seq > entry.seq:
            return ChainBreak(
                entry.seq,
                "reordered",
                f"entry #{entry.seq} is out of order: it continues entry #{linked_seq}, "
                f"which comes after it, instead of {after}",
            )
        if following is not None and following.prev_hash == expected_prev:
            return ChainBreak(
                entry.seq,
                "inserted",
                f"entry #{entry.seq} was inserted: it is not part of the chain, entry "
                f"#{following.seq} continues {after} directly",
            )
        grand = self._before_previous
        if previous is not None and entry.prev_hash == (grand.hash if grand else GENESIS_HASH):
            return ChainBreak(
                previous.seq,
                "inserted",
                f"entry #{previous.seq} was inserted: entry #{entry.seq} skips it and continues "
                + (f"entry #{grand.seq}" if grand else "the start of the log"),
            )
        expected_seq = previous.seq + 1 if previous else 1
        if entry.seq > expected_seq:
            missing = (
                f"#{expected_seq}"
                if entry.seq == expected_seq + 1
                else f"#{expected_seq} to #{entry.seq - 1}"
            )
            return ChainBreak(
                expected_seq,
                "deleted",
                f"entry {missing} deleted: entry #{entry.seq} follows {after}",
            )
        if linked_seq is not None:
            return ChainBreak(
                entry.seq,
                "deleted",
                f"entries between #{linked_seq} and #{entry.seq} were deleted and the rest "
                "renumbered",
            )
        return ChainBreak(
            entry.seq,
            "deleted",
            f"entry #{entry.seq} does not continue {after}: the entry it continued was deleted, "
            f"or {after} was edited and its hash recomputed",
        )
