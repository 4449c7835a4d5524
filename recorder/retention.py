"""Retention: how long each category of recording is kept, legal holds, and the purge job.

Terms come from `dialplans/retention.yaml`, read with `hotline.yamldoc` (a mistake is a
`YamlFileError` pointing at file:line):

    default_days: 365          # any category not listed below
    categories:
      complaint: 1095
      consultation: 180

Without that file, `RecorderSettings.retention_default_days` / `retention_days` apply.
A recording is due when its `retention_until` has passed or, when that is empty, when its
category's term, counted from the end of the call, has.

Purging one recording, in this order, each step idempotent so a crash anywhere resumes:

1. destroy its wrapped data key (crypto-shredding, `recorder.keys.destroy` semantics) in one
   conditional UPDATE that also re-checks the legal hold, so a hold set a moment earlier wins;
   from here on no copy of the object anywhere can be decrypted;
2. delete the object from storage (a missing object is fine: a previous run got that far);
3. write the audit entry (before 4: a crash may repeat it, never lose it);
4. mark the row purged.

A row whose key is destroyed but which is not yet marked purged is finished by the next run
whatever its due date or hold, since its audio is gone already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import and_, func, or_, select, text, true, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from yaml.nodes import MappingNode, Node

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.store.db import require_utc, sqlite_zeroes_freed_space, utc_now
from hotline.yamldoc import YamlDoc, scalar
from recorder.models import RecordedCall, State
from recorder.permissions import Action, is_allowed
from recorder.settings import RecorderSettings
from recorder.storage import Storage, StorageError

__all__ = [
    "RETENTION_JOB",
    "HoldResult",
    "PurgeReport",
    "Purger",
    "RetentionPolicy",
    "set_hold",
    "shred_safely",
]

log = logging.getLogger(__name__)
_CATEGORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_DAYS = 100 * 366
RETENTION_JOB = Actor("retention", "system")  # who the audit log names when the job purges


def shred_safely(engine: AsyncEngine) -> None:
    """Make destroyed data keys unrecoverable from a SQLite database file as well.

    SQLite leaves the bytes of updated and deleted rows in free space, and in WAL mode keeps
    old page images in the -wal file: a wrapped data key set to NULL could be read back from
    the file (the end-to-end test found one). Every SQLite connection the project opens has
    `secure_delete` on (`hotline.store.db.create_engine`), which zeroes freed space; this
    checks that `engine` is such an engine. After a purge, `Purger.run` checkpoints and
    truncates the WAL. PostgreSQL has no equivalent: there the old row versions last until
    VACUUM reuses their space, and in WAL archives and backups as long as those are kept
    (see README, Recordings). (It used to add its own connect hook; adding one while another
    part connects raced in SQLAlchemy's hook list.)
    """
    if engine.dialect.name == "sqlite" and not sqlite_zeroes_freed_space(engine):
        raise RuntimeError("this SQLite engine does not zero freed space: use create_engine")


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep recordings, per category, with a default for the rest."""

    default_days: int = 365
    categories: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def days_for(self, category: str) -> int:
        return self.categories.get(category, self.default_days)

    def retention_until(
        self, category: str, started_at: datetime, ended_at: datetime | None = None
    ) -> datetime:
        """The end of the term of a call in `category`: counted from its end, as the pipeline
        does when it stores `RecordedCall.retention_until`."""
        return (ended_at or started_at) + timedelta(days=self.days_for(category))

    def due_at(self, recording: RecordedCall) -> datetime:
        """When `recording` may be purged: its stored date, else its category's term."""
        if recording.retention_until is not None:
            return recording.retention_until
        return self.retention_until(
            recording.retention_category, recording.started_at, recording.ended_at
        )

    @classmethod
    def from_settings(cls, settings: RecorderSettings) -> RetentionPolicy:
        return cls(settings.retention_default_days, MappingProxyType(dict(settings.retention_days)))

    @classmethod
    def load(cls, path: Path, fallback: RecorderSettings | None = None) -> RetentionPolicy:
        """The policy in `path`; the settings' terms when the file does not exist.
        A broken file raises `YamlFileError` (``file:line: ...``)."""
        if not path.exists():
            return cls.from_settings(fallback or RecorderSettings())
        return _parse_policy(YamlDoc(path))


def _parse_policy(doc: YamlDoc) -> RetentionPolicy:
    root = doc.root
    if not isinstance(root, MappingNode):
        raise doc.error(root, "expected `default_days:` and `categories:`")
    top = {str(key.value): (key, value) for key, value in root.value}
    for name, (key, _) in top.items():
        if name not in ("default_days", "categories"):
            raise doc.error(key, f"unknown key `{name}`")
    if "default_days" not in top:
        raise doc.error(root, "`default_days` is missing")
    default_days = _days(doc, top["default_days"][1], "default_days")
    categories: dict[str, int] = {}
    if "categories" in top:
        node = top["categories"][1]
        if not isinstance(node, MappingNode):
            raise doc.error(node, "`categories` must map names to days")
        for key, value in node.value:
            name = str(key.value)
            if not name or set(name) - _CATEGORY_CHARS:
                raise doc.error(
                    key, f"category `{name}` must be lower-case latin letters, digits, - or _"
                )
            if name in categories:
                raise doc.error(key, f"category `{name}` is given twice")
            categories[name] = _days(doc, value, f"categories.{name}")
    return RetentionPolicy(default_days, MappingProxyType(categories))


def _days(doc: YamlDoc, node: Node, name: str) -> int:
    text = scalar(node) or ""
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise doc.error(
            node,
            f"`{name}` must be a whole number of days from 1 to {MAX_DAYS}, "
            f"got {text or 'nothing'!r}",
        )
    return int(text)


# --- purge ------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What one purge run did."""

    purged: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # due, but under legal hold
    failed: dict[str, str] = field(default_factory=dict)  # will be resumed by the next run

    def describe(self) -> str:
        parts = [f"purged {len(self.purged)}", f"kept under legal hold {len(self.held)}"]
        if self.failed:
            parts.append(f"failed {len(self.failed)} (the next run resumes them)")
        return ", ".join(parts)


class Purger:
    """Finds recordings past their term and crypto-shreds them (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        storage: Storage,
        audit: AuditLog,
        policy: RetentionPolicy,
        *,
        actor: Actor | None = None,
        source: str = "retention-job",
    ) -> None:
        actor = actor or RETENTION_JOB
        if not is_allowed(actor.role, Action.PURGE):
            raise PermissionError(f"role {actor.role!r} may not purge recordings")
        self._engine = engine
        self._storage = storage
        self._audit = audit
        self._policy = policy
        self._actor = actor
        self._source = source

    async def due(self, now: datetime | None = None, limit: int = 1000) -> list[RecordedCall]:
        """Rows to work on: past their term (held ones included, reported as such), plus any
        whose key was destroyed by an interrupted run."""
        when = require_utc(now or utc_now(), "now")
        stmt = (
            select(RecordedCall)
            .where(RecordedCall.state == State.VERIFIED.value, self._due_clause(when))
            .order_by(RecordedCall.id)
            .limit(limit)
        )
        async with async_sessionmaker(self._engine, expire_on_commit=False)() as session:
            return list((await session.execute(stmt)).scalars())

    def _due_clause(self, now: datetime) -> Any:
        ended = func.coalesce(RecordedCall.ended_at, RecordedCall.started_at)
        by_category = []
        named = list(self._policy.categories)
        for name, days in self._policy.categories.items():
            by_category.append(
                and_(RecordedCall.retention_category == name, ended <= now - timedelta(days=days))
            )
        by_category.append(
            and_(
                RecordedCall.retention_category.not_in(named) if named else true(),
                ended <= now - timedelta(days=self._policy.default_days),
            )
        )
        return or_(
            RecordedCall.wrapped_key.is_(None),
            RecordedCall.retention_until <= now,
            and_(RecordedCall.retention_until.is_(None), or_(*by_category)),
        )

    async def run(self, now: datetime | None = None, limit: int = 1000) -> PurgeReport:
        report = PurgeReport()
        for recording in await self.due(now, limit):
            try:
                outcome = await self.purge_one(recording)
            except (StorageError, OSError) as error:
                report.failed[recording.call_id] = f"{type(error).__name__}: {error}"
                continue
            (report.purged if outcome == "purged" else report.held).append(recording.call_id)
        if report.purged and self._engine.dialect.name == "sqlite":
            await self._flush_wal()
        return report

    async def _flush_wal(self) -> None:
        """Move the WAL into the database file and empty it, so the page images holding the
        destroyed keys leave it (busy readers may delay this to the next run)."""
        async with self._engine.connect() as connection:
            busy = (await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).first()
        if busy is not None and busy[0]:
            log.warning("retention purge: WAL still in use, emptied at the next run")

    async def run_periodically(self, stop: asyncio.Event, interval: float = 3600.0) -> None:
        """The controller's purge loop: a run every `interval` seconds until `stop` is set.

        A failing run (database or storage down) is logged and retried at the next tick; the
        interrupted recordings are resumed then, as after a crash.
        """
        while not stop.is_set():
            try:
                report = await self.run()
            except (StorageError, SQLAlchemyError, OSError) as error:
                log.error("retention purge failed, retrying in %.0f s: %s", interval, error)
            else:
                if report.purged or report.failed:
                    log.info("retention purge: %s", report.describe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def purge_one(self, recording: RecordedCall) -> str:
        """ "purged" or "held"; storage errors propagate with the key already destroyed (the
        next run finishes the job)."""
        destroyed_now = await self._destroy_key(recording.call_id)
        if not destroyed_now and not await self._key_is_gone(recording.call_id):
            return "held"
        if recording.storage_key:
            await self._storage.delete(recording.storage_key)
        await self._audit.record(
            self._actor,
            Action.PURGE.value,
            recording_id=recording.call_id,
            source=self._source,
            outcome="ok",
            detail={
                "category": recording.retention_category,
                "due": self._policy.due_at(recording).isoformat(),
                "key": f"{recording.key_id} v{recording.key_version}",
                "object_deleted": bool(recording.storage_key),
                "resumed": not destroyed_now,
            },
        )
        await self._mark_purged(recording.call_id)
        return "purged"

    async def _destroy_key(self, call_id: str) -> bool:
        """Crypto-shred unless held; True if this call destroyed the key just now."""
        now = utc_now()
        stmt = (
            update(RecordedCall)
            .where(
                RecordedCall.call_id == call_id,
                RecordedCall.state == State.VERIFIED.value,
                RecordedCall.legal_hold.is_(False),
                RecordedCall.wrapped_key.is_not(None),
            )
            .values(wrapped_key=None, key_destroyed_at=now, updated_at=now)
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(stmt)
        return bool(result.rowcount)

    async def _key_is_gone(self, call_id: str) -> bool:
        stmt = select(RecordedCall.wrapped_key).where(RecordedCall.call_id == call_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(stmt)).first()
        return row is not None and row.wrapped_key is None

    async def _mark_purged(self, call_id: str) -> None:
        now = utc_now()
        stmt = (
            update(RecordedCall)
            .where(RecordedCall.call_id == call_id, RecordedCall.state == State.VERIFIED.value)
            .values(state=State.PURGED.value, purged_at=now, updated_at=now, storage_key=None)
        )
        async with self._engine.begin() as connection:
            await connection.execute(stmt)


# --- legal hold -------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldResult:
    outcome: str  # ok | not_found | purged | refused
    message: str


async def set_hold(
    engine: AsyncEngine,
    audit: AuditLog,
    actor: Actor,
    call_id: str,
    *,
    hold: bool,
    reason: str,
    source: str,
) -> HoldResult:
    """Place (hold=True) or lift a legal hold; audited whatever the outcome."""
    action = Action.HOLD if hold else Action.RELEASE
    if not is_allowed(actor.role, action):
        result = HoldResult("refused", f"Роли «{actor.role}» запрет удаления не доступен.")
    else:
        result = await _apply_hold(engine, call_id, hold)
    await audit.record(
        actor,
        action.value,
        recording_id=call_id,
        source=source,
        outcome=result.outcome,
        detail={"reason": reason},
    )
    return result


async def _apply_hold(engine: AsyncEngine, call_id: str, hold: bool) -> HoldResult:
    stmt = (
        update(RecordedCall)
        .where(
            RecordedCall.call_id == call_id,
            RecordedCall.state != State.PURGED.value,
            RecordedCall.wrapped_key.is_not(None) | (RecordedCall.state != State.VERIFIED.value),
        )
        .values(legal_hold=hold, updated_at=utc_now())
    )
    async with engine.begin() as connection:
        changed = bool((await connection.execute(stmt)).rowcount)
        exists = (
            await connection.execute(
                select(RecordedCall.state).where(RecordedCall.call_id == call_id)
            )
        ).first()
    if changed:
        verb = "установлен" if hold else "снят"
        return HoldResult("ok", f"Запрет удаления записи {call_id} {verb}.")
    if exists is None:
        return HoldResult("not_found", f"Запись {call_id} не найдена.")
    return HoldResult("purged", f"Запись {call_id} уже удалена: запрет удаления не нужен.")
