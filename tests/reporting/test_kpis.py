"""KPI arithmetic against a hand-computed day (`report_kit`), on SQLite and PostgreSQL: the
facts as the recorder writes them from the call's events, and the figures the database
aggregates from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from report_kit import Day, HandClock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.fact_store import FactStore
from reporting.facts import CallFacts
from reporting.kpis import compute_kpis
from reporting.rollups import call_slices, operator_slices, rebuild
from reporting.targets import Targets

DAY1 = date(2026, 12, 1)


@pytest.fixture(params=DATABASE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with (
        empty_database(request.param, tmp_path / "facts.sqlite3", "reporting") as url,
        migrated_engine(url) as engine,
    ):
        yield engine


@pytest.fixture
async def day(engine: AsyncEngine) -> AsyncIterator[Day]:
    clock = HandClock()
    facts = CallFacts(FactStore(engine), ZoneInfo("Europe/Moscow"), clock)
    played = Day(facts, clock)
    await played.play()
    yield played
    await facts.stop()


async def test_each_call_is_one_fact_with_its_timings(engine: AsyncEngine, day: Day) -> None:
    store = day.facts.store
    a = await store.get("A")
    assert a is not None
    assert (a["outcome"], a["operator_id"], a["group_name"]) == ("answered", "op1", "general")
    assert (a["wait_seconds"], a["talk_seconds"], a["wrap_seconds"]) == (10.0, 300.0, 60.0)
    assert (a["menu_seconds"], a["menu_path"], a["menu_exit"]) == (
        30.0,
        "start main queue",
        "queue general",
    )
    assert (a["contact_number"], a["fcr_operator"], a["rating"]) == ("202600000017", True, 5)
    assert (a["caller_number"], a["line"], a["topic"]) == (
        "79990000001",
        "88001000001",
        "регистрация",
    )
    b = await store.get("B")
    assert b is not None
    assert (b["outcome"], b["abandoned_ringing"], b["wait_seconds"]) == ("abandoned", True, 10.0)
    assert b["ringing_operators"] == "op2" and b["operator_id"] is None
    c = await store.get("C")
    assert c is not None  # transferred: one fact, the first answer's wait, both operators' work
    assert (c["outcome"], c["answered"], c["transferred"]) == ("transferred", True, True)
    assert (c["operator_id"], c["ringing_operators"]) == ("op1", "op1,op2")
    assert (c["wait_seconds"], c["talk_seconds"], c["wrap_seconds"]) == (30.0, 180.0, 50.0)
    d = await store.get("D")
    assert d is not None
    assert (d["outcome"], d["overflowed"], d["overflow_reason"]) == (
        "callback_booked",
        True,
        "max_wait",
    )
    e = await store.get("E")
    assert e is not None and e["outcome"] == "self_service" and not e["queued"]
    g = await store.get("G")
    assert g is not None  # across midnight: the day and hour it started
    assert (str(g["local_day"]), g["local_hour"], g["talk_seconds"]) == ("2026-12-01", 23, 600.0)


async def test_the_day_s_kpis_match_the_hand_computed_figures(
    engine: AsyncEngine, day: Day
) -> None:
    kpis = await compute_kpis(engine, DAY1, DAY1, Targets())
    total = kpis.total
    # calls A B C D E G; queued A B C D G; answered A C G; abandoned B
    assert (total.calls, total.answered, total.abandoned) == (6, 3, 1)
    assert total.count("queued") == 5
    assert total.asa_seconds == pytest.approx((10 + 30 + 10) / 3)
    assert total.service_level_percent == pytest.approx(100 * 2 / 4)  # A, G within 20 s
    assert total.abandon_percent == pytest.approx(100 * 1 / 4)
    assert total.count("abandoned_ringing") == 1
    assert (total.count("callbacks"), total.count("overflowed")) == (1, 1)
    assert (total.count("transferred"), total.count("self_service")) == (1, 1)
    assert total.fcr_percent == pytest.approx(100 * 1 / 2)  # A yes, C no (F not yet)
    assert total.csat_average == pytest.approx(4.5)
    assert total.csat_distribution == [0, 0, 0, 1, 1]
    assert total.repeat_percent == 0.0
    # handle: A 300+60, C 180+50, G 600+15
    assert total.handle_seconds == pytest.approx((360 + 230 + 615) / 3)
    hours = {row.key: row.calls for row in kpis.by["hour"]}
    assert hours == {"10": 1, "11": 1, "12": 1, "13": 1, "14": 1, "23": 1}
    assert [row.key for row in kpis.by["day"]] == ["2026-12-01"]  # G counts on the 1st
    lines = {row.key: row.calls for row in kpis.by["line"]}
    assert lines == {"88001000001": 5, "88002000002": 1}
    operators = {row.key: row for row in kpis.by["operator"]}
    assert operators["op1"].answered == 2 and operators["op2"].answered == 1
    # op1 at work 09:00-18:00 (32,400 s): rang 5+5, talked 300+120, wrapped 60+30
    assert operators["op1"].occupancy_percent == pytest.approx(100 * 520 / 32400)


async def test_a_repeat_within_7_days_clears_first_contact_resolution(
    engine: AsyncEngine, day: Day
) -> None:
    await day.repeat_call()
    a = await day.facts.store.get("A")
    f = await day.facts.store.get("F")
    assert a is not None and f is not None
    assert (a["came_back"], f["repeat"]) == (True, True)
    kpis = await compute_kpis(engine, DAY1, date(2026, 12, 3), Targets())
    assert kpis.total.fcr_percent == 0.0  # A came back, C was not resolved
    assert kpis.total.calls == 7
    assert kpis.total.repeat_percent == pytest.approx(100 * 1 / 7)
    first_day = await compute_kpis(engine, DAY1, DAY1, Targets())
    assert first_day.total.fcr_percent == 0.0


async def test_a_group_s_report_counts_its_calls_only(engine: AsyncEngine, day: Day) -> None:
    kpis = await compute_kpis(engine, DAY1, DAY1, Targets(), group="tech")
    # C ended in tech, but a fact's group is the one whose operator answered it first
    assert kpis.total.calls == 0
    general = await compute_kpis(engine, DAY1, DAY1, Targets(), group="general")
    assert general.total.calls == 5  # E never queued


async def test_the_rollups_kept_as_facts_change_equal_a_rebuild_from_the_facts(
    engine: AsyncEngine, day: Day
) -> None:
    """Every later change (wrap-ups after the end, the operator's flag, a repeat clearing an
    earlier FCR) moved the slices as a recount from the facts would."""
    await day.repeat_call()

    async def slices() -> list[tuple[object, ...]]:
        async with engine.connect() as connection:
            found = []
            for table in (call_slices, operator_slices):
                rows = (await connection.execute(select(table))).all()
                found += sorted(tuple(row)[1:] for row in rows if row.calls != 0)
            return found

    kept = await slices()
    assert len(kept) > 5
    async with engine.begin() as connection:
        await rebuild(connection, DAY1, date(2026, 12, 3))
    assert await slices() == kept
