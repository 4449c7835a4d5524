"""The call facts' tables and their writes (schema owned by migration 0012_call_facts).

`FactStore` knows SQL and nothing of calls in progress: `reporting.facts.CallFacts` gathers a
call's events and hands one finished `Fact` here. The repeat rule is the workspace's
(`workspace.store.REPEAT_WINDOW`, ported here, not imported: parts do not import each other):
the same caller or the same application within 7 days is a repeat, and the earlier call's
first-contact resolution no longer counts (`came_back`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    Row,
    String,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store.db import Base, UTCDateTime, require_utc
from reporting.fact_marks import (
    WriteMark,
    forget_marks,
    hold_marks,
    move_marks,
    not_committed,
)
from reporting.rollups import SliceChanges, upsert_adding

__all__ = [
    "REPEAT_WINDOW",
    "Fact",
    "FactNews",
    "FactStore",
    "FactWrite",
    "NewFact",
    "OperatorStay",
    "WrapUpAdded",
    "call_facts",
    "operator_time",
]

# The workspace's rule (issue 12): the same caller or application within 7 days is a repeat.
REPEAT_WINDOW: Final = timedelta(days=7)

call_facts = Table(
    "call_facts",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String, nullable=False),
    Column("line", String, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("local_day", Date, nullable=False),
    Column("local_hour", Integer, nullable=False),
    Column("menu_path", String, nullable=False),
    Column("menu_exit", String, nullable=False),
    Column("menu_seconds", Float, nullable=True),
    Column("topic", String, nullable=True),
    Column("group_name", String, nullable=True),
    Column("queued", Boolean, nullable=False),
    Column("wait_seconds", Float, nullable=True),
    Column("overflowed", Boolean, nullable=False),
    Column("overflow_reason", String, nullable=True),
    Column("widened", Boolean, nullable=False),
    Column("ringing_operators", String, nullable=True),
    Column("operator_id", String, nullable=True),
    Column("answered", Boolean, nullable=False),
    Column("talk_seconds", Float, nullable=True),
    Column("hold_seconds", Float, nullable=True),
    Column("wrap_seconds", Float, nullable=True),
    Column("outcome", String, nullable=False),
    Column("abandoned_at", UTCDateTime, nullable=True),
    Column("abandoned_ringing", Boolean, nullable=False),
    Column("callback_booked", Boolean, nullable=False),
    Column("transferred", Boolean, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("rating", Integer, nullable=True),
    Column("contact_number", String, nullable=True),
    Column("fcr_operator", Boolean, nullable=True),
    Column("came_back", Boolean, nullable=False),
    Column("repeat", Boolean, nullable=False),
    Column("caller_number", String, nullable=True),
    Column("application", String, nullable=True),
    Column("anonymised_at", UTCDateTime, nullable=True),
    UniqueConstraint("call_id", name="uq_call_facts_call_id"),
    Index("ix_call_facts_day_group", "local_day", "group_name"),
    Index("ix_call_facts_caller", "caller_number", "started_at"),
    Index("ix_call_facts_application", "application", "started_at"),
    Index("ix_call_facts_started_at", "started_at"),
)

operator_time = Table(
    "operator_time",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operator_id", String, nullable=False),
    Column("local_day", Date, nullable=False),
    Column("local_hour", Integer, nullable=False),
    Column("busy_seconds", Float, nullable=False),  # ringing, talking, wrap-up
    Column("work_seconds", Float, nullable=False),  # ready or busy
    Column("paused_seconds", Float, nullable=False),
    UniqueConstraint("operator_id", "local_day", "local_hour", name="uq_operator_time_slot"),
    Index("ix_operator_time_day", "local_day", "operator_id"),
)

# state -> whether its time is (busy, at work, paused), for `operator_time`
_STATE_COLUMNS: Final = {
    "ready": (0, 1, 0),
    "ringing": (1, 1, 0),
    "talking": (1, 1, 0),
    "wrap_up": (1, 1, 0),
    "paused": (0, 0, 1),
}

# Outcomes, one per call (`reporting.facts` picks the first that applies, in this order).
OUTCOMES: Final = (
    "escalated",
    "transferred",
    "answered",
    "callback_booked",
    "abandoned",
    "overflowed",
    "self_service",
)


@dataclass
class Fact:
    """One call as the reports see it (a row of `call_facts`)."""

    call_id: str
    line: str
    started_at: datetime
    local_day: date
    local_hour: int
    ended_at: datetime | None = None
    menu_path: str = ""
    menu_exit: str = ""
    menu_seconds: float | None = None
    topic: str | None = None
    group_name: str | None = None
    queued: bool = False
    wait_seconds: float | None = None
    overflowed: bool = False
    overflow_reason: str | None = None
    widened: bool = False
    ringing_operators: str | None = None
    operator_id: str | None = None
    answered: bool = False
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    wrap_seconds: float | None = None
    outcome: str = "self_service"
    abandoned_at: datetime | None = None
    abandoned_ringing: bool = False
    callback_booked: bool = False
    transferred: bool = False
    escalated: bool = False
    rating: int | None = None
    contact_number: str | None = None
    fcr_operator: bool | None = None
    came_back: bool = False
    repeat: bool = False
    caller_number: str | None = None
    application: str | None = None

    def values(self) -> dict[str, Any]:
        # not dataclasses.asdict: its deep copy of every value (all immutable here) was a
        # third of a batch's time
        return {name: getattr(self, name) for name in _FACT_FIELDS}


_FACT_FIELDS: Final = tuple(field.name for field in dataclasses.fields(Fact))


@dataclass(frozen=True)
class NewFact:
    """A finished call's fact (a second one for the same call is ignored: a retried end)."""

    fact: Fact


