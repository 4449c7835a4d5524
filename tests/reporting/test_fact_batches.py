"""The call facts' writer batches its writes (`reporting.fact_writer.FactWriter`): what a
user sees must not depend on it. The figures expected are the hand-made day's
(`report_kit`), worked out by hand here, on SQLite and PostgreSQL: written one write per
transaction or the whole day in one batch, through a database that drops mid-batch and comes
back, and at stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from fact_kit import CuttableRelay, logged, scraped, until
from report_kit import Day, HandClock
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.fact_store import Fact, FactStore, NewFact, call_facts
from reporting.fact_writer import FactWriter
from reporting.facts import CallFacts
from reporting.kpis import Kpis, compute_kpis
from reporting.targets import Targets

DAY1, DAY3 = date(2026, 12, 1), date(2026, 12, 3)
MOSCOW = ZoneInfo("Europe/Moscow")
ONE_BY_ONE = {"batch_size": 1}  # each write its own transaction, as before batching
# nothing leaves before `idle` or `stop`: the whole script is one batch
ONE_BURST = {"batch_size": 100_000, "batch_seconds": 3600.0}


@pytest.fixture(params=DATABASE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with (
        empty_database(request.param, tmp_path / "facts.sqlite3", "batches") as url,
        migrated_engine(url) as engine,
    ):
        yield engine


def recorder(engine: AsyncEngine, **batching: Any) -> tuple[CallFacts, HandClock]:
    clock = HandClock()
    store = FactStore(engine)
    return CallFacts(store, MOSCOW, clock, writer=FactWriter(store, **batching)), clock


def assert_the_three_days(kpis: Kpis) -> None:
    """1-3 December as `report_kit` plays them, F included (worked out by hand)."""
    total = kpis.total
    # calls A B C D E G F; queued A B C D G; answered A C G; abandoned B
    assert (total.calls, total.answered, total.abandoned) == (7, 3, 1)
    assert total.count("queued") == 5
    assert total.asa_seconds == pytest.approx((10 + 30 + 10) / 3)  # A, C, G
    assert total.service_level_percent == pytest.approx(100 * 2 / 4)  # A, G within 20 s
    assert total.count("abandoned_ringing") == 1  # B
    assert (total.count("callbacks"), total.count("overflowed")) == (1, 1)  # D
    assert (total.count("transferred"), total.count("self_service")) == (1, 2)  # C; E, F
    assert total.fcr_percent == 0.0  # A resolved but came back (F), C not resolved
    assert total.repeat_percent == pytest.approx(100 * 1 / 7)  # F
    assert total.csat_average == pytest.approx((5 + 4) / 2)  # A, C
    # handle: A 300+60, C (120+60)+(30+20), G 600+15, wrap-ups that ended after the call
    assert total.handle_seconds == pytest.approx((360 + 230 + 615) / 3)
    operators = {row.key: row for row in kpis.by["operator"]}
    assert (operators["op1"].answered, operators["op2"].answered) == (2, 1)
    # op1 at work 09:00-18:00 (32,400 s): rang 5+5, talked 300+120, wrapped 60+30
    assert operators["op1"].occupancy_percent == pytest.approx(100 * 520 / 32400)


@pytest.mark.parametrize("batching", [ONE_BY_ONE, ONE_BURST], ids=["one_by_one", "one_burst"])
async def test_the_kpis_are_the_same_written_one_by_one_or_in_one_burst(
    engine: AsyncEngine, batching: dict[str, Any]
) -> None:
    """In one burst A's fact, its late wrap-up, rating and resolution, and F (A's caller
    again) are in the same transaction: F still finds A."""
    facts, clock = recorder(engine, **batching)
    day = Day(facts, clock)
    await day.play(settle=False)
    await day.repeat_call(settle=False)
    await facts.idle()
    assert facts.lost == 0
    assert_the_three_days(await compute_kpis(engine, DAY1, DAY3, Targets()))
    a = await facts.store.get("A")
    assert a is not None and (a["wrap_seconds"], a["came_back"]) == (60.0, True)
    await facts.stop()


@pytest.mark.postgres
async def test_a_database_that_drops_mid_batch_and_comes_back_loses_no_fact(
    caplog: pytest.LogCaptureFixture, relayed: tuple[CuttableRelay, AsyncEngine]
) -> None:
    relay, engine = relayed
    cuts = 0

    def drop_before_the_rollups(*args: Any) -> None:
        nonlocal cuts
        if args[2].startswith("INSERT INTO call_slices") and not cuts:
            cuts += 1  # the facts are in, the transaction not committed
            relay.cut()

    event.listen(engine.sync_engine, "before_cursor_execute", drop_before_the_rollups)
    facts, clock = recorder(engine, **ONE_BURST, retry_seconds=(0.05,))
    day = Day(facts, clock)
    await day.play(settle=False)
    await day.repeat_call(settle=False)
    with caplog.at_level(logging.WARNING, logger="reporting.fact_writer"):
        settled = asyncio.create_task(facts.idle())
        # dropped mid-batch, then refused at least once more while away
        await until(lambda: logged(caplog, "database away") >= 2)
        assert cuts == 1 and not settled.done()
        # what the on-call engineer's alert reads meanwhile
        assert scraped("hotline_call_facts_database_away") == 1.0
        assert scraped("hotline_call_facts_waiting") >= 7  # the seven calls' facts
        await relay.open()  # back
        await asyncio.wait_for(settled, 20)
    assert facts.lost == 0
    assert scraped("hotline_call_facts_database_away") == 0.0
    assert scraped("hotline_call_facts_waiting") == 0.0
    assert_the_three_days(await compute_kpis(engine, DAY1, DAY3, Targets()))
    async with engine.connect() as connection:
        stored = await connection.scalar(select(func.count()).select_from(call_facts))
    assert stored == 7  # each once: the dropped transaction left nothing behind
    await facts.stop()


async def test_stop_writes_everything_noted(engine: AsyncEngine) -> None:
    facts, clock = recorder(engine, **ONE_BURST)
    day = Day(facts, clock)
    await day.play(settle=False)
    await day.repeat_call(settle=False)
    await facts.stop()  # no `idle` before: nothing was written yet
    assert facts.lost == 0
    assert_the_three_days(await compute_kpis(engine, DAY1, DAY3, Targets()))


async def test_a_fact_the_database_refuses_costs_that_fact_only(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    facts, clock = recorder(engine, **ONE_BURST)
    day = Day(facts, clock)
    await day.play(settle=False)
    no_line: Any = None
    broken = Fact("X", no_line, datetime(2026, 12, 1, 9, 0, tzinfo=UTC), DAY1, 12)
    facts.writer.note(NewFact(broken))
    await day.repeat_call(settle=False)
    refused_before = scraped("hotline_call_facts_lost_total", reason="refused")
    with caplog.at_level(logging.ERROR, logger="reporting.fact_writer"):
        await facts.idle()
    assert facts.lost == 1
    assert scraped("hotline_call_facts_lost_total", reason="refused") == refused_before + 1
    assert logged(caplog, "refused a NewFact") == 1
    assert await facts.store.get("X") is None
    assert_the_three_days(await compute_kpis(engine, DAY1, DAY3, Targets()))
    await facts.stop()


@pytest.mark.postgres
async def test_a_stop_while_the_database_is_away_says_how_many_writes_it_lost(
    caplog: pytest.LogCaptureFixture, relayed: tuple[CuttableRelay, AsyncEngine]
) -> None:
    relay, engine = relayed
    facts, clock = recorder(engine, **ONE_BURST, retry_seconds=(0.05,), stop_seconds=0.5)
    relay.cut()
    await Day(facts, clock).play(settle=False)
    noted = facts.writer.waiting
    lost_before = scraped("hotline_call_facts_lost_total", reason="away_at_stop")
    with caplog.at_level(logging.ERROR, logger="reporting.fact_writer"):
        await facts.stop()
    assert noted > 6 and facts.lost == noted  # six facts, stays and wrap-ups
    assert scraped("hotline_call_facts_lost_total", reason="away_at_stop") == lost_before + noted
    assert scraped("hotline_call_facts_database_away") == 0.0  # stopped: not waiting
    assert logged(caplog, f"still away at stop, {noted} writes lost") == 1
