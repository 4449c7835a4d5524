"""The KPIs of a period, computed by the database from the facts' rollups
(`reporting.rollups`: a row per day, hour, line and group, and per day, group and operator,
kept as facts are written): sums per line, group, operator, hour and day (GROUPING SETS on
PostgreSQL, a query per breakdown on SQLite) over a few thousand rows a month, turned into
figures here; never a loop over calls.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.fact_store import operator_time
from reporting.rollups import MEASURES, SL_CHOICES, call_slices, operator_slices
from reporting.targets import Targets

__all__ = ["BREAKDOWNS", "KpiRow", "Kpis", "compute_kpis"]

c = call_slices.c
o = operator_slices.c
# breakdown -> the slice column it groups by (None: the whole period)
BREAKDOWNS: Final[dict[str, Any]] = {
    "total": None,
    "line": c.line,
    "group": c.group_name,
    "hour": c.local_hour,
    "day": c.local_day,
}
_GROUPED: Final = ("line", "group", "operator", "hour", "day")


def _sums(table: Any, sl_seconds: float) -> dict[str, Any]:
    """Each measure summed over the slices; the service level's is the threshold's column."""
    if int(sl_seconds) not in SL_CHOICES or sl_seconds != int(sl_seconds):
        raise ValueError(f"the service level is counted at {SL_CHOICES} seconds only")
    sums = {name: func.coalesce(func.sum(table.c[name]), 0.0) for name in MEASURES}
    sums["answered_in_sl"] = sums[f"answered_in_{int(sl_seconds)}"]
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
    of one group when `group` is given: sums of the rollups (`reporting.rollups`)."""
    if last_day < first_day:
        raise ValueError("the period ends before it starts")
    where = [c.local_day >= first_day, c.local_day <= last_day]
    by_operator = [o.local_day >= first_day, o.local_day <= last_day]
    if group is not None:
        where.append(c.group_name == group)
        by_operator.append(o.group_name == group)
    sums = _sums(call_slices, targets.service_level_seconds)
    operator_sums = _sums(operator_slices, targets.service_level_seconds)
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = await _grouping_sets(connection, sums, where)
        else:
            rows = await _one_by_one(connection, sums, where)
        operators = select(o.operator_id, *(v.label(n) for n, v in operator_sums.items()))
        operators = operators.where(*by_operator).group_by(o.operator_id)
        for found in (await connection.execute(operators)).all():
            m = found._mapping
            values = {name: float(m[name] or 0) for name in operator_sums}
            rows.append(("operator", str(m["operator_id"]), values))
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
    connection: Any, sums: dict[str, Any], where: Sequence[Any]
) -> list[tuple[str, str, dict[str, float]]]:
    """PostgreSQL: every breakdown but the operators' in one pass over the slices."""
    names = ("line", "group", "hour", "day")
    columns = [BREAKDOWNS[name] for name in names]
    grouping = func.grouping(*columns).label("grouping_id")
    statement = (
        select(*columns, grouping, *(value.label(name) for name, value in sums.items()))
        .where(*where)
        .group_by(text("GROUPING SETS ((), (line), (group_name), (local_hour), (local_day))"))
    )
    bits = {15: "total"} | {15 ^ (1 << (3 - index)): name for index, name in enumerate(names)}
    found = []
    for row in (await connection.execute(statement)).all():
        m = row._mapping
        breakdown = bits[int(m["grouping_id"])]
        column = BREAKDOWNS[breakdown]
        key = "" if column is None else _key_text(m[column.name])
        found.append((breakdown, key, {name: float(m[name] or 0) for name in sums}))
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
            found.append((breakdown, _key_text(m["slice"]), values))
    return found


async def _occupancy(
    connection: Any, first_day: date, last_day: date
) -> dict[tuple[str, str], tuple[float, float]]:
    """(breakdown, key) -> (busy seconds, seconds at work), per operator, day, hour and all
    (one GROUPING SETS pass on PostgreSQL, a query each on SQLite)."""
    t = operator_time.c
    busy = func.coalesce(func.sum(t.busy_seconds), 0.0)
    work = func.coalesce(func.sum(t.work_seconds), 0.0)
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
