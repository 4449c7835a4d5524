"""The KPIs of a period, computed by the database: sums per line, group, operator, hour and
day (one pass with GROUPING SETS on PostgreSQL, one query per breakdown on SQLite), turned
into figures here from a few dozen rows, never from the calls themselves.

Definitions (the report's footnote says the same in Russian):

* ASA: the average wait of answered calls, from joining the queue to the operator's answer;
* service level: answered within `service_level_seconds` of those answered or abandoned;
* abandon rate: abandoned in the queue (ringing included) of those answered or abandoned;
* first-contact resolution: resolved by the operator's flag and not come back within 7 days,
  of the calls whose contact has the flag set;
* CSAT: the average of the callers' marks (1-5) and how many gave each;
* repeat rate: calls from a caller or about an application seen in the 7 days before, of all;
* occupancy: operators' ringing, talk and wrap-up of their ready, ringing, talk and wrap-up
  time (`operator_time`; pauses are not time at work);
* handle time: talk, hold and wrap-up per answered call.

A transferred call is one call: answered once (the first answer's wait), its talk and
wrap-up the sum of both operators'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, case, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.fact_store import call_facts, operator_time
from reporting.targets import Targets

__all__ = ["BREAKDOWNS", "KpiRow", "Kpis", "compute_kpis"]

c = call_facts.c
# breakdown -> the column it groups by (None: the whole period)
BREAKDOWNS: Final[dict[str, Any]] = {
    "total": None,
    "line": c.line,
    "group": c.group_name,
    "operator": c.operator_id,
    "hour": c.local_hour,
    "day": c.local_day,
}
_GROUPED: Final = ("line", "group", "operator", "hour", "day")


def _count(condition: ColumnElement[Any]) -> Any:
    return func.count().filter(condition)


def _total(value: ColumnElement[Any], condition: ColumnElement[Any]) -> Any:
    return func.coalesce(func.sum(value).filter(condition), 0.0)


def _sums(sl_seconds: float) -> dict[str, Any]:
    answered = c.answered.is_(True)
    abandoned = c.outcome == "abandoned"
    sums: dict[str, Any] = {
        "calls": func.count(),
        "queued": _count(c.queued.is_(True)),
        "answered": _count(answered),
        "answered_in_sl": _count(and_(answered, c.wait_seconds <= sl_seconds)),
        "wait_total": _total(c.wait_seconds, answered),
        "abandoned": _count(abandoned),
        "abandoned_ringing": _count(and_(abandoned, c.abandoned_ringing.is_(True))),
        "self_service": _count(c.outcome == "self_service"),
        "overflowed": _count(c.overflowed.is_(True)),
        "callbacks": _count(c.callback_booked.is_(True)),
        "transferred": _count(c.transferred.is_(True)),
        "escalated": _count(c.escalated.is_(True)),
        "talk_total": _total(c.talk_seconds, answered),
        "hold_total": _total(c.hold_seconds, answered),
        "wrap_total": _total(c.wrap_seconds, answered),
        "rated": _count(c.rating.is_not(None)),
        "rating_total": _total(c.rating, c.rating.is_not(None)),
        "fcr_known": _count(c.fcr_operator.is_not(None)),
        "fcr_yes": _count(and_(c.fcr_operator.is_(True), c.came_back.is_(False))),
        "repeats": _count(c.repeat.is_(True)),
    }
    for mark in range(1, 6):
        sums[f"rating_{mark}"] = _count(c.rating == mark)
    return sums


@dataclass
class KpiRow:
    """The sums of one slice (a day, an operator...) and its figures."""

    key: str
    sums: dict[str, float]
    busy_seconds: float = 0.0
    staffed_seconds: float = 0.0

    def _n(self, name: str) -> float:
        return float(self.sums.get(name, 0) or 0)

    def _ratio(self, top: float, bottom: float, scale: float = 100.0) -> float | None:
        return None if bottom <= 0 else scale * top / bottom

    @property
    def calls(self) -> int:
        return int(self._n("calls"))

    @property
    def answered(self) -> int:
        return int(self._n("answered"))

    @property
    def abandoned(self) -> int:
        return int(self._n("abandoned"))

    @property
    def asa_seconds(self) -> float | None:
        return self._ratio(self._n("wait_total"), self._n("answered"), 1.0)

    @property
    def service_level_percent(self) -> float | None:
        judged = self._n("answered") + self._n("abandoned")
        return self._ratio(self._n("answered_in_sl"), judged)

    @property
    def abandon_percent(self) -> float | None:
        judged = self._n("answered") + self._n("abandoned")
        return self._ratio(self._n("abandoned"), judged)

    @property
    def fcr_percent(self) -> float | None:
        return self._ratio(self._n("fcr_yes"), self._n("fcr_known"))

    @property
    def csat_average(self) -> float | None:
        return self._ratio(self._n("rating_total"), self._n("rated"), 1.0)

    @property
    def csat_distribution(self) -> list[int]:
        return [int(self._n(f"rating_{mark}")) for mark in range(1, 6)]

    @property
    def repeat_percent(self) -> float | None:
        return self._ratio(self._n("repeats"), self._n("calls"))

    @property
    def handle_seconds(self) -> float | None:
        work = self._n("talk_total") + self._n("hold_total") + self._n("wrap_total")
        return self._ratio(work, self._n("answered"), 1.0)

    @property
    def occupancy_percent(self) -> float | None:
        return self._ratio(self.busy_seconds, self.staffed_seconds)

    def figure(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value

    def count(self, name: str) -> int:
        return int(self._n(name))


@dataclass
class Kpis:
    """A period's KPIs: the whole and each breakdown, with the targets they are judged by."""

    first_day: date
    last_day: date
    group: str | None
    targets: Targets
    total: KpiRow
    by: dict[str, list[KpiRow]] = field(default_factory=dict)


