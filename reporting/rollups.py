"""Rollups of the call facts: what a report sums, kept up to date as facts are written, so a
month's report reads a few thousand rows however many calls there were.

Two tables (migration 0012_call_facts), each a row per slice with every measure as a sum:

* `call_slices`: per local day, hour, line and group (the total, line, group, hour and day
  breakdowns roll up from it);
* `operator_slices`: per local day, group and answering operator (the operator breakdown).

Every write of a fact (`reporting.fact_store.FactStore`) applies the difference between the
fact's measures before and after to its slices, in the same transaction (an upsert adding
the difference, so nodes writing at once never lose one); a batch of writes sums its
differences per slice first (`SliceChanges`). `rebuild` recomputes the slices of
a period from the facts themselves (after a bulk load, or to check them).

The service level's threshold is one of `SL_CHOICES` (each is summed): the targets file may
pick any of them, and a report for an old month answers with the threshold of today.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from sqlalchemy import (
    Column,
    Date,
    Float,
    Integer,
    String,
    Table,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from hotline.store.db import Base

__all__ = [
    "MEASURES",
    "SL_CHOICES",
    "SliceChanges",
    "apply_change",
    "call_slices",
    "measures_of",
    "operator_slices",
    "rebuild",
    "upsert_adding",
]

SL_CHOICES: Final = (10, 15, 20, 30, 45, 60, 90, 120)
MEASURES: Final = (
    "calls",
    "queued",
    "answered",
    *(f"answered_in_{seconds}" for seconds in SL_CHOICES),
    "wait_total",
    "abandoned",
    "abandoned_ringing",
    "self_service",
    "overflowed",
    "callbacks",
    "transferred",
    "escalated",
    "talk_total",
    "hold_total",
    "wrap_total",
    "rated",
    "rating_total",
    *(f"rating_{mark}" for mark in range(1, 6)),
    "fcr_known",
    "fcr_yes",
    "repeats",
)
CALL_KEYS: Final = ("local_day", "local_hour", "line", "group_name")
OPERATOR_KEYS: Final = ("local_day", "group_name", "operator_id")


def _slices(name: str, keys: tuple[str, ...]) -> Table:
    key_columns = [
        Column(
            key,
            Date if key == "local_day" else Integer if key == "local_hour" else String,
            nullable=False,
        )
        for key in keys
    ]
    return Table(
        name,
        Base.metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        *key_columns,
        *(Column(measure, Float, nullable=False) for measure in MEASURES),
        UniqueConstraint(*keys, name=f"uq_{name}_slice"),
    )


call_slices = _slices("call_slices", CALL_KEYS)
operator_slices = _slices("operator_slices", OPERATOR_KEYS)


def measures_of(fact: Mapping[str, Any]) -> dict[str, float]:
    """One fact's contribution to every measure (the sums a report divides)."""
    answered = bool(fact["answered"])
    abandoned = fact["outcome"] == "abandoned"
    wait = fact["wait_seconds"]
    rating = fact["rating"]
    fcr = fact["fcr_operator"]

    def money(name: str) -> float:  # a time summed over answered calls only
        value = fact[name]
        return float(value) if answered and value is not None else 0.0

    m: dict[str, float] = {
        "calls": 1.0,
        "queued": float(bool(fact["queued"])),
        "answered": float(answered),
        "wait_total": float(wait) if answered and wait is not None else 0.0,
        "abandoned": float(abandoned),
        "abandoned_ringing": float(abandoned and bool(fact["abandoned_ringing"])),
        "self_service": float(fact["outcome"] == "self_service"),
        "overflowed": float(bool(fact["overflowed"])),
        "callbacks": float(bool(fact["callback_booked"])),
        "transferred": float(bool(fact["transferred"])),
        "escalated": float(bool(fact["escalated"])),
        "talk_total": money("talk_seconds"),
        "hold_total": money("hold_seconds"),
        "wrap_total": money("wrap_seconds"),
        "rated": float(rating is not None),
        "rating_total": float(rating or 0),
        "fcr_known": float(fcr is not None),
        "fcr_yes": float(fcr is True and not fact["came_back"]),
        "repeats": float(bool(fact["repeat"])),
    }
    for seconds in SL_CHOICES:
        m[f"answered_in_{seconds}"] = float(answered and wait is not None and wait <= seconds)
    for mark in range(1, 6):
        m[f"rating_{mark}"] = float(rating == mark)
    return m


