"""Tickets in SQL (schema owned by migration 0009_tickets): the rows, their comments, and the
queries the work queue and the escalation job run.

`TicketStore` knows SQL and nothing of who asks; `workspace.tickets.TicketDesk` checks access
and audits. One ticket per contact (a unique key): adopting the same contact twice, from two
controller nodes at once, leaves one ticket.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.store.db import Base, UTCDateTime, require_utc
from workspace.model import ContactState
from workspace.numbers import ContactNumber
from workspace.store import contacts

__all__ = [
    "Escalation",
    "Ticket",
    "TicketComment",
    "TicketRow",
    "TicketState",
    "TicketStore",
]


class TicketState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_CITIZEN = "waiting_citizen"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATES: Final = (TicketState.NEW, TicketState.IN_PROGRESS, TicketState.WAITING_CITIZEN)


class Escalation(StrEnum):
    NONE = ""
    NEAR = "near"  # most of the due time used (`workspace.tickets.NEAR_SHARE`)
    OVERDUE = "overdue"  # the due time passed unresolved


tickets = Table(
    "tickets",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, ForeignKey("contacts.id"), nullable=False, unique=True),
    Column("group_name", String, nullable=False),
    Column("assignee", String, nullable=True),
    Column("state", String, nullable=False),
    Column("escalation", String, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("notified_at", UTCDateTime, nullable=True),  # the citizen's letter went out
    Column("callback_at", UTCDateTime, nullable=True),  # the call back was booked (or refused)
    Column("notify_email", String, nullable=True),  # where the citizen asked to be told
    # the supervisor's queue and the escalation job walk open tickets in due order
    Index("ix_tickets_due", "due_at", "id"),
    Index("ix_tickets_group_due", "group_name", "due_at"),
)
ticket_comments = Table(
    "ticket_comments",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("author", String, nullable=False),
    Column("role", String, nullable=False),
    Column("text", String, nullable=False),
    Index("ix_ticket_comments_ticket", "ticket_id", "at"),
)


@dataclass(frozen=True)
class TicketComment:
    at: datetime
    author: str
    role: str
    text: str


@dataclass(frozen=True)
class TicketRow:
    """A ticket as the work queue lists it: no personal data beyond the contact's topic."""

    id: int
    number: ContactNumber
    group: str
    assignee: str | None
    state: TicketState
    escalation: Escalation
    opened_at: datetime
    due_at: datetime
    topic: str
    category: str


@dataclass(frozen=True)
class Ticket:
    row: TicketRow
    resolved_at: datetime | None
    notified_at: datetime | None
    callback_at: datetime | None
    notify_email: str | None
    comments: list[TicketComment]


_LISTED: Final = (
    tickets.c.id,
    contacts.c.year,
    contacts.c.sequence,
    tickets.c.group_name,
    tickets.c.assignee,
    tickets.c.state,
    tickets.c.escalation,
    tickets.c.opened_at,
    tickets.c.due_at,
    contacts.c.topic,
    contacts.c.category,
)


def queue_statement(groups: Collection[str] | None, limit: int) -> Any:
    """The work queue: open tickets of `groups` (None: all), soonest due first."""
    statement = (
        select(*_LISTED)
        .join(contacts, contacts.c.id == tickets.c.contact_id)
        .where(tickets.c.state.in_([s.value for s in OPEN_STATES]))
    )
    if groups is not None:
        statement = statement.where(tickets.c.group_name.in_(sorted(groups)))
    return statement.order_by(tickets.c.due_at, tickets.c.id).limit(limit)


class TicketStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open(self, contact_id: int, group: str, at: datetime, due: datetime) -> int | None:
        """A new ticket for the contact; None when it already has one."""
        values = {
            "contact_id": contact_id,
            "group_name": group,
            "assignee": None,
            "state": TicketState.NEW.value,
            "escalation": Escalation.NONE.value,
            "opened_at": require_utc(at, "at"),
            "due_at": require_utc(due, "due"),
            "updated_at": at,
        }
        try:
            async with self._engine.begin() as connection:
                result = await connection.execute(insert(tickets).values(**values))
        except IntegrityError:
            return None
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def orphan_contacts(self, limit: int) -> list[tuple[int, str]]:
        """(contact id, category) of contacts left for a ticket that have none yet."""
        statement = (
            select(contacts.c.id, contacts.c.category)
            .outerjoin(tickets, tickets.c.contact_id == contacts.c.id)
            .where(contacts.c.state == ContactState.TICKET.value, tickets.c.id.is_(None))
            .order_by(contacts.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [(int(r.id), str(r.category)) for r in rows]

    async def contact_id(self, number: ContactNumber) -> int | None:
        statement = select(contacts.c.id).where(
            contacts.c.year == number.year, contacts.c.sequence == number.sequence
        )
        async with self._engine.connect() as connection:
            found = (await connection.execute(statement)).scalar_one_or_none()
        return None if found is None else int(found)

    async def queue(self, groups: Collection[str] | None, limit: int) -> list[TicketRow]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(queue_statement(groups, limit))).all()
        return [_row(r) for r in rows]

    async def get(self, ticket_id: int) -> Ticket | None:
        statement = (
            select(
                *_LISTED,
                tickets.c.resolved_at,
                tickets.c.notified_at,
                tickets.c.callback_at,
                tickets.c.notify_email,
                tickets.c.contact_id,
            )
            .join(contacts, contacts.c.id == tickets.c.contact_id)
            .where(tickets.c.id == ticket_id)
        )
        said = (
            select(ticket_comments)
            .where(ticket_comments.c.ticket_id == ticket_id)
            .order_by(ticket_comments.c.at, ticket_comments.c.id)
        )
        async with self._engine.connect() as connection:
            row: Any = (await connection.execute(statement)).first()
            if row is None:
                return None
            comments = (await connection.execute(said)).all()
        return Ticket(
            _row(row),
            row.resolved_at,
            row.notified_at,
            row.callback_at,
            row.notify_email,
            [TicketComment(c.at, c.author, c.role, c.text) for c in comments],
        )

    async def change(self, ticket_id: int, at: datetime, values: dict[str, Any]) -> bool:
        statement = (
            update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(**values, updated_at=require_utc(at, "at"))
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def comment(self, ticket_id: int, comment: TicketComment) -> None:
        values = {
            "ticket_id": ticket_id,
            "at": require_utc(comment.at, "at"),
            "author": comment.author,
            "role": comment.role,
            "text": comment.text,
        }
        async with self._engine.begin() as connection:
            await connection.execute(insert(ticket_comments).values(**values))
            await connection.execute(
                update(tickets).where(tickets.c.id == ticket_id).values(updated_at=comment.at)
            )

    async def escalate(
        self, *, level: Escalation, deadline: datetime, now: datetime, group: str | None = None
    ) -> list[int]:
        """Mark `level` on open tickets (of `group`, None: all) due by `deadline` that are not
        marked so yet; the ids newly marked, so each is told once."""
        below = [Escalation.NONE.value]
        if level is Escalation.OVERDUE:
            below.append(Escalation.NEAR.value)
        where = [
            tickets.c.state.in_([s.value for s in OPEN_STATES]),
            tickets.c.due_at <= require_utc(deadline, "deadline"),
            tickets.c.escalation.in_(below),
        ]
        if group is not None:
            where.append(tickets.c.group_name == group)
        async with self._engine.begin() as connection:
            found = await connection.execute(select(tickets.c.id).where(*where).with_for_update())
            ids = [int(i) for i in found.scalars()]
            if ids:
                await connection.execute(
                    update(tickets)
                    .where(tickets.c.id.in_(ids))
                    .values(escalation=level.value, updated_at=now)
                )
        return ids

    async def overdue_by_group(self) -> dict[str, int]:
        statement = (
            select(tickets.c.group_name, func.count().label("overdue"))
            .where(
                tickets.c.state.in_([s.value for s in OPEN_STATES]),
                tickets.c.escalation == Escalation.OVERDUE.value,
            )
            .group_by(tickets.c.group_name)
        )
        async with self._engine.connect() as connection:
            rows: Sequence[Row[Any]] = (await connection.execute(statement)).all()
        return {str(r.group_name): int(r.overdue) for r in rows}

    async def claim(self, ticket_id: int, column: str, at: datetime) -> bool:
        """Set a notice's time (`callback_at`, `notified_at`) if no node has: True for the one
        node that did, so two nodes never tell the citizen twice."""
        assert column in ("callback_at", "notified_at")
        statement = (
            update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c[column].is_(None))
            .values({column: require_utc(at, "at")})
        )
        async with self._engine.begin() as connection:
            return bool((await connection.execute(statement)).rowcount)

    async def release(self, ticket_id: int, column: str) -> None:
        """Undo `claim` after a failed try, so the next tick tries again."""
        assert column in ("callback_at", "notified_at")
        statement = update(tickets).where(tickets.c.id == ticket_id).values({column: None})
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def unnotified(self, limit: int) -> list[int]:
        """Resolved tickets whose citizen has not been told yet (a failed try is retried)."""
        statement = (
            select(tickets.c.id)
            .where(
                tickets.c.state == TicketState.RESOLVED.value,
                or_(tickets.c.notified_at.is_(None), tickets.c.callback_at.is_(None)),
            )
            .order_by(tickets.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            return [int(i) for i in (await connection.execute(statement)).scalars()]


def _row(row: Row[Any]) -> TicketRow:
    m = row._mapping
    return TicketRow(
        id=int(m["id"]),
        number=ContactNumber(m["year"], m["sequence"]),
        group=m["group_name"],
        assignee=m["assignee"],
        state=TicketState(m["state"]),
        escalation=Escalation(m["escalation"]),
        opened_at=m["opened_at"],
        due_at=m["due_at"],
        topic=m["topic"],
        category=m["category"],
    )
