"""The report in the web app, for supervisors and quality auditors.

    GET /supervisor/reports?from=YYYY-MM-DD&to=YYYY-MM-DD&group=G&format=html|csv|pdf

Without dates: this month so far. The page (Russian) has the period and group form, the KPIs
beside their targets, the charts and the breakdowns; `format=csv|pdf` downloads the same
report. Each view is audited (`report.viewed`: period, group, format): the report shows
per-operator figures. A bad date or period is a Russian 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.access import actor_of, allow, people
from hotline.audit import AuditLog
from hotline.auth import Role
from hotline.web_pages import add_staff_page
from hotline.yamldoc import YamlFileError
from reporting.output import FORMATS, produce
from reporting.targets import Targets

__all__ = ["MAX_DAYS", "ReportPages", "add_report_routes", "parse_period"]

# A report covers at most about a year (a bigger question is an export, not a page).
MAX_DAYS: Final = 400
_READERS: Final = people(Role.SUPERVISOR, Role.QUALITY_AUDITOR)


@dataclass
class ReportPages:
    engine: AsyncEngine
    targets: Callable[[], Targets]
    audit: AuditLog
    groups: Callable[[], list[str]]
    today: Callable[[], date]


PAGES_KEY: Final = web.AppKey("reporting_pages", ReportPages)


class PeriodError(ValueError):
    """A period a person typed that cannot be reported (Russian text)."""


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{what}: дата в виде ГГГГ-ММ-ДД, получено «{text[:20]}»") from None


def parse_period(
    first: str | None, last: str | None, today: date | None = None
) -> tuple[date, date]:
    """The period asked for (this month so far without dates); `PeriodError` when unusable."""
    today = today or date.today()
    first_day = _day(first, "С") if first else today.replace(day=1)
    last_day = _day(last, "По") if last else today
    if last_day < first_day:
        raise PeriodError("конец периода раньше его начала")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise PeriodError(f"период не длиннее {MAX_DAYS} дней")
    return first_day, last_day


def add_report_routes(app: web.Application, pages: ReportPages) -> None:
    app[PAGES_KEY] = pages
    app.router.add_get("/supervisor/reports", _reports)
    add_staff_page(app, "/supervisor/reports", "Отчёт по показателям")


def _link(first: date, last: date, group: str | None, fmt: str) -> str:
    query = {"from": first.isoformat(), "to": last.isoformat(), "format": fmt}
    if group:
        query["group"] = group
    return "/supervisor/reports?" + urlencode(query)


@allow(_READERS)
async def _reports(request: web.Request) -> web.Response:
    pages = request.app[PAGES_KEY]
    actor = actor_of(request)
    query = request.query
    fmt = query.get("format", "html")
    if fmt not in FORMATS:
        raise web.HTTPBadRequest(text="формат: html, csv или pdf")
    try:
        first, last = parse_period(query.get("from"), query.get("to"), pages.today())
    except PeriodError as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    group = query.get("group") or None
    known = pages.groups()
    if group is not None and group not in known:
        raise web.HTTPBadRequest(text="нет такой группы")
    try:
        targets = pages.targets()
    except YamlFileError as error:  # an edit broke the file: say where, judge nothing
        raise web.HTTPServiceUnavailable(text=f"файл целевых значений с ошибкой: {error}") from None
    await pages.audit.record(
        actor,
        "report.viewed",
        recording_id=None,
        source=request.remote or "unknown",
        outcome="ok",
        detail={"from": first.isoformat(), "to": last.isoformat(), "group": group, "format": fmt},
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    if fmt != "html":
        rendered = await produce(pages.engine, first, last, targets, group=group, fmt=fmt)
        name = f"report-{first:%Y%m%d}-{last:%Y%m%d}.{fmt}"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(
            body=rendered.body,
            content_type=rendered.content_type.split(";")[0],
            charset="utf-8" if fmt == "csv" else None,
            headers=headers,
        )
    form = {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "group": group or "",
        "csv_link": _link(first, last, group, "csv"),
        "pdf_link": _link(first, last, group, "pdf"),
    }
    page = {"form": form, "groups": sorted(known)}
    rendered = await produce(pages.engine, first, last, targets, group=group, page=page)
    return web.Response(
        body=rendered.body, content_type="text/html", charset="utf-8", headers=headers
    )
