"""Which call-fact writes are committed already: per writer, the number of its last write
committed, moved in the same transaction as the writes (schema: migration
0015_call_fact_marks).

`reporting.fact_writer.FactWriter` numbers the writes it notes (a writer is named anew each
time a process builds one); the number goes with the write through memory and the journal
(`reporting.fact_journal`), and `reporting.fact_store.FactStore.write` leaves out a write whose
number is at or below its writer's mark. So a batch committed twice is written once: a crash
between a replayed batch's commit and the journal's note of it, or a transaction a stop gave
up on (its writes journaled) that committed after all.

A mark rather than a key per write: a writer commits in the order it noted (memory, then the
journal, both in order), so one number says which of its writes are in. One row a writer,
moved once a transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final, NamedTuple, TypeVar

from sqlalchemy import BigInteger, Column, String, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store.db import Base, UTCDateTime, require_utc, utc_now

__all__ = [
    "WriteMark",
    "call_fact_marks",
    "forget_marks",
    "hold_marks",
    "move_marks",
    "not_committed",
]

Written = TypeVar("Written")

call_fact_marks = Table(
    "call_fact_marks",
    Base.metadata,
    Column("writer", String, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

_MOVE: Final = (
    update(call_fact_marks)
    .where(call_fact_marks.c.writer == bindparam("mark_writer"))
    .values(last_seq=bindparam("mark_seq"), updated_at=bindparam("mark_at"))
)


class WriteMark(NamedTuple):
    """A write's writer and its number there (from 1, in the order noted)."""

    writer: str
    seq: int


async def hold_marks(connection: AsyncConnection, writers: Iterable[str]) -> dict[str, int]:
    """The writers' marks (0 for a new writer), their rows locked to the end of the
    transaction: a transaction of the same writer still running (one a stop gave up on) is
    waited for, not read around. Rows are taken in name order, so two never deadlock."""
    names = sorted(set(writers))
    if not names:
        return {}
    now = utc_now()
    rows = [{"writer": name, "last_seq": 0, "updated_at": now} for name in names]
    dialect = connection.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await connection.execute(insert(call_fact_marks).on_conflict_do_nothing(), rows)
    held = await connection.execute(
        select(call_fact_marks.c.writer, call_fact_marks.c.last_seq)
        .where(call_fact_marks.c.writer.in_(names))
        .order_by(call_fact_marks.c.writer)
        .with_for_update()
    )
    return {writer: seq for writer, seq in held.all()}


def not_committed(
    writes: Sequence[Written], marks: Sequence[WriteMark | None], held: dict[str, int]
) -> list[Written]:
    """Of `writes` (each with its mark, or None: a journal's record from before marks),
    those not at or below their writer's mark in `held`."""
    return [
        write
        for write, mark in zip(writes, marks, strict=True)
        if mark is None or mark.seq > held[mark.writer]
    ]


async def move_marks(
    connection: AsyncConnection, held: dict[str, int], marks: Iterable[WriteMark | None]
) -> None:
    """Move each writer's mark (as `hold_marks` read it) to its highest in `marks`."""
    highest = dict(held)
    for mark in marks:
        if mark is not None and mark.seq > highest[mark.writer]:
            highest[mark.writer] = mark.seq
    now = utc_now()
    moved = [
        {"mark_writer": writer, "mark_seq": seq, "mark_at": now}
        for writer, seq in highest.items()
        if seq > held[writer]
    ]
    if moved:
        await connection.execute(_MOVE, moved)


async def forget_marks(connection: AsyncConnection, before: datetime) -> int:
    """Drop the marks of writers whose last commit was before `before` (a process long gone:
    no journal keeps its writes that long); returns how many."""
    statement = delete(call_fact_marks).where(
        call_fact_marks.c.updated_at < require_utc(before, "before")
    )
    result = await connection.execute(statement)
    return result.rowcount or 0
