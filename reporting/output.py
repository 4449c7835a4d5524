"""One report, from the facts to the bytes a manager gets: KPIs from the database, the
report's data, then HTML, CSV or PDF. The CLI and the web page both come through here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.kpis import compute_kpis
from reporting.report import KpiReport, build_report
from reporting.targets import Targets

__all__ = ["CONTENT_TYPES", "FORMATS", "Rendered", "produce", "render"]

FORMATS: Final = ("html", "csv", "pdf")
CONTENT_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
# matplotlib keeps some state per process: one drawing at a time, off the event loop.
_DRAWING: Final = asyncio.Lock()


@dataclass(frozen=True)
class Rendered:
    report: KpiReport
    body: bytes
    content_type: str


def render(report: KpiReport, fmt: str, page: Mapping[str, Any] | None = None) -> bytes:
    """The report in `fmt` (one of FORMATS); CPU-bound (charts), run it in a thread."""
    if fmt == "csv":
        from reporting.render_csv import render_csv

        return render_csv(report)
    if fmt == "pdf":
        from reporting.render_pdf import render_pdf

        return render_pdf(report)
    if fmt == "html":
        from reporting.render_html import render_html

        return render_html(report, **(page or {})).encode("utf-8")
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


async def produce(
    engine: AsyncEngine,
    first_day: date,
    last_day: date,
    targets: Targets,
    *,
    group: str | None = None,
    fmt: str = "html",
    page: Mapping[str, Any] | None = None,
) -> Rendered:
    """`page`: the web form's fields around the HTML (see templates/report.html)."""
    kpis = await compute_kpis(engine, first_day, last_day, targets, group)
    report = build_report(kpis)
    async with _DRAWING:
        body = await asyncio.to_thread(render, report, fmt, page)
    return Rendered(report, body, CONTENT_TYPES[fmt])
