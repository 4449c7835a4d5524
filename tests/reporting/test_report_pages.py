"""/supervisor/reports: the report in the web app, for supervisors and quality auditors, over
HTTP and in a real headless Chromium (Debian's chromium and chromedriver, through Selenium);
the browser's screenshot is saved under the test's tmp_path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine
from desk_browser import by_id, chromium_or_skip, wait_for
from ports import bound_port
from report_kit import Day, HandClock

from hotline.access import access_middleware, routes_without_policy
from hotline.audit import AuditLog
from hotline.auth import Actor
from reporting.fact_store import FactStore
from reporting.facts import CallFacts
from reporting.http import PAGES_KEY, ReportPages, add_report_routes
from reporting.targets import Targets, load_targets

PEOPLE = {
    "smirnova": Actor("smirnova", "supervisor"),
    "kozlova": Actor("kozlova", "quality_auditor"),
    "ivanova": Actor("ivanova", "operator"),
}


async def lookup(request: web.Request) -> Actor | None:
    """A bearer token, or (for the browser) a cookie, names the person."""
    who = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return PEOPLE.get(who or request.cookies.get("who", ""))


@dataclass
class Reports:
    client: TestClient[web.Request, web.Application]
    audit: AuditLog

    async def get(self, who: str, query: str) -> tuple[int, bytes, str]:
        headers = {"Authorization": f"Bearer {who}"}
        async with self.client.get("/supervisor/reports" + query, headers=headers) as response:
            return response.status, await response.read(), response.content_type


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[web.Application, AuditLog]]:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}") as engine:
        clock = HandClock()
        facts = CallFacts(FactStore(engine), ZoneInfo("Europe/Moscow"), clock)
        day = Day(facts, clock)
        await day.play()
        await day.repeat_call()
        await facts.stop()
        audit = AuditLog(engine)
        application = web.Application(middlewares=[access_middleware(lookup)])
        pages = ReportPages(
            engine, Targets, audit, lambda: ["general", "tech"], lambda: date(2026, 12, 5)
        )
        add_report_routes(application, pages)
        assert routes_without_policy(application) == []
        yield application, audit


@pytest.fixture
async def reports(app: tuple[web.Application, AuditLog]) -> AsyncIterator[Reports]:
    async with TestClient(TestServer(app[0])) as client:
        yield Reports(client, app[1])


async def test_a_supervisor_sees_the_month_so_far_and_the_view_is_audited(
    reports: Reports,
) -> None:
    status, body, kind = await reports.get("smirnova", "")
    html = body.decode()
    assert (status, kind) == (200, "text/html")
    assert "Горячая линия: отчёт за 01.12.2026 – 05.12.2026" in html  # this month so far
    assert 'data-kpi="asa_seconds"' in html and "16,7 с" in html
    [entry] = [e for e in await reports.audit.entries() if e.action == "report.viewed"]
    assert (entry.user_id, entry.role) == ("smirnova", "supervisor")
    assert json.loads(entry.detail)["from"] == "2026-12-01"


async def test_a_quality_auditor_downloads_csv_and_pdf(reports: Reports) -> None:
    query = "?from=2026-12-01&to=2026-12-01&group=general&format="
    status, body, kind = await reports.get("kozlova", query + "csv")
    assert (status, kind) == (200, "text/csv")
    assert "Горячая линия: отчёт за 01.12.2026, группа general" in body.decode("utf-8-sig")
    status, body, kind = await reports.get("kozlova", query + "pdf")
    assert (status, kind) == (200, "application/pdf") and body.startswith(b"%PDF")


async def test_an_operator_may_not_see_the_report(reports: Reports) -> None:
    status, _, _ = await reports.get("ivanova", "")
    assert status == 403
    assert [e for e in await reports.audit.entries() if e.action == "report.viewed"] == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?from=2026-13-01&to=2026-12-31", "С: дата в виде ГГГГ-ММ-ДД, получено «2026-13-01»"),
        ("?from=2026-12-05&to=2026-12-01", "конец периода раньше его начала"),
        ("?from=2024-01-01&to=2026-12-01", "период не длиннее 400 дней"),
        ("?group=nosuch", "нет такой группы"),
        ("?format=docx", "формат: html, csv или pdf"),
    ],
)
async def test_a_bad_request_gets_a_russian_400(reports: Reports, query: str, says: str) -> None:
    status, body, _ = await reports.get("smirnova", query)
    assert (status, body.decode()) == (400, says)


def _browse(base: str, shots: Path) -> dict[str, str]:
    """The supervisor's visit, in a worker thread while the server serves on the test's loop."""
    from selenium.webdriver.support.ui import Select

    driver = chromium_or_skip()
    try:
        driver.get(base + "/supervisor/reports/none")  # a page of the site, to hold a cookie
        driver.add_cookie({"name": "who", "value": "smirnova", "path": "/"})
        driver.get(base + "/supervisor/reports")
        wait_for(driver, lambda d: "отчёт за 01.12.2026 – 05.12.2026" in d.title)
        by_id(driver, "from").send_keys("")  # the form: a period and a group
        driver.execute_script(
            "document.getElementById('from').value='2026-12-01';"
            "document.getElementById('to').value='2026-12-03';"
        )
        Select(by_id(driver, "group")).select_by_value("general")
        by_id(driver, "show").click()
        wait_for(driver, lambda d: "группа general" in d.title)  # the new page's
        driver.save_screenshot(str(shots / "report.png"))
        rows = driver.find_elements("css selector", "#kpis tr[data-kpi]")
        seen = {row.get_attribute("data-kpi"): row.text for row in rows}
        seen["url"] = driver.current_url
        seen["charts"] = str(len(driver.find_elements("css selector", ".charts svg")))
        return seen
    finally:
        driver.quit()


async def test_a_supervisor_reads_the_report_in_chromium(
    app: tuple[web.Application, AuditLog], tmp_path: Path
) -> None:
    runner = web.AppRunner(app[0])
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        seen = await asyncio.to_thread(_browse, f"http://127.0.0.1:{bound_port(runner)}", shots)
    finally:
        await runner.cleanup()
    assert "from=2026-12-01&to=2026-12-03&group=general" in seen["url"]
    assert "16,7 с" in seen["asa_seconds"] and "✔ выполнено" in seen["asa_seconds"]
    assert "4,5" in seen["csat_average"] and "✘ не выполнено" in seen["csat_average"]
    assert seen["charts"] == "4"
    assert (shots / "report.png").stat().st_size > 0  # tmp_path/screenshots, to look at


async def test_a_targets_file_broken_while_running_is_named_on_the_page(
    app: tuple[web.Application, AuditLog], tmp_path: Path
) -> None:
    broken = tmp_path / "targets.yaml"
    broken.write_text("fcr_percent: много\n", encoding="utf-8")
    pages = app[0][PAGES_KEY]
    pages.targets = lambda: load_targets(broken)
    async with TestClient(TestServer(app[0])) as client:
        reports = Reports(client, app[1])
        status, body, _ = await reports.get("smirnova", "")
    assert status == 503
    assert f"{broken}:1: fcr_percent must be a number" in body.decode()
