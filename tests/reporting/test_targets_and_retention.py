"""The targets file (`dialplans/targets.yaml`: the seed's targets built in, every mistake at
its file:line) and the call facts' personal-data term (numbers cleared, facts kept)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from databases import migrated_engine
from sqlalchemy import insert, select

from hotline.audit import AuditLog
from hotline.yamldoc import YamlFileError
from reporting.fact_marks import call_fact_marks
from reporting.fact_store import Fact, FactStore
from reporting.retention import FactRetention, facts_term_days
from reporting.settings import locate
from reporting.targets import Targets, load_targets


def test_the_shipped_targets_are_the_seed_s() -> None:
    targets = load_targets(locate("dialplans/targets.yaml"))
    assert targets == Targets()
    assert (targets.asa_seconds, targets.fcr_percent) == (20, 85)
    assert (targets.csat_average, targets.repeat_percent) == (4.7, 5)
    asa, fcr = targets.target("asa_seconds"), targets.target("fcr_percent")
    assert asa is not None and fcr is not None
    assert (asa.met(20.0), asa.met(20.1), fcr.met(85.0), fcr.met(84.9)) == (
        True,
        False,
        True,
        False,
    )


def test_no_file_keeps_the_built_in_targets_and_null_removes_one(tmp_path: Path) -> None:
    assert load_targets(tmp_path / "none.yaml") == Targets()
    path = tmp_path / "targets.yaml"
    path.write_text("handle_seconds: null\ncsat_average: 4.5\n", encoding="utf-8")
    targets = load_targets(path)
    assert targets.target("handle_seconds") is None
    assert targets.csat_average == 4.5 and targets.asa_seconds == 20


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("asa_seconds: 20\nfcr_percent: 185\n", 2, "fcr_percent is a percentage"),
        ("asa_seconds: 20\n\nasa_secs: 30\n", 3, "unknown field 'asa_secs'"),
        ("csat_average: высокая\n", 1, "csat_average must be a number"),
        ("csat_average: 7\n", 1, "csat_average is a mark from 1 to 5"),
        ("abandon_percent: -1\n", 1, "abandon_percent must be at least 0"),
        ("- 20\n", 1, "the targets file must be a mapping"),
        ("asa_seconds: 20\nservice_level_seconds: 25\n", 2, "service_level_seconds is one of 10"),
    ],
)
def test_a_broken_targets_file_names_its_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as error:
        load_targets(path)
    assert str(error.value).startswith(f"{path}:{line}:")
    assert says in str(error.value)


def test_the_facts_term_is_the_retention_file_s(tmp_path: Path) -> None:
    path = tmp_path / "retention.yaml"
    path.write_text("default_days: 90\ncategories:\n  contacts: 1095\n", encoding="utf-8")
    assert facts_term_days(path) == 1095  # a fact holds what a contact holds
    path.write_text("default_days: 90\ncategories:\n  call_facts: 30\n", encoding="utf-8")
    assert facts_term_days(path) == 30
    path.write_text("categories:\n  call_facts: 0\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match=r"retention.yaml:2:"):
        facts_term_days(path)


async def test_past_the_term_the_caller_is_removed_and_the_fact_stays(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'f.sqlite3'}") as engine:
        store = FactStore(engine)
        for call, age in (("old", 31), ("new", 29)):
            started = now - timedelta(days=age)
            fact = Fact(call, "88001000001", started, started.date(), started.hour)
            fact.caller_number, fact.application = "79990000001", "1234567890"
            fact.answered, fact.outcome, fact.rating = True, "answered", 5
            await store.add(fact)
        audit = AuditLog(engine)
        retention = FactRetention(store, 30, audit, clock=lambda: now.timestamp())
        assert await retention.run() == 1
        assert await retention.run() == 0  # idempotent
        old, new = await store.get("old"), await store.get("new")
        assert old is not None and new is not None
        assert (old["caller_number"], old["application"]) == (None, None)
        assert (old["outcome"], old["rating"], old["line"]) == ("answered", 5, "88001000001")
        assert old["anonymised_at"] is not None
        assert new["caller_number"] == "79990000001"
        [entry] = [e for e in await audit.entries() if e.action == "call_facts.anonymised"]
        assert '"facts":1' in entry.detail
        assert date.fromisoformat(str(old["local_day"])) == (now - timedelta(days=31)).date()


async def test_the_marks_of_facts_writers_long_gone_are_forgotten(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'f.sqlite3'}") as engine:
        async with engine.begin() as connection:
            rows = [
                {"writer": "gone", "last_seq": 7, "updated_at": now - timedelta(days=91)},
                {"writer": "recent", "last_seq": 9, "updated_at": now - timedelta(days=89)},
            ]
            await connection.execute(insert(call_fact_marks), rows)
        await FactRetention(FactStore(engine), 30, clock=lambda: now.timestamp()).run()
        async with engine.connect() as connection:
            marks = select(call_fact_marks.c.writer, call_fact_marks.c.last_seq)
            left = {writer: seq for writer, seq in (await connection.execute(marks)).all()}
        assert left == {"recent": 9}
