"""The report's charts with matplotlib (its object API and the Agg/SVG canvases: no pyplot,
no display, no global state): each figure beside its target line. HTML embeds them as SVG,
the PDF draws the same `Figure`s on its pages."""

from __future__ import annotations

import io
from typing import Final

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reporting.kpis import KpiRow
from reporting.report import KpiReport

__all__ = ["report_charts", "svg_of"]

_ANSWERED: Final = "#2e7d32"
_ABANDONED: Final = "#c62828"
_BARS: Final = "#1565c0"
_TARGET: Final = "#ef6c00"


def _slices(report: KpiReport) -> tuple[str, list[KpiRow]]:
    """Days for a period, hours for one day."""
    if report.first_day == report.last_day:
        return "час", report.kpis.by["hour"]
    return "день", report.kpis.by["day"]


def _label(kind: str, key: str) -> str:
    if kind == "день" and len(key) == 10:
        return f"{key[8:10]}.{key[5:7]}"
    return key


def _target_line(axes: Axes, name: str, report: KpiReport) -> None:
    target = report.kpis.targets.target(name)
    if target is None:
        return
    label = f"цель {target.sign} {target.value:g}"
    axes.axhline(target.value, color=_TARGET, linestyle="--", linewidth=1.5, label=label)


def volume_chart(report: KpiReport) -> Figure:
    kind, rows = _slices(report)
    figure = Figure(figsize=(7.5, 3.2), layout="constrained")
    axes = figure.subplots()
    labels = [_label(kind, row.key) for row in rows]
    answered = [row.answered for row in rows]
    abandoned = [row.abandoned for row in rows]
    axes.bar(labels, answered, color=_ANSWERED, label="отвечено")
    axes.bar(labels, abandoned, bottom=answered, color=_ABANDONED, label="потеряно")
    axes.set_title(f"Вызовы по {'часам' if kind == 'час' else 'дням'}")
    axes.set_ylabel("вызовов")
    axes.legend(loc="upper left", fontsize=8)
    axes.tick_params(axis="x", labelrotation=45, labelsize=7)
    return figure


def _figure_chart(report: KpiReport, name: str, title: str, unit: str) -> Figure:
    kind, rows = _slices(report)
    figure = Figure(figsize=(7.5, 3.0), layout="constrained")
    axes = figure.subplots()
    labels = [_label(kind, row.key) for row in rows]
    values = [row.figure(name) for row in rows]
    target = report.kpis.targets.target(name)
    # each bar green where the target is met, red where missed (blue without a target)
    colours = [
        _BARS if target is None or v is None else (_ANSWERED if target.met(v) else _ABANDONED)
        for v in values
    ]
    axes.bar(labels, [0.0 if v is None else v for v in values], color=colours, label=title)
    _target_line(axes, name, report)
    axes.set_title(f"{title} по {'часам' if kind == 'час' else 'дням'}")
    axes.set_ylabel(unit)
    axes.legend(loc="upper left", fontsize=8)
    axes.tick_params(axis="x", labelrotation=45, labelsize=7)
    return figure


def csat_chart(report: KpiReport) -> Figure:
    figure = Figure(figsize=(4.5, 3.0), layout="constrained")
    axes = figure.subplots()
    axes.bar([str(mark) for mark in range(1, 6)], report.csat_distribution, color=_BARS)
    average = report.kpis.total.csat_average
    shown = "нет оценок" if average is None else f"среднее {average:.2f}".replace(".", ",")
    axes.set_title(f"Оценки абонентов ({shown})")
    axes.set_xlabel("оценка")
    axes.set_ylabel("ответов")
    return figure


def report_charts(report: KpiReport) -> list[tuple[str, Figure]]:
    """(caption, figure) in the report's order."""
    return [
        ("Вызовы", volume_chart(report)),
        ("ASA", _figure_chart(report, "asa_seconds", "Среднее время ответа", "с")),
        ("SL", _figure_chart(report, "service_level_percent", "Уровень обслуживания", "%")),
        ("CSAT", csat_chart(report)),
    ]


def svg_of(figure: Figure) -> str:
    """The figure as an inline SVG element (text as paths: no font needed in the browser)."""
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]