@dataclass(frozen=True)
class FactNews:
    """Later news of a call already written: its contact's number, resolution, rating,
    application, topic."""

    call_id: str
    values: dict[str, Any]


@dataclass(frozen=True)
class WrapUpAdded:
    """An operator's wrap-up that ended after the call's fact was written."""

    call_id: str
    seconds: float


@dataclass(frozen=True)
class OperatorStay:
    """An operator's stay in a state, split into (local day, local hour, seconds) slots."""

    operator_id: str
    state: str
    slots: tuple[tuple[date, int, float], ...]


FactWrite = NewFact | FactNews | WrapUpAdded | OperatorStay

# Rows a statement names at once: SQLite allows 32766 parameters a statement.
_CHUNK: Final = 500
# The batch's statements, built once: building them (and their cache keys) for every batch,
# with hundreds of values in each, cost more than running them.
_STORED: Final = select(call_facts.c.call_id).where(
    call_facts.c.call_id.in_(bindparam("call_ids", expanding=True))
)
_EARLIER: Final = select(call_facts).where(
    or_(
        call_facts.c.caller_number.in_(bindparam("phones", expanding=True)),
        call_facts.c.application.in_(bindparam("applications", expanding=True)),
    ),
    call_facts.c.started_at >= bindparam("since"),
    call_facts.c.started_at < bindparam("until"),
)
_CAME_BACK: Final = (
    update(call_facts)
    .where(call_facts.c.id.in_(bindparam("ids", expanding=True)))
    .values(came_back=True)
)