async def apply_change(
    connection: AsyncConnection,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Move the slices from a fact as it was (`before`, None: new) to as it is (`after`)."""
    changes = SliceChanges()
    changes.note(before, after)
    await changes.apply(connection)


class SliceChanges:
    """The slices' differences of many fact writes, summed per slice, then applied as one
    upsert per slice: a batch of a thousand facts of one hour and line moves a few rows once
    each instead of two rows per fact (`reporting.fact_store.FactStore.write`)."""

    def __init__(self) -> None:
        # per table, per slice: the differences in `MEASURES`' order
        self._deltas: dict[Table, dict[tuple[Any, ...], list[float]]] = {
            call_slices: {},
            operator_slices: {},
        }

    def note(self, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
        """A fact moved from `before` (None: new) to `after` (None: gone)."""
        for fact, add in ((before, operator.sub), (after, operator.add)):
            if fact is None:
                continue
            measures = measures_of(fact)  # once for both tables, summed in C: a batch's CPU
            values = [measures[name] for name in MEASURES]
            for table, keys in ((call_slices, CALL_KEYS), (operator_slices, OPERATOR_KEYS)):
                if table is operator_slices and not fact["operator_id"]:
                    continue  # the operator breakdown holds answered calls only
                slot = tuple(fact[key] if fact[key] is not None else "" for key in keys)
                delta = self._deltas[table].setdefault(slot, [0.0] * len(MEASURES))
                delta[:] = map(add, delta, values)

    async def apply(self, connection: AsyncConnection) -> None:
        """Add every slice's difference (an upsert each, so nodes writing at once never lose
        one); differences that sum to nothing are not written."""
        for table, keys in ((call_slices, CALL_KEYS), (operator_slices, OPERATOR_KEYS)):
            rows = [  # in key order: nodes committing at once lock the rows in one order
                dict(zip(keys, slot, strict=True)) | dict(zip(MEASURES, delta, strict=True))
                for slot, delta in sorted(self._deltas[table].items())
                if any(delta)
            ]
            if rows:
                await _add(connection, table, keys, rows)
        for deltas in self._deltas.values():
            deltas.clear()


async def _add(
    connection: AsyncConnection,
    table: Table,
    keys: tuple[str, ...],
    rows: list[dict[str, Any]],
) -> None:
    statement = upsert_adding(connection.dialect.name, table, keys, MEASURES)
    await connection.execute(statement, rows)


@functools.cache
def upsert_adding(
    dialect: str, table: Table, keys: tuple[str, ...], sums: tuple[str, ...]
) -> Insert:
    """An insert of a row per key that, where the key's row exists, adds to its `sums`: built
    once per table (building it and its cache key again for every batch cost more than the
    batch's SQL)."""
    insert_of = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_of(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


async def rebuild(connection: AsyncConnection, first_day: date, last_day: date) -> None:
    """The slices of `first_day`..`last_day` recomputed from the facts (in SQL)."""
    from reporting.fact_store import call_facts

    c = call_facts.c
    answered = c.answered.is_(True)
    sums = _sql_measures(c, answered)
    period = and_(c.local_day >= first_day, c.local_day <= last_day)
    for table, keys, where in (
        (call_slices, CALL_KEYS, period),
        (operator_slices, OPERATOR_KEYS, and_(period, c.operator_id.is_not(None))),
    ):
        t = table.c
        await connection.execute(
            delete(table).where(t.local_day >= first_day, t.local_day <= last_day)
        )
        key_columns = [
            func.coalesce(c[key], literal("")) if key in ("group_name", "operator_id", "line")
            else c[key]
            for key in keys
        ]  # fmt: skip
        source = select(*key_columns, *(sums[name] for name in MEASURES)).where(where)
        source = source.group_by(*key_columns)
        await connection.execute(insert(table).from_select([*keys, *MEASURES], source))


def _sql_measures(c: Any, answered: Any) -> dict[str, Any]:
    """`measures_of` in SQL, for `rebuild`."""
    n = func.count
    total = func.sum
    abandoned = c.outcome == "abandoned"
    sums: dict[str, Any] = {
        "calls": n(),
        "queued": n().filter(c.queued.is_(True)),
        "answered": n().filter(answered),
        "wait_total": func.coalesce(total(c.wait_seconds).filter(answered), 0.0),
        "abandoned": n().filter(abandoned),
        "abandoned_ringing": n().filter(and_(abandoned, c.abandoned_ringing.is_(True))),
        "self_service": n().filter(c.outcome == "self_service"),
        "overflowed": n().filter(c.overflowed.is_(True)),
        "callbacks": n().filter(c.callback_booked.is_(True)),
        "transferred": n().filter(c.transferred.is_(True)),
        "escalated": n().filter(c.escalated.is_(True)),
        "talk_total": func.coalesce(total(c.talk_seconds).filter(answered), 0.0),
        "hold_total": func.coalesce(total(c.hold_seconds).filter(answered), 0.0),
        "wrap_total": func.coalesce(total(c.wrap_seconds).filter(answered), 0.0),
        "rated": n().filter(c.rating.is_not(None)),
        "rating_total": func.coalesce(total(c.rating), 0),
        "fcr_known": n().filter(c.fcr_operator.is_not(None)),
        "fcr_yes": n().filter(and_(c.fcr_operator.is_(True), c.came_back.is_(False))),
        "repeats": n().filter(c.repeat.is_(True)),
    }
    for seconds in SL_CHOICES:
        sums[f"answered_in_{seconds}"] = n().filter(and_(answered, c.wait_seconds <= seconds))
    for mark in range(1, 6):
        sums[f"rating_{mark}"] = n().filter(c.rating == mark)
    return sums
