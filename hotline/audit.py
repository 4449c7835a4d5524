"""The audit log: append-only, chained with a key kept outside the database, anchored outside it.

Shared by every part that must leave a trace of who did what (the recorder's accesses to
recordings, the ACD administration API's edits); the table keeps its first name,
`recording_audit` (migration 0004_audit, keyed by 0009_audit_keyed). Every access and every
refused attempt becomes one row: who (user id and role), what (action and recording id), when,
from where, the outcome and a small JSON detail. Each row links to the one before it
(`hotline.audit_chain`): rows written before the switch carry plain SHA-256 links, rows written
with an audit key (`hotline keys rotate --kind audit`) carry HMAC-SHA-256 links naming the key
version, so editing, deleting, reordering or inserting a row, or rewriting rows and recomputing
their hashes without the key, breaks the chain at that point.

Append-only is enforced three times: this module has no update or delete path; the migration
installs triggers refusing UPDATE/DELETE (and TRUNCATE on PostgreSQL); and the verifier finds
what someone who dropped the triggers did. A chain cannot reveal rows cut off its *end*: for
that the controller exports the head to an object-locked bucket (`hotline.audit_anchors`,
where the threat model is written down) and `verify` compares the chain with those anchors
(or with a head passed as `--anchor`).

What a refused request can add is bounded (`hotline.audit_bounds`): fields and detail capped,
repeated refusals from one source aggregated per minute (`refused`).

Appends are serialised so that two writers never fork the chain: PostgreSQL takes a
transaction-scoped advisory lock, SQLite a write lock up front (`BEGIN IMMEDIATE`), both before
reading the head. The unique `seq` primary key and unique `hash` would stop a fork anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from hotline.audit_bounds import RefusalWindow, cap_detail, cap_field
from hotline.audit_chain import (
    GENESIS_HASH,
    KEYED_SCHEME,
    PLAIN_SCHEME,
    AuditRecord,
    ChainBreak,
    ChainChecker,
    ChainKeys,
    VerifyReport,
    canonical_json,
    entry_hash,
    hashed_fields,
    keyed_entry_hash,
    parse_anchor,
)
from hotline.auth import Actor
from hotline.keyfiles import MasterKeyStore
from hotline.settings import AuditSettings
from hotline.store.db import Base, UTCDateTime, require_utc, utc_now

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditKeyMissing",
    "AuditLog",
    "AuditRecord",
    "ChainBreak",
    "ChainKeys",
    "VerifyReport",
    "audit_log_for",
    "canonical_json",
    "ensure_audit_key",
    "entry_hash",
    "keyed_entry_hash",
    "parse_anchor",
]

log: Final = logging.getLogger(__name__)
# Arbitrary constant naming "the audit chain" among PostgreSQL advisory locks.
_PG_LOCK_KEY: Final = 0x4A7D1E0C
_VERIFY_BATCH: Final = 1000
SYSTEM_ACTOR: Final = Actor("hotline", "system", kind="system")


class AuditKeyMissing(RuntimeError):
    """A writer without the audit key was about to append to a keyed chain."""


class AuditEntry(Base):
    """One row of the audit log (schema owned by migrations 0004_audit and 0009_audit_keyed;
    a test compares them)."""

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
    scheme: Mapped[str] = mapped_column(String(16), server_default=PLAIN_SCHEME)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


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
        scheme=row.scheme,
        key_id=row.key_id,
        key_version=row.key_version,
    )


def audit_log_for(engine: AsyncEngine, settings: AuditSettings) -> AuditLog:
    """The audit log keyed with the settings' key directory (what every writer should use)."""
    return AuditLog(engine, ChainKeys(MasterKeyStore(settings.keys_dir), settings.key_id))