async def compute_kpis(
    engine: AsyncEngine,
    first_day: date,
    last_day: date,
    targets: Targets,
    group: str | None = None,
) -> Kpis:
    """The KPIs of the days `first_day`..`last_day` (the hotline's local days, both included),
    of one group when `group` is given."""
    if last_day < first_day:
        raise ValueError("the period ends before it starts")
    where = [c.local_day >= first_day, c.local_day <= last_day]
    if group is not None:
        where.append(c.group_name == group)
    sums = _sums(targets.service_level_seconds)
    if engine.dialect.name == "postgresql":
        rows = await _grouping_sets(engine, sums, where)
    else:
        async with engine.connect() as connection:
            rows = await _one_by_one(connection, sums, where)
    async with engine.connect() as connection:
        occupancy = await _occupancy(connection, first_day, last_day)
    by: dict[str, list[KpiRow]] = {name: [] for name in _GROUPED}
    total = KpiRow("total", {})
    for breakdown, key, values in rows:
        row = KpiRow(key, values)
        busy, staffed = occupancy.get((breakdown, key), (0.0, 0.0))
        row.busy_seconds, row.staffed_seconds = busy, staffed
        if breakdown == "total":
            total = row
        else:
            by[breakdown].append(row)
    if total.staffed_seconds == 0.0:
        total.busy_seconds, total.staffed_seconds = occupancy.get(("total", ""), (0.0, 0.0))
    for name, breakdown_rows in by.items():
        breakdown_rows.sort(key=lambda r: _sort_key(name, r.key))
    return Kpis(first_day, last_day, group, targets, total, by)


def _sort_key(breakdown: str, key: str) -> tuple[int, int, str]:
    """Hours in order, the rest by name; calls without a group or operator last."""
    if breakdown == "hour":
        return (0, int(key) if key.isdigit() else 99, "")
    return (0 if key else 1, 0, key)


def _key_text(value: Any) -> str:
    return "" if value is None else str(value)


