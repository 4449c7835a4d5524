"""The report as PDF with matplotlib's own PdfPages (pure Python, no system libraries; its
DejaVu font has Cyrillic): a first page with the KPIs beside their targets and the volumes,
a page of charts, then the breakdowns' tables, A4 portrait."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, Final

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from reporting.charts import csat_chart, report_charts
from reporting.report import COLUMN_TITLES, KpiReport

__all__ = ["render_pdf"]

_A4: Final = (8.27, 11.69)
_ROWS_PER_PAGE: Final = 40
_MET_COLOURS: Final = {True: "#c8e6c9", False: "#ffcdd2", None: "#eeeeee"}


def _page(title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=_A4)
    axes = figure.add_axes((0.05, 0.04, 0.9, 0.88))
    axes.axis("off")
    figure.text(0.05, 0.95, title, fontsize=13, weight="bold")
    return figure, axes


def _summary(report: KpiReport) -> Figure:
    figure, _ = _page(report.title)
    rows = [[f.title, f.shown, f.target or "—", f.mark] for f in report.figures]
    top = figure.add_axes((0.05, 0.55, 0.9, 0.35))
    top.axis("off")
    top.set_title("Ключевые показатели", loc="left", fontsize=11)
    table = top.table(
        cellText=rows,
        colLabels=["Показатель", "Значение", "Цель", "Итог"],
        colWidths=[0.46, 0.16, 0.14, 0.24],
        loc="upper left",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.5)
    for index, f in enumerate(report.figures, start=1):
        table[index, 3].set_facecolor(_MET_COLOURS[f.met])
    low = figure.add_axes((0.05, 0.12, 0.9, 0.38))
    low.axis("off")
    low.set_title("Объём", loc="left", fontsize=11)
    volumes = low.table(
        cellText=[[title.strip(), str(count)] for title, count in report.volumes],
        colWidths=[0.6, 0.2],
        loc="upper left",
        cellLoc="left",
    )
    volumes.auto_set_font_size(False)
    volumes.set_fontsize(9)
    volumes.scale(1, 1.3)
    made = datetime.now(UTC).strftime("%d.%m.%Y %H:%M UTC")
    figure.text(0.05, 0.03, f"Сформирован {made}. " + report.notes[-1], fontsize=7)
    return figure


def _charts_page(report: KpiReport) -> Figure:
    figure, _ = _page("Графики")
    charts = [fig for _, fig in report_charts(report) if fig is not None]
    heights = (0.66, 0.36, 0.06)
    for at, chart in zip(heights, charts[:3], strict=False):
        image = _image_of(chart)
        axes = figure.add_axes((0.05, at, 0.9, 0.27))
        axes.imshow(image)
        axes.axis("off")
    return figure


def _image_of(chart: Figure) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(chart)
    canvas.draw()  # type: ignore[no-untyped-call]
    return canvas.buffer_rgba()  # type: ignore[no-untyped-call]


def _table_pages(report: KpiReport) -> list[Figure]:
    pages = []
    for table in report.tables:
        if not table.rows:
            continue
        for start in range(0, len(table.rows), _ROWS_PER_PAGE):
            chunk = table.rows[start : start + _ROWS_PER_PAGE]
            figure, axes = _page(f"{table.title} — {report.title}")
            drawn = axes.table(
                cellText=chunk,
                colLabels=[table.key_title, *COLUMN_TITLES],
                loc="upper left",
                cellLoc="right",
            )
            drawn.auto_set_font_size(False)
            drawn.set_fontsize(7)
            drawn.scale(1, 1.25)
            pages.append(figure)
    return pages


def render_pdf(report: KpiReport) -> bytes:
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": report.title, "Creator": "hotline report"}) as pdf:
        pdf.savefig(_summary(report))
        pdf.savefig(_charts_page(report))
        csat = Figure(figsize=_A4)
        csat.text(0.05, 0.95, "Оценки абонентов", fontsize=13, weight="bold")
        axes = csat.add_axes((0.1, 0.55, 0.8, 0.35))
        axes.imshow(_image_of(csat_chart(report)))
        axes.axis("off")
        pdf.savefig(csat)
        for page in _table_pages(report):
            pdf.savefig(page)
    return out.getvalue()
