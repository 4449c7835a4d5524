"""`hotline report`: the hand-made day (`report_kit`) as HTML, CSV and PDF files a manager
can forward, on SQLite and PostgreSQL; a broken targets file stops it at its file:line."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from report_kit import Day, HandClock

from controller.cli import main
from reporting.fact_store import FactStore
from reporting.facts import CallFacts


@pytest.fixture(params=DATABASE_KINDS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database holding the hand-made day; `hotline` is pointed at it."""
    async with empty_database(request.param, tmp_path / "facts.sqlite3", "report_cli") as url:
        async with migrated_engine(url) as engine:
            clock = HandClock()
            facts = CallFacts(FactStore(engine), ZoneInfo("Europe/Moscow"), clock)
            day = Day(facts, clock)
            await day.play()
            await day.repeat_call()
            await facts.stop()
        monkeypatch.setenv("HOTLINE_STORE_DATABASE_URL", url)
        monkeypatch.setenv("HOTLINE_EVENT_LOOP", "asyncio")
        yield url


async def _hotline(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


PERIOD = ("--from", "2026-12-01", "--to", "2026-12-03")


async def test_the_csv_report_parses_and_says_what_the_day_was(
    database: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.csv"
    assert await _hotline("report", *PERIOD, "--format", "csv", "--out", str(out)) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # per-operator figures
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Горячая линия: отчёт за 01.12.2026 – 03.12.2026"]
    kpis = {row[0]: row[1:] for row in rows[2:10]}
    assert kpis["Среднее время ответа (ASA)"] == ["16,7 с", "≤ 20 с", "✔ выполнено"]
    assert kpis["Решено с первого обращения (FCR)"] == ["0,0%", "≥ 85%", "✘ не выполнено"]
    assert kpis["Оценка качества (CSAT), из 5"] == ["4,5", "≥ 4,7", "✘ не выполнено"]
    assert kpis["Повторные обращения за 7 дней"] == ["14,3%", "≤ 5%", "✘ не выполнено"]
    assert kpis["Уровень обслуживания (ответ за 20 с)"] == ["50,0%", "≥ 80%", "✘ не выполнено"]
    volumes = {row[0]: row[1] for row in rows if len(row) == 2}
    assert volumes["Всего вызовов"] == "7"
    assert volumes["Отвечено операторами"] == "3"
    by_operator = rows.index(["По операторам"])
    operators = [row[:3] for row in rows[by_operator + 2 : by_operator + 4]]
    assert operators == [["op1", "2", "2"], ["op2", "1", "1"]]  # A and C; G
    assert len(rows) == by_operator + 4  # a call no operator answered is not in the table


async def test_the_html_report_shows_each_figure_beside_its_target(
    database: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert await _hotline("report", *PERIOD, "--group", "general", "--out", str(out)) == 0
    html = out.read_text(encoding="utf-8")
    assert "Горячая линия: отчёт за 01.12.2026 – 03.12.2026, группа general" in html
    assert html.count("<svg") == 4  # the charts, inline
    assert "✔ выполнено" in html and "✘ не выполнено" in html
    assert re.search(r"(src|href)=[\"']?(https?:)?//", html) is None  # nothing from outside


async def test_the_pdf_report_is_a_pdf(database: str, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    assert await _hotline("report", *PERIOD, "--format", "pdf", "--out", str(out)) == 0
    body = out.read_bytes()
    assert body.startswith(b"%PDF")
    assert body.rstrip().endswith(b"%%EOF")
    # the KPIs beside their targets, the charts, the marks; then a page per breakdown
    # (day, hour, group, line, operator)
    assert len(re.findall(rb"/Type /Page[^s]", body)) == 3 + 5


async def test_a_broken_targets_file_stops_the_report_at_its_line(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("asa_seconds: 20\nfcr_percent: 185\n", encoding="utf-8")
    monkeypatch.setenv("HOTLINE_REPORTING_TARGETS_FILE", str(targets))
    out = tmp_path / "never.html"
    assert await _hotline("report", *PERIOD, "--out", str(out)) == 2
    assert f"{targets}:2:" in capsys.readouterr().err
    assert not out.exists()


async def test_a_period_that_ends_before_it_starts_is_refused(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _hotline("report", "--from", "2026-12-03", "--to", "2026-12-01") == 2
    assert "конец периода раньше его начала" in capsys.readouterr().err
