"""The call facts' tables and their writes (schema owned by migration 0012_call_facts).

`FactStore` knows SQL and nothing of calls in progress: `reporting.facts.CallFacts` gathers a
call's events and hands one finished `Fact` here. The repeat rule is the workspace's
(`workspace.store.REPEAT_WINDOW`, ported here, not imported: parts do not import each other):
the same caller or the same application within 7 days is a repeat, and the earlier call's
first-contact resolution no longer counts (`came_back`).
"""

from __future__ import annotations

import dataclasses
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
    String,
    Table,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store.db import Base, UTCDateTime, require_utc
from reporting.rollups import apply_change

__all__ = ["REPEAT_WINDOW", "Fact", "FactStore", "call_facts", "operator_time"]

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
        return dataclasses.asdict(self)


def _same_caller(phone: str | None, application: str | None) -> Any:
    conditions = []
    if phone:
        conditions.append(call_facts.c.caller_number == phone)
    if application:
        conditions.append(call_facts.c.application == application)
    return or_(*conditions) if conditions else None


class FactStore:
    """Facts in SQL: one insert per call, the later updates (wrap-up, the contact's
    resolution), operators' time and the retention's anonymisation."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, fact: Fact) -> None:
        """Store `fact` (a second fact for the same call is ignored: a retried end) with its
        repeat flag, and clear the first-contact resolution of the calls it repeats."""
        async with self.engine.begin() as connection:
            found = select(call_facts.c.id).where(call_facts.c.call_id == fact.call_id)
            if (await connection.execute(found)).first() is not None:
                return
            fact.repeat = await self._came_back(connection, fact.call_id, fact) or fact.repeat
            await connection.execute(insert(call_facts).values(**fact.values()))
            await apply_change(connection, None, fact.values())

    async def _came_back(self, connection: AsyncConnection, call_id: str, fact: Fact) -> bool:
        """Mark the earlier calls of this caller or application within the window as come
        back; True when there was one (this call is a repeat)."""
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
            await apply_change(connection, before, before | {"came_back": True})
        return bool(rows)

    async def change(self, call_id: str, values: dict[str, Any]) -> bool:
        """Apply later news of a call (its wrap-up, its contact's number, resolution, rating,
        application); a new application number is checked against the repeat rule too."""
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    select(call_facts).where(call_facts.c.call_id == call_id).with_for_update()
                )
            ).first()
            if row is None:
                return False
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
                if await self._came_back(connection, call_id, probe):
                    changes["repeat"] = True
            statement = update(call_facts).where(call_facts.c.call_id == call_id)
            await connection.execute(statement.values(**changes))
            await apply_change(connection, dict(row._mapping), dict(row._mapping) | changes)
        return True

    async def add_wrap_up(self, call_id: str, seconds: float) -> None:
        """Add an operator's wrap-up to the call (a transferred call has two)."""
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    select(call_facts).where(call_facts.c.call_id == call_id).with_for_update()
                )
            ).first()
            if row is None:
                return
            total = (row.wrap_seconds or 0.0) + seconds
            statement = update(call_facts).where(call_facts.c.call_id == call_id)
            await connection.execute(statement.values(wrap_seconds=total))
            after = dict(row._mapping) | {"wrap_seconds": total}
            await apply_change(connection, dict(row._mapping), after)

    async def operator_time(
        self, operator_id: str, state: str, slots: list[tuple[date, int, float]]
    ) -> None:
        """Add an operator's stay in `state` to its (day, hour, seconds) slots."""
        busy, work, paused = _STATE_COLUMNS.get(state, (0, 0, 0))
        if not slots or not (busy or work or paused):
            return
        insert_of = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        rows = [
            {
                "operator_id": operator_id,
                "local_day": day,
                "local_hour": hour,
                "busy_seconds": busy * seconds,
                "work_seconds": work * seconds,
                "paused_seconds": paused * seconds,
            }
            for day, hour, seconds in slots
        ]
        statement = insert_of(operator_time).values(rows)
        added = ("busy_seconds", "work_seconds", "paused_seconds")
        statement = statement.on_conflict_do_update(
            index_elements=["operator_id", "local_day", "local_hour"],
            set_={name: operator_time.c[name] + statement.excluded[name] for name in added},
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)

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
            row = (
                await connection.execute(
                    select(call_facts).where(call_facts.c.call_id == call_id).with_for_update()
                )
            ).first()
        return None if row is None else dict(row._mapping)