class FactStore:
    """Facts in SQL: one insert per call, the later updates (wrap-up, the contact's
    resolution), operators' time and the retention's anonymisation. `write` takes many of
    them in one transaction (`reporting.fact_writer.FactWriter` batches them)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(
        self, writes: Sequence[FactWrite], marks: Sequence[WriteMark | None] | None = None
    ) -> None:
        """Every write in one transaction, each as if after the ones before it: the new facts
        go in by runs (one insert each), news of a fact not inserted yet is folded into it, a
        caller's second call finds the first; the rollups' differences are summed per slice
        and applied once at the end. The noted writes are not changed (a failed batch is
        tried again as it was). With `marks` (one a write), a write its writer's mark says is
        committed already is left out, and the marks move (`reporting.fact_marks`)."""
        async with self.engine.begin() as connection:
            if marks is None:
                await _write_all(connection, writes)
                return
            held = await hold_marks(connection, (m.writer for m in marks if m is not None))
            await _write_all(connection, not_committed(writes, marks, held))
            await move_marks(connection, held, marks)

    async def forget_marks(self, before: datetime) -> int:
        """Drop the write marks of writers that last committed before `before`."""
        async with self.engine.begin() as connection:
            return await forget_marks(connection, before)

    async def add(self, fact: Fact) -> None:
        """Store `fact` (a second fact for the same call is ignored) with its repeat flag, and
        clear the first-contact resolution of the calls it repeats."""
        await self.write([NewFact(fact)])

    async def change(self, call_id: str, values: dict[str, Any]) -> None:
        """Apply later news of a call (its wrap-up, its contact's number, resolution, rating,
        application); a new application number is checked against the repeat rule too."""
        await self.write([FactNews(call_id, values)])

    async def add_wrap_up(self, call_id: str, seconds: float) -> None:
        """Add an operator's wrap-up to the call (a transferred call has two)."""
        await self.write([WrapUpAdded(call_id, seconds)])

    async def operator_time(
        self, operator_id: str, state: str, slots: list[tuple[date, int, float]]
    ) -> None:
        """Add an operator's stay in `state` to its (day, hour, seconds) slots."""
        await self.write([OperatorStay(operator_id, state, tuple(slots))])

    async def anonymise(self, before: datetime, at: datetime, batch: int = 5000) -> int:
        """Clear the caller's number and application of calls started before `before`;
        the facts stay. Returns how many were cleared."""
        cleared = 0
        while True:
            async with self.engine.begin() as connection:
                ids = (
                    (
                        await connection.execute(
                            select(call_facts.c.id)
                            .where(
                                call_facts.c.started_at < require_utc(before, "before"),
                                call_facts.c.anonymised_at.is_(None),
                            )
                            .limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return cleared
                statement = update(call_facts).where(call_facts.c.id.in_(ids))
                await connection.execute(
                    statement.values(caller_number=None, application=None, anonymised_at=at)
                )
                cleared += len(ids)

    async def get(self, call_id: str) -> dict[str, Any] | None:
        """One call's fact as stored (tests, `hotline report` debugging)."""
        async with self.engine.connect() as connection:
            statement = select(call_facts).where(call_facts.c.call_id == call_id)
            row = (await connection.execute(statement)).first()
        return None if row is None else dict(row._mapping)


async def _write_all(connection: AsyncConnection, writes: Sequence[FactWrite]) -> None:
    """`FactStore.write`'s transaction, in `connection`."""
    slices = SliceChanges()
    new_ids = [w.fact.call_id for w in writes if isinstance(w, NewFact)]
    stored = await _stored_calls(connection, new_ids)
    run: dict[str, Fact] = {}  # new facts not inserted yet, by call
    for write in writes:
        if isinstance(write, NewFact):
            if write.fact.call_id not in stored:  # else a retried end: ignored
                stored.add(write.fact.call_id)
                run[write.fact.call_id] = copy.copy(write.fact)
        elif isinstance(write, (FactNews, WrapUpAdded)) and not _folded(run, write):
            await _add_facts(connection, list(run.values()), slices)
            run = {}
            await _news(connection, write, slices)
    await _add_facts(connection, list(run.values()), slices)
    stays = [w for w in writes if isinstance(w, OperatorStay)]
    await _add_operator_time(connection, stays)  # sums: their order does not matter
    await slices.apply(connection)


async def _add_facts(connection: AsyncConnection, facts: list[Fact], slices: SliceChanges) -> None:
    """Insert `facts` (new calls, one executemany) with their repeat flags: each is checked,
    in order, against the calls stored before and the ones before it in `facts`, exactly as
    if written one by one."""
    if not facts:
        return
    earlier = await _repeat_candidates(connection, facts)
    marked: dict[int, dict[str, Any]] = {}  # stored rows come back: id -> the row before
    for fact in facts:
        for row in earlier.repeated_by(fact):
            if isinstance(row, Fact):
                row.came_back = True  # not inserted yet: inserted as come back
                fact.repeat = True
            else:
                fact.repeat = True
                if not row["came_back"]:
                    marked[row["id"]] = dict(row)
                    row["came_back"] = True
        earlier.keep(fact)
    rows = [fact.values() for fact in facts]
    await connection.execute(insert(call_facts), rows)
    for row in rows:
        slices.note(None, row)
    ids = sorted(marked)  # one lock order for all nodes
    for first in range(0, len(ids), _CHUNK):
        await connection.execute(_CAME_BACK, {"ids": ids[first : first + _CHUNK]})
    for before in marked.values():
        slices.note(before, before | {"came_back": True})


async def _stored_calls(connection: AsyncConnection, call_ids: list[str]) -> set[str]:
    """Which of `call_ids` have a fact stored already."""
    stored: set[str] = set()
    for first in range(0, len(call_ids), _CHUNK):
        chunk = call_ids[first : first + _CHUNK]
        found = await connection.execute(_STORED, {"call_ids": chunk})
        stored.update(found.scalars())
    return stored


_FIELDS: Final = frozenset(_FACT_FIELDS)


def _folded(run: dict[str, Fact], write: FactNews | WrapUpAdded) -> bool:
    """Fold news of a fact not inserted yet into it (what its update would have done); not
    a new application number (the repeat rule checks it against the stored calls)."""
    fact = run.get(write.call_id)
    if fact is None:
        return False
    if isinstance(write, WrapUpAdded):
        fact.wrap_seconds = (fact.wrap_seconds or 0.0) + write.seconds
        return True
    if "application" in write.values or not _FIELDS.issuperset(write.values):
        return False
    for name, value in write.values.items():
        setattr(fact, name, value)
    return True


async def _news(
    connection: AsyncConnection, write: FactNews | WrapUpAdded, slices: SliceChanges
) -> None:
    if isinstance(write, FactNews):
        await _change(connection, write.call_id, write.values, slices)
    else:
        await _add_wrap_up(connection, write.call_id, write.seconds, slices)


class _Earlier:
    """The calls a batch's facts may repeat, by caller number and by application."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], list[dict[str, Any] | Fact]] = {}
        self._stored: set[int] = set()  # ids of stored rows kept (two chunks may find one)

    def keep(self, call: dict[str, Any] | Fact) -> None:
        if isinstance(call, dict):
            if call["id"] in self._stored:
                return
            self._stored.add(call["id"])
        for key in _caller_keys(call):
            self._by_key.setdefault(key, []).append(call)

    def repeated_by(self, fact: Fact) -> list[dict[str, Any] | Fact]:
        """The calls `fact` repeats (started within the window before it), each once."""
        started = require_utc(fact.started_at, "started_at")
        found: dict[int, dict[str, Any] | Fact] = {}
        for key in _caller_keys(fact):
            for call in self._by_key.get(key, ()):
                at = call.started_at if isinstance(call, Fact) else call["started_at"]
                if started - REPEAT_WINDOW <= at < started:
                    found[id(call)] = call
        return list(found.values())


def _caller_keys(call: dict[str, Any] | Fact) -> list[tuple[str, str]]:
    if isinstance(call, Fact):
        phone, application = call.caller_number, call.application
    else:
        phone, application = call["caller_number"], call["application"]
    keys = [("phone", phone)] if phone else []
    return keys + ([("application", application)] if application else [])


async def _repeat_candidates(connection: AsyncConnection, facts: list[Fact]) -> _Earlier:
    """The stored calls of the facts' callers and applications within the window before the
    earliest of them (one query a chunk)."""
    earlier = _Earlier()
    keyed = [fact for fact in facts if _caller_keys(fact)]
    if not keyed:
        return earlier
    since = min(require_utc(f.started_at, "started_at") for f in keyed) - REPEAT_WINDOW
    until = max(require_utc(f.started_at, "started_at") for f in keyed)
    for first in range(0, len(keyed), _CHUNK):
        chunk = keyed[first : first + _CHUNK]
        values = {
            "phones": sorted({f.caller_number for f in chunk if f.caller_number}),
            "applications": sorted({f.application for f in chunk if f.application}),
            "since": since,
            "until": until,
        }
        for row in await connection.execute(_EARLIER, values):
            earlier.keep(dict(row._mapping))
    return earlier


async def _locked_fact(connection: AsyncConnection, call_id: str) -> Row[Any] | None:
    """A stored call's fact, locked until the batch commits (another node may write it)."""
    statement = select(call_facts).where(call_facts.c.call_id == call_id).with_for_update()
    return (await connection.execute(statement)).first()


async def _change(
    connection: AsyncConnection, call_id: str, values: dict[str, Any], slices: SliceChanges
) -> None:
    """News of a stored call (none stored: dropped, as the call's fact was never written); a
    new application number is checked against the repeat rule."""
    row = await _locked_fact(connection, call_id)
    if row is None:
        return
    changes = dict(values)
    application = changes.get("application")
    if application and application != row.application:
        probe = Fact(
            call_id,
            row.line,
            row.started_at,
            row.local_day,
            row.local_hour,
            application=application,
        )
        if await _came_back(connection, call_id, probe, slices):
            changes["repeat"] = True
    statement = update(call_facts).where(call_facts.c.call_id == call_id)
    await connection.execute(statement.values(**changes))
    slices.note(dict(row._mapping), dict(row._mapping) | changes)


async def _came_back(
    connection: AsyncConnection, call_id: str, fact: Fact, slices: SliceChanges
) -> bool:
    """Mark the earlier calls of this caller or application within the window as come back;
    True when there was one (this call is a repeat)."""
    same = _same_caller(fact.caller_number, fact.application)
    if same is None:
        return False
    started = require_utc(fact.started_at, "started_at")
    earlier = and_(
        same,
        call_facts.c.started_at >= started - REPEAT_WINDOW,
        call_facts.c.started_at < started,
        call_facts.c.call_id != call_id,
    )
    rows = (await connection.execute(select(call_facts).where(earlier))).all()
    for row in rows:
        if row.came_back:
            continue
        before = dict(row._mapping)
        this = call_facts.c.id == before["id"]
        await connection.execute(update(call_facts).where(this).values(came_back=True))
        slices.note(before, before | {"came_back": True})
    return bool(rows)


def _same_caller(phone: str | None, application: str | None) -> Any:
    conditions = []
    if phone:
        conditions.append(call_facts.c.caller_number == phone)
    if application:
        conditions.append(call_facts.c.application == application)
    return or_(*conditions) if conditions else None


async def _add_wrap_up(
    connection: AsyncConnection, call_id: str, seconds: float, slices: SliceChanges
) -> None:
    row = await _locked_fact(connection, call_id)
    if row is None:
        return
    total = (row.wrap_seconds or 0.0) + seconds
    statement = update(call_facts).where(call_facts.c.call_id == call_id)
    await connection.execute(statement.values(wrap_seconds=total))
    slices.note(dict(row._mapping), dict(row._mapping) | {"wrap_seconds": total})


_TIMES: Final = ("busy_seconds", "work_seconds", "paused_seconds")


async def _add_operator_time(connection: AsyncConnection, stays: list[OperatorStay]) -> None:
    """Add the stays to their operators' hours: summed per (operator, day, hour) first, then
    one upsert each (nodes writing at once never lose one)."""
    sums: dict[tuple[str, date, int], list[float]] = {}
    for stay in stays:
        shares = _STATE_COLUMNS.get(stay.state, (0, 0, 0))
        if not any(shares):
            continue
        for day, hour, seconds in stay.slots:
            total = sums.setdefault((stay.operator_id, day, hour), [0.0, 0.0, 0.0])
            for i, share in enumerate(shares):
                total[i] += share * seconds
    if not sums:
        return
    rows = [
        {"operator_id": operator, "local_day": day, "local_hour": hour}
        | dict(zip(_TIMES, total, strict=True))
        for (operator, day, hour), total in sorted(sums.items())  # one lock order for all nodes
    ]
    keys = ("operator_id", "local_day", "local_hour")
    statement = upsert_adding(connection.dialect.name, operator_time, keys, _TIMES)
    await connection.execute(statement, rows)