async def _grouping_sets(
    engine: AsyncEngine, sums: dict[str, Any], where: Sequence[Any]
) -> list[tuple[str, str, dict[str, float]]]:
    """PostgreSQL: two scans of the period's rows at once, on two connections. One sums per
    (day, hour, line, group), a few thousand slices, which GROUPING SETS then roll up into
    the total, line, group, hour and day; the other sums per operator. (GROUPING SETS over
    the rows themselves aggregate every row six times and cannot run in parallel.)"""
    dims = [BREAKDOWNS[name] for name in ("line", "group", "hour", "day")]
    sliced = select(*dims, *(value.label(name) for name, value in sums.items()))
    base = sliced.where(*where).group_by(*dims).subquery("slices")
    rolled = [base.c[column.name] for column in dims]
    grouping = func.grouping(*rolled).label("grouping_id")
    rollup = (
        select(*rolled, grouping, *(func.sum(base.c[name]).label(name) for name in sums))
        .select_from(base)
        .group_by(text("GROUPING SETS ((), (line), (group_name), (local_hour), (local_day))"))
    )
    operator = BREAKDOWNS["operator"]
    per_operator = select(operator, *(value.label(name) for name, value in sums.items()))
    per_operator = per_operator.where(*where).group_by(operator)

    async def rows_of(statement: Any) -> list[Any]:
        async with engine.connect() as connection:
            return list((await connection.execute(statement)).all())

    rolled_rows, operator_rows = await asyncio.gather(rows_of(rollup), rows_of(per_operator))
    names = ("line", "group", "hour", "day")
    bits = {15: "total"} | {15 ^ (1 << (3 - index)): name for index, name in enumerate(names)}
    found = []
    for row in rolled_rows:
        m = row._mapping
        breakdown = bits[int(m["grouping_id"])]
        column = BREAKDOWNS[breakdown]
        key = "" if column is None else _key_text(m[column.name])
        found.append((breakdown, key, {name: float(m[name] or 0) for name in sums}))
    for row in operator_rows:
        m = row._mapping
        values = {name: float(m[name] or 0) for name in sums}
        found.append(("operator", _key_text(m[operator.name]), values))
    return found


async def _one_by_one(
    connection: Any, sums: dict[str, Any], where: Sequence[Any]
) -> list[tuple[str, str, dict[str, float]]]:
    """SQLite (no GROUPING SETS): a query per breakdown."""
    found = []
    for breakdown, column in BREAKDOWNS.items():
        key_column = literal("") if column is None else column
        statement = select(key_column.label("slice"), *(v.label(n) for n, v in sums.items()))
        statement = statement.where(*where)
        if column is not None:
            statement = statement.group_by(column)
        for row in (await connection.execute(statement)).all():
            m = row._mapping
            values = {name: float(m[name] or 0) for name in sums}
            if breakdown == "total" and values["calls"] == 0:
                values = {name: 0.0 for name in sums}
            found.append((breakdown, _key_text(m["slice"]), values))
    return found


_BUSY: Final = ("ringing", "talking", "wrap_up")
_AT_WORK: Final = ("ready", "ringing", "talking", "wrap_up")


async def _occupancy(
    connection: Any, first_day: date, last_day: date
) -> dict[tuple[str, str], tuple[float, float]]:
    """(breakdown, key) -> (busy seconds, seconds at work), per operator, day, hour and all
    (one GROUPING SETS pass on PostgreSQL, a query each on SQLite)."""
    t = operator_time.c
    busy = func.coalesce(func.sum(case((t.state.in_(_BUSY), t.seconds), else_=0.0)), 0.0)
    work = func.coalesce(func.sum(case((t.state.in_(_AT_WORK), t.seconds), else_=0.0)), 0.0)
    where = (t.local_day >= first_day, t.local_day <= last_day)
    slices = (("operator", t.operator_id), ("day", t.local_day), ("hour", t.local_hour))
    found: dict[tuple[str, str], tuple[float, float]] = {}
    if connection.dialect.name == "postgresql":
        columns = [column for _, column in slices]
        grouping = func.grouping(*columns).label("grouping_id")
        statement = (
            select(*columns, grouping, busy.label("busy"), work.label("work"))
            .where(*where)
            .group_by(text("GROUPING SETS ((), (operator_id), (local_day), (local_hour))"))
        )
        names = {7: ("total", None), 3: slices[0], 5: slices[1], 6: slices[2]}
        for row in (await connection.execute(statement)).all():
            breakdown, column = names[int(row.grouping_id)]
            key = "" if column is None else _key_text(row._mapping[column.name])
            found[(breakdown, key)] = (float(row.busy or 0), float(row.work or 0))
        return found
    for breakdown, column in (("total", None), *slices):
        key_column = literal("") if column is None else column
        one = select(key_column.label("slice"), busy.label("busy"), work.label("work"))
        one = one.where(*where)
        if column is not None:
            one = one.group_by(column)
        for row in (await connection.execute(one)).all():
            key = _key_text(row.slice)
            found[(breakdown, key)] = (float(row.busy or 0), float(row.work or 0))
    return found
