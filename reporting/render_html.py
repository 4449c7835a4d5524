"""The report as one self-contained HTML page (Russian, charts inline as SVG, no outside
file): what `hotline report --format html` writes and what /supervisor/reports shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup

from reporting.charts import report_charts, svg_of
from reporting.report import COLUMN_TITLES, KpiReport

__all__ = ["PAGES", "render_html"]

PAGES: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def charts_svg(report: KpiReport) -> list[tuple[str, Markup]]:
    """The charts as SVG markup matplotlib wrote (safe: no text of ours unescaped in it)."""
    return [(caption, Markup(svg_of(figure))) for caption, figure in report_charts(report)]


def render_html(report: KpiReport, **page: Any) -> str:
    """The standalone report; `page` adds the web form's fields (see report.html)."""
    context = {"form": None, "groups": [], "csrf_token": ""} | page
    return PAGES.get_template("report.html").render(
        report=report, charts=charts_svg(report), columns=COLUMN_TITLES, **context
    )