class AuditLog:
    """Appends to and verifies the audit chain; safe for concurrent writers and processes.

    With `keys` whose directory holds an audit key, entries are HMAC-linked with its current
    version; without (a fresh installation before `hotline keys rotate --kind audit`, and
    tests of the legacy format), with plain SHA-256 links.
    """

    def __init__(self, engine: AsyncEngine, keys: ChainKeys | None = None) -> None:
        self._engine = engine
        self.keys = keys
        self._refusals = RefusalWindow()
        self._pending: set[asyncio.Task[AuditRecord | None]] = set()

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
        """Append one entry (every field capped, see `hotline.audit_bounds`) once committed."""
        when = require_utc(at or utc_now(), "at")
        detail_text = canonical_json(cap_detail(detail or {}, canonical_json))
        recording = None if recording_id is None else cap_field(recording_id)
        texts = [cap_field(value) for value in (actor.user_id, actor.role, action, source, outcome)]
        user_id, role, action, source, outcome = texts
        fields = hashed_fields(when, user_id, role, action, recording, source, outcome, detail_text)
        key = self.keys.current() if self.keys is not None and self.keys.exists() else None
        async with self._engine.connect() as connection:
            await self._lock_chain(connection)
            seq, prev_hash, scheme = await _head_with_scheme(connection)
            if key is None and scheme == KEYED_SCHEME:
                raise AuditKeyMissing(
                    f"the audit chain is keyed up to entry #{seq}, and this writer has no audit "
                    "key: a plain entry would break it (pass the keys: `audit_log_for`)"
                )
            values: dict[str, Any] = {
                "seq": seq + 1,
                "at": when,
                "user_id": user_id,
                "role": role,
                "action": action,
                "recording_id": recording,
                "source": source,
                "outcome": outcome,
                "detail": detail_text,
                "prev_hash": prev_hash,
                "hash": entry_hash(prev_hash, fields)
                if key is None
                else keyed_entry_hash(prev_hash, fields, key),
                "scheme": PLAIN_SCHEME if key is None else KEYED_SCHEME,
                "key_id": None if key is None else key.key_id,
                "key_version": None if key is None else key.version,
            }
            await connection.execute(insert(AuditEntry).values(**values))
            await connection.commit()
        return AuditRecord(**values)

    async def refused(
        self,
        actor: Actor | None,
        action: str,
        *,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditRecord | None:
        """Record a refused request, aggregated per source, action and minute (`RefusalWindow`).

        The first refusal of a source and action in a minute is written now (and returned);
        the others are counted and written as one `refusals_repeated` entry when the minute is
        over (at the next refusal or `flush_refusals`). Returns None for a counted one.
        """
        when = require_utc(at or utc_now(), "at")
        await self.flush_refusals(when)
        if not self._refusals.note(cap_field(source), cap_field(action), when):
            return None
        return await self.record(
            actor or Actor("", ""),
            action,
            recording_id=recording_id,
            source=source,
            outcome=outcome,
            detail=detail,
            at=when,
        )

    def refused_soon(
        self,
        actor: Actor | None,
        action: str,
        *,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """`refused` from synchronous code (`hotline.access.access_middleware`'s `on_refused`):
        the row is written by a task of the running loop; a failure to write is logged."""
        task = asyncio.get_running_loop().create_task(
            self.refused(
                actor, action, recording_id=None, source=source, outcome=outcome, detail=detail
            )
        )
        self._pending.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[AuditRecord | None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("audit of a refused request failed: %s", task.exception())

    async def settle(self) -> None:
        """Wait for the rows `refused_soon` scheduled (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def flush_refusals(self, now: datetime | None = None, *, everything: bool = False) -> int:
        """Write the summaries of refusal windows that have ended; how many were written."""
        when = require_utc(now or utc_now(), "now")
        due = self._refusals.due(when, everything=everything)
        for summary in due:
            await self.record(
                Actor("", ""),
                "refusals_repeated",
                recording_id=None,
                source=summary.source,
                outcome="refused",
                detail=summary.detail(self._refusals.window_seconds),
                at=when,
            )
        return len(due)

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

    async def verify(
        self,
        anchor: tuple[int, str] | None = None,
        anchors: Iterable[tuple[int, str]] = (),
    ) -> VerifyReport:
        """Recompute the whole chain; report the first broken entry, then check the anchors
        (`anchor` given by hand, `anchors` read from the bucket): each must name an entry that
        is still there with the same hash."""
        async with self._engine.connect() as connection:

            async def seq_of_hash(digest: str) -> int | None:
                stmt = select(AuditEntry.seq).where(AuditEntry.hash == digest)
                return (await connection.execute(stmt)).scalar_one_or_none()

            checker = ChainChecker(seq_of_hash, self.keys)
            async for record in _all_entries(connection):
                broken = await checker.feed(record)
                if broken is not None:
                    return checker.report(broken)
            broken = await checker.finish() or self._unkeyed_head(checker)
            expected = sorted({*anchors, *([anchor] if anchor else [])}, reverse=True)
            for point in expected:
                broken = broken or await _check_anchor(connection, point, checker.head_seq)
            return checker.report(broken, len(expected))

    def _unkeyed_head(self, checker: ChainChecker) -> ChainBreak | None:
        """An audit key exists, yet the newest entry has a plain link: rewritten without it."""
        if (
            checker.count
            and checker.head_scheme == PLAIN_SCHEME
            and self.keys
            and self.keys.exists()
        ):
            return ChainBreak(
                checker.head_seq,
                "unkeyed",
                f"an audit key exists in {self.keys.store.directory}, yet the newest entry "
                f"#{checker.head_seq} has a plain SHA-256 link: the log was rewritten without "
                "the key (or the key was created by hand instead of `hotline keys rotate`)",
            )
        return None

    async def note_key_rotation(self, version: int) -> AuditRecord:
        """The first entry signed by a new audit key version: the switch is itself on record."""
        return await self.record(
            SYSTEM_ACTOR,
            "audit_key_rotated",
            recording_id=None,
            source="hotline keys",
            outcome="ok",
            detail={"key_version": version},
        )


async def ensure_audit_key(audit: AuditLog) -> None:
    """Create version 1 of the audit key when none exists (a fresh or upgraded installation),
    and sign the switch with it, so the chain is keyed from the controller's first start.

    Like the recorder's master key, it is announced at WARNING level so the admin backs it up
    (`hotline keys backup`) apart from the database.
    """
    keys = audit.keys
    if keys is None or keys.exists():
        return
    key = keys.store.generate(keys.key_id)
    log.warning(
        "generated audit key %s v%d at %s: back it up now (hotline keys backup), apart from "
        "the database; without it the audit chain cannot be verified",
        key.key_id,
        key.version,
        keys.store.path(key.key_id, key.version),
    )
    await audit.note_key_rotation(key.version)


async def _head(connection: AsyncConnection) -> tuple[int, str]:
    seq, digest, _ = await _head_with_scheme(connection)
    return seq, digest


async def _head_with_scheme(connection: AsyncConnection) -> tuple[int, str, str]:
    columns = (AuditEntry.seq, AuditEntry.hash, AuditEntry.scheme)
    row = (
        await connection.execute(select(*columns).order_by(AuditEntry.seq.desc()).limit(1))
    ).first()
    if row is None:
        return 0, GENESIS_HASH, PLAIN_SCHEME
    return int(row.seq), str(row.hash), str(row.scheme)


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
