"""Registering finished recordings: the `spooled` row of each, with what the controller told
(`CallInfo`) or, failing that, what the call log knows.

A registration's database work is one transaction: the recordings' rows and the call log are
read and the missing rows inserted on one connection. The spool scan registers every file it
found in one such transaction (up to `BATCH` at a time), because a transaction's fixed cost
(a connection, a commit, SQLite's fsync) is most of a short call's database cost. Should that
transaction fail, each recording of the batch is registered again on its own, so one bad
recording neither loses nor holds back the others; the one that fails again stays in the
spool, unregistered, and the next scan tries it again.

Asterisk's notifications (one per hang-up) are registered the same way, by group commit: a
notification that comes while a registration transaction runs waits for the next one, which
registers every notification that came meanwhile. Alone, a notification costs one transaction
at once, as it always did; at a peak of hang-ups, one transaction per round, not per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store.db import CallRecord, require_utc, utc_now
from recorder.audio import wav_duration
from recorder.models import RecordedCall, RecordingStore, State
from recorder.spool import spool_path

__all__ = ["BATCH", "CallInfo", "Registrar"]

log = logging.getLogger("recorder.pipeline")

# recordings per registration transaction: a spool full after an outage must not hold SQLite's
# one write lock for long
BATCH = 200

# Core on a bare connection, not the ORM session: its statement path cost as much CPU as the
# statements themselves (see `RecordingStore.advance`)
RECORDINGS = cast(Table, RecordedCall.__table__)
LOGGED = select(CallRecord.call_id, CallRecord.started_at, CallRecord.ended_at,
                CallRecord.dialled_number)  # fmt: skip
# what the call log tells of a call: its id, start, end and dialled number
Logged = Row[str, datetime, datetime | None, str]


@dataclass(frozen=True)
class CallInfo:
    """What the controller knows about a recorded call when its recording finishes."""

    dialled_number: str = ""
    operator: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    retention_category: str = "default"


@dataclass(frozen=True)
class Registered:
    """A registration's outcome: the row, and whether it was there before (then it may have
    changed since it was read, so the worker reads it again)."""

    row: RecordedCall
    existed: bool


class Registrar:
    """Creates the `spooled` rows of finished recordings, idempotently by call id."""

    def __init__(self, store: RecordingStore, spool_dir: Path, format: str) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.format = format
        # notifications waiting for the next round of the group commit, and who waits on each
        self._next_round: dict[str, CallInfo] = {}
        self._waiters: dict[str, list[asyncio.Future[Registered]]] = {}
        self._rounds: asyncio.Task[None] | None = None
        self.transactions = 0  # registration transactions begun (tests, bench)

    async def register(self, call_id: str, info: CallInfo) -> Registered:
        """Register one recording in the next round of the group commit; its errors (after
        its round failed, it is tried on its own) propagate to the caller."""
        waiter: asyncio.Future[Registered] = asyncio.get_running_loop().create_future()
        self._next_round[call_id] = info  # a repeated notification: the latest one's info
        self._waiters.setdefault(call_id, []).append(waiter)
        if self._rounds is None:
            self._rounds = asyncio.create_task(self._run_rounds(), name="recorder registration")
        # shielded: a caller that gives up must not cancel the round the others wait on
        return await asyncio.shield(waiter)

    async def _run_rounds(self) -> None:
        """Register what waits, round after round, until nothing came during the last."""
        waiters: dict[str, list[asyncio.Future[Registered]]] = {}
        try:
            while self._next_round:
                wanted, waiters = self._next_round, self._waiters
                self._next_round, self._waiters = {}, {}
                await self._round(wanted, waiters)
        finally:
            self._rounds = None
            # left only when this task was cancelled (the loop closing): nobody hangs on them
            for pending in (*waiters.values(), *self._waiters.values()):
                for waiter in pending:
                    waiter.cancel()
            self._next_round, self._waiters = {}, {}

    async def _round(
        self, wanted: dict[str, CallInfo], waiters: dict[str, list[asyncio.Future[Registered]]]
    ) -> None:
        ids = list(wanted)
        for first in range(0, len(ids), BATCH):
            batch = {call_id: wanted[call_id] for call_id in ids[first : first + BATCH]}
            try:
                outcomes: dict[str, Registered | BaseException] = dict(
                    await self._in_one_transaction(batch)
                )
            except Exception:
                if len(batch) > 1:
                    log.warning("registering %d recordings together failed", len(batch),
                                exc_info=True)  # fmt: skip
                outcomes = {call_id: await self._alone(call_id, info)
                            for call_id, info in batch.items()}  # fmt: skip
            for call_id, outcome in outcomes.items():
                for waiter in waiters.pop(call_id):
                    if waiter.done():
                        continue
                    if isinstance(outcome, BaseException):
                        waiter.set_exception(outcome)
                    else:
                        waiter.set_result(outcome)

    async def _alone(self, call_id: str, info: CallInfo) -> Registered | BaseException:
        try:
            return (await self._in_one_transaction({call_id: info}))[call_id]
        except Exception as error:
            return error

    async def register_many(self, wanted: Mapping[str, CallInfo]) -> dict[str, Registered]:
        """Register many recordings, `BATCH` per transaction; those that fail even on their
        own are logged and left out (their spool files stay for the next scan)."""
        done: dict[str, Registered] = {}
        ids = list(wanted)
        for first in range(0, len(ids), BATCH):
            batch = {call_id: wanted[call_id] for call_id in ids[first : first + BATCH]}
            try:
                done |= await self._in_one_transaction(batch)
            except Exception:
                log.warning("registering %d recordings together failed", len(batch), exc_info=True)
                done |= await self._one_by_one(batch)
        return done

    async def _one_by_one(self, batch: Mapping[str, CallInfo]) -> dict[str, Registered]:
        done: dict[str, Registered] = {}
        for call_id, info in batch.items():
            outcome = await self._alone(call_id, info)
            if isinstance(outcome, BaseException):
                log.error("could not register recording %s; retried at the next scan", call_id,
                          exc_info=outcome)  # fmt: skip
            else:
                done[call_id] = outcome
        return done

    async def _in_one_transaction(self, wanted: Mapping[str, CallInfo]) -> dict[str, Registered]:
        ids = list(wanted)
        done: dict[str, Registered] = {}
        self.transactions += 1
        async with self.store.engine.begin() as session:
            stmt = select(*RECORDINGS.c).where(RECORDINGS.c.call_id.in_(ids))
            for found in await session.execute(stmt):
                row = RecordedCall(**found._mapping)
                await self._fill_metadata(session, row, wanted[row.call_id])
                done[row.call_id] = Registered(row, existed=True)
            missing = [call_id for call_id in ids if call_id not in done]
            logged = await self._call_log(session, missing) if missing else {}
            for call_id in missing:
                values = self._values(call_id, wanted[call_id], logged.get(call_id))
                done[call_id] = await self._insert(session, values)
        return done

    async def _call_log(self, session: AsyncConnection, ids: Sequence[str]) -> dict[str, Logged]:
        """The call log's rows for `ids` when the controller logged them (same database). The
        calls table may live elsewhere, and the recording matters more: a failed read is
        passed over, in a savepoint where a failed statement aborts the whole transaction
        (PostgreSQL; SQLite goes on after one)."""
        stmt = LOGGED.where(CallRecord.call_id.in_(ids))
        try:
            if self.store.engine.dialect.name == "sqlite":
                return {r.call_id: r for r in await session.execute(stmt)}
            async with session.begin_nested():
                return {r.call_id: r for r in await session.execute(stmt)}
        except Exception:
            log.debug("call log lookup failed", exc_info=True)
            return {}

    def _values(self, call_id: str, info: CallInfo, logged: Logged | None) -> dict[str, Any]:
        started = info.started_at or (logged.started_at if logged else None)
        if started is None:  # neither told nor logged: the file's end less its length
            source = spool_path(self.spool_dir, call_id)
            started = datetime.fromtimestamp(source.stat().st_mtime).astimezone()
            started -= timedelta(seconds=wav_duration(source) or 0)
        ended = info.ended_at or (logged.ended_at if logged else None)
        now = utc_now()
        return {
            "call_id": call_id,
            "format": self.format,
            "started_at": require_utc(started, "started_at"),
            "ended_at": require_utc(ended, "ended_at") if ended else None,
            "dialled_number": info.dialled_number or (logged.dialled_number if logged else ""),
            "operator": info.operator,
            "retention_category": info.retention_category,
            "state": State.SPOOLED.value,
            "legal_hold": False,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }

    async def _insert(self, session: AsyncConnection, values: dict[str, Any]) -> Registered:
        """INSERT ... ON CONFLICT DO NOTHING: a registration racing this one cannot make a
        second row or an error; its row is read instead."""
        insert = sqlite_insert if self.store.engine.dialect.name == "sqlite" else pg_insert
        stmt = (
            insert(RECORDINGS)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["call_id"])
            .returning(*RECORDINGS.c)
        )
        created = (await session.execute(stmt)).one_or_none()
        if created is not None:
            return Registered(RecordedCall(**created._mapping), existed=False)
        again = select(*RECORDINGS.c).where(RECORDINGS.c.call_id == values["call_id"])
        row = (await session.execute(again)).one()
        return Registered(RecordedCall(**row._mapping), existed=True)

    async def _fill_metadata(
        self, session: AsyncConnection, row: RecordedCall, info: CallInfo
    ) -> None:
        """A late notification completes what the idle fallback could not know."""
        values: dict[str, object] = {}
        if info.operator and not row.operator:
            values["operator"] = info.operator
        if info.dialled_number and not row.dialled_number:
            values["dialled_number"] = info.dialled_number
        if info.ended_at and not row.ended_at:
            values["ended_at"] = info.ended_at
        if values and row.state != State.PURGED:
            values["updated_at"] = utc_now()
            stmt = update(RECORDINGS).where(RECORDINGS.c.call_id == row.call_id)
            await session.execute(stmt.values(**values))
