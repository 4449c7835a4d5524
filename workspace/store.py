"""The contact registry's tables and queries (schema owned by migration 0007_contacts).

`ContactStore` knows SQL and nothing of who asks: auditing views is
`workspace.registry.ContactRegistry`'s job. Numbers come from `contact_counters`, one row per
year bumped in the same transaction that inserts the contact, so a number is never given twice
and never skipped by a failed insert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store.db import Base, UTCDateTime, require_utc
from workspace.model import (
    Category,
    Contact,
    ContactChannel,
    ContactDraft,
    ContactState,
    Identifier,
)
from workspace.numbers import ContactNumber

__all__ = ["REPEAT_WINDOW", "ContactStore", "search_words"]

# "A repeat contact means the same caller or application within 7 days" (issue 12); the
# KPI reports use the same window.
REPEAT_WINDOW: Final = timedelta(days=7)
_MAX_SEARCH_WORDS: Final = 8
# Up to this many matches a search sorts them itself (see ContactStore._search_postgres).
_FEW_MATCHES: Final = 1000

# On the call log's metadata, so the migrations' drift check compares them too.
contact_tables = Base.metadata
counters = Table(
    "contact_counters",
    contact_tables,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)
contacts = Table(
    "contacts",
    contact_tables,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("channel", String, nullable=False),
    Column("line", String, nullable=False),
    Column("call_id", String, nullable=True),
    Column("caller_phone", String, nullable=False),
    Column("caller_name", String, nullable=False),
    Column("identifiers", String, nullable=False),
    Column("application_number", String, nullable=True),
    Column("category", String, nullable=False),
    Column("topic", String, nullable=False),
    Column("description", String, nullable=False),
    Column("group_name", String, nullable=False),
    Column("operator_id", String, nullable=True),
    Column("state", String, nullable=False),
    Column("resolution", String, nullable=False),
    Column("first_contact_resolution", Boolean, nullable=True),
    Column("rating", Integer, nullable=True),
    Column("repeat", Boolean, nullable=False),
    Column("search_text", String, nullable=False),
    # set when the retention job cleared the personal fields (migration 0010_feedback)
    Column("anonymised_at", UTCDateTime, nullable=True),
    Column("expected_by", Date, nullable=True),  # the feedback form's date (0010_feedback)
    # search_vector: on PostgreSQL to_tsvector('russian', search_text), generated and stored by
    # migration 0011_contact_search (SQLAlchemy's Computed has no per-dialect form); on SQLite
    # an unused column
    Column("waited_seconds", Integer, nullable=True),  # migration 0011_contact_search
    Column("search_vector", TSVECTOR().with_variant(String(), "sqlite"), nullable=True),
    UniqueConstraint("year", "sequence", name="uq_contacts_number"),
    Index("ix_contacts_caller_phone", "caller_phone", "opened_at"),
    Index("ix_contacts_application_number", "application_number", "opened_at"),
    Index("ix_contacts_opened_at", "opened_at"),
    Index("ix_contacts_call_id", "call_id"),
)
# The full-text index: GIN on PostgreSQL; on SQLite an index of the unused column (SQLite
# scans `search_text`), kept so that models and migrations are one schema on both.
Index("ix_contacts_search_vector", contacts.c.search_vector, postgresql_using="gin")


def search_words(text: str) -> list[str]:
    """The words a search looks for: case-folded, at most a few (a query is not a document)."""
    return text.casefold().split()[:_MAX_SEARCH_WORDS]


def _search_text(*parts: str | None) -> str:
    return " ".join(p for p in parts if p).casefold()


class ContactStore:
    """Contacts in SQL: numbered inserts, updates, and the lookups the desktop needs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open(self, draft: ContactDraft, at: datetime) -> Contact:
        """Store a new contact with the next number of `at`'s year, its repeat flag set."""
        at = require_utc(at, "at")
        async with self._engine.begin() as connection:
            sequence = await self._next_sequence(connection, at.year)
            repeat = await self._has_recent(connection, draft, at)
            values = _draft_values(draft, at, sequence, repeat)
            await connection.execute(insert(contacts).values(**values))
        found = await self.get(ContactNumber(at.year, sequence))
        assert found is not None, "a contact vanished right after it was stored"
        return found

    async def _next_sequence(self, connection: AsyncConnection, year: int) -> int:
        dialect = self._engine.dialect.name
        insert_of = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert_of(counters)
            .values(year=year, last=1)
            .on_conflict_do_update(index_elements=["year"], set_={"last": counters.c["last"] + 1})
            .returning(counters.c["last"])
        )
        return int((await connection.execute(statement)).scalar_one())

    async def _has_recent(
        self, connection: AsyncConnection, draft: ContactDraft, at: datetime
    ) -> bool:
        same = _same_caller_or_application(draft.caller_phone, draft.application_number)
        if same is None:
            return False
        statement = select(contacts.c.id).where(
            same, contacts.c.opened_at >= at - REPEAT_WINDOW, contacts.c.opened_at <= at
        )
        return (await connection.execute(statement.limit(1))).first() is not None

    async def get(self, number: ContactNumber) -> Contact | None:
        statement = select(contacts).where(
            contacts.c.year == number.year, contacts.c.sequence == number.sequence
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else _contact(row)

    async def by_call(self, call_id: str) -> Contact | None:
        statement = select(contacts).where(contacts.c.call_id == call_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement.order_by(contacts.c.id).limit(1))).first()
        return None if row is None else _contact(row)

    async def change(self, number: ContactNumber, values: dict[str, Any]) -> Contact | None:
        """Apply column `values` to one contact; None if there is no such contact.

        The search text is rebuilt from the row as read in the same transaction, so two
        edits at once never leave it describing neither."""
        this = and_(contacts.c.year == number.year, contacts.c.sequence == number.sequence)
        async with self._engine.begin() as connection:
            read = select(contacts.c.description, contacts.c.resolution, contacts.c.topic)
            row = (await connection.execute(read.where(this).with_for_update())).first()
            if row is None:
                return None
            merged = {**row._asdict(), **values}
            text = _search_text(merged["description"], merged["resolution"], merged["topic"])
            statement = update(contacts).where(this).values(**values, search_text=text)
            await connection.execute(statement)
        return await self.get(number)

    async def rate_call(self, call_id: str, rating: int) -> bool:
        """Store the rating on the contact `call_id` opened; False when it opened none."""
        statement = update(contacts).where(contacts.c.call_id == call_id).values(rating=rating)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def history(
        self, *, phone: str, application: str | None, since: datetime, limit: int
    ) -> list[Contact]:
        """Contacts from this phone or about this application since `since`, newest first."""
        same = _same_caller_or_application(phone, application)
        if same is None:
            return []
        statement = (
            select(contacts)
            .where(same, contacts.c.opened_at >= require_utc(since, "since"))
            .order_by(contacts.c.opened_at.desc(), contacts.c.id.desc())
            .limit(limit)
        )
        return await self._many(statement)

    async def search(self, text: str, limit: int) -> list[Contact]:
        """Contacts whose description, resolution or topic hold every word of `text`."""
        words = search_words(text)
        if not words:
            return []
        newest = (contacts.c.opened_at.desc(), contacts.c.id.desc())
        if self._engine.dialect.name == "postgresql":
            return await self._search_postgres(" ".join(words), limit)
        condition = and_(*(func.instr(contacts.c.search_text, w) > 0 for w in words))
        return await self._many(select(contacts).where(condition).order_by(*newest).limit(limit))

    async def _search_postgres(self, words: str, limit: int) -> list[Contact]:
        """Russian full text on the stored vector (migration 0009; stems: "паспорт" finds
        "паспорта"), newest first. Left to itself the planner walks `opened_at` backwards
        testing each row, which is quick for a common word and a scan of the whole table for
        a rare one (it cannot tell them apart). So the GIN index is asked first for at most
        `_FEW_MATCHES` ids: if that is all there is, they are sorted here (rare word);
        otherwise matches are dense and the backward walk stops early (common word)."""
        matching = contacts.c.search_vector.op("@@")(func.plainto_tsquery("russian", words))
        newest = (contacts.c.opened_at.desc(), contacts.c.id.desc())
        async with self._engine.connect() as connection:
            probe = select(contacts.c.id).where(matching).limit(_FEW_MATCHES + 1)
            ids = (await connection.execute(probe)).scalars().all()
            if len(ids) > _FEW_MATCHES:
                dense = select(contacts).where(matching).order_by(*newest).limit(limit)
                return [_contact(row) for row in (await connection.execute(dense)).all()]
            # a few: read them by primary key and sort here, no plan left to chance
            rows = (await connection.execute(select(contacts).where(contacts.c.id.in_(ids)))).all()
        found = sorted(rows, key=lambda row: (row.opened_at, row.id), reverse=True)
        return [_contact(row) for row in found[:limit]]

    async def _many(self, statement: Any) -> list[Contact]:
        async with self._engine.connect() as connection:
            rows: Sequence[Row[Any]] = (await connection.execute(statement)).all()
        return [_contact(row) for row in rows]


def _same_caller_or_application(phone: str, application: str | None) -> Any:
    conditions = []
    if phone:
        conditions.append(contacts.c.caller_phone == phone)
    if application:
        conditions.append(contacts.c.application_number == application)
    return or_(*conditions) if conditions else None


def _draft_values(draft: ContactDraft, at: datetime, sequence: int, repeat: bool) -> dict[str, Any]:
    return {
        "year": at.year,
        "sequence": sequence,
        "opened_at": at,
        "closed_at": None,
        "channel": draft.channel.value,
        "line": draft.line,
        "call_id": draft.call_id,
        "caller_phone": draft.caller_phone,
        "caller_name": draft.caller_name,
        "identifiers": json.dumps(
            {str(k): v for k, v in sorted(draft.identifiers.items())}, ensure_ascii=False
        ),
        "application_number": draft.application_number,
        "category": draft.category.value,
        "topic": draft.topic,
        "description": draft.description,
        "group_name": draft.group,
        "operator_id": draft.operator_id,
        "state": ContactState.OPEN.value,
        "resolution": "",
        "first_contact_resolution": None,
        "rating": None,
        "repeat": repeat,
        "waited_seconds": draft.waited_seconds,
        "search_text": _search_text(draft.description, "", draft.topic),
        "expected_by": draft.expected_by,
    }


def _contact(row: Row[Any]) -> Contact:
    m = row._mapping
    identifiers = {Identifier(k): v for k, v in json.loads(m["identifiers"]).items()}
    return Contact(
        number=ContactNumber(m["year"], m["sequence"]),
        opened_at=m["opened_at"],
        channel=ContactChannel(m["channel"]),
        line=m["line"],
        call_id=m["call_id"],
        caller_phone=m["caller_phone"],
        caller_name=m["caller_name"],
        identifiers=identifiers,
        application_number=m["application_number"],
        category=Category(m["category"]),
        topic=m["topic"],
        description=m["description"],
        group=m["group_name"],
        operator_id=m["operator_id"],
        state=ContactState(m["state"]),
        resolution=m["resolution"],
        first_contact_resolution=m["first_contact_resolution"],
        rating=m["rating"],
        repeat=bool(m["repeat"]),
        closed_at=m["closed_at"],
        expected_by=m["expected_by"],
        waited_seconds=m["waited_seconds"],
    )
