"""The report a manager forwards, as data: each KPI in Russian beside its target and a
met/missed mark, the volumes, and the breakdowns' tables. The HTML, CSV and PDF renderers
(`render_html`, `render_csv`, `render_pdf`) all read this, so the three say the same."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Final

from reporting.kpis import KpiRow, Kpis
from reporting.targets import Targets

__all__ = ["FIGURES", "BreakdownTable", "KpiFigure", "KpiReport", "build_report", "shown"]


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    unit: str  # "с", "%", "" (a mark)


FIGURES: Final = (
    FigureSpec("asa_seconds", "Среднее время ответа (ASA)", "с"),
    FigureSpec("service_level_percent", "Уровень обслуживания", "%"),
    FigureSpec("abandon_percent", "Доля потерянных вызовов", "%"),
    FigureSpec("fcr_percent", "Решено с первого обращения (FCR)", "%"),
    FigureSpec("csat_average", "Оценка качества (CSAT), из 5", ""),
    FigureSpec("repeat_percent", "Повторные обращения за 7 дней", "%"),
    FigureSpec("occupancy_percent", "Загрузка операторов", "%"),
    FigureSpec("handle_seconds", "Среднее время обработки (AHT)", "с"),
)

VOLUMES: Final = (
    ("calls", "Всего вызовов"),
    ("queued", "Поставлено в очередь"),
    ("answered", "Отвечено операторами"),
    ("abandoned", "Потеряно (абонент положил трубку)"),
    ("abandoned_ringing", "в т. ч. во время звонка оператору"),
    ("self_service", "Обслужено голосовым меню"),
    ("overflowed", "Переполнение очереди"),
    ("callbacks", "Заказан обратный звонок"),
    ("transferred", "Переведено"),
    ("escalated", "Передано в ведомство"),
    ("repeats", "Повторные обращения"),
)

BREAKDOWN_TITLES: Final = {
    "day": "По дням",
    "hour": "По часам",
    "group": "По группам",
    "line": "По номерам линии",
    "operator": "По операторам",
}
KEY_TITLES: Final = {
    "day": "День",
    "hour": "Час",
    "group": "Группа",
    "line": "Номер",
    "operator": "Оператор",
}
COLUMNS: Final = (
    ("calls", "Вызовы"),
    ("answered", "Отвечено"),
    ("asa_seconds", "ASA, с"),
    ("service_level_percent", "SL, %"),
    ("abandon_percent", "Потери, %"),
    ("fcr_percent", "FCR, %"),
    ("csat_average", "CSAT"),
    ("handle_seconds", "AHT, с"),
    ("occupancy_percent", "Загрузка, %"),
)
# what a slice without a key holds (calls no group queued, no operator answered...)
_NO_KEY: Final = {
    "day": "—",
    "hour": "—",
    "group": "без очереди",
    "line": "—",
    "operator": "без ответа",
}
_COUNTS: Final = frozenset({"calls", "answered"})
_MARKS: Final = {True: "✔ выполнено", False: "✘ не выполнено", None: "— нет данных"}


def shown(value: float | None, unit: str = "") -> str:
    """A figure the Russian way: a decimal comma, one digit after it; a dash for none."""
    if value is None:
        return "—"
    text = f"{value:.1f}".replace(".", ",")
    return f"{text} {unit}".rstrip() if unit and unit != "%" else f"{text}{unit}"


def plain(value: float, unit: str = "") -> str:
    """A target as written in the targets file: 20 с, 4,7, 85%."""
    text = f"{value:g}".replace(".", ",")
    return f"{text} {unit}".rstrip() if unit and unit != "%" else f"{text}{unit}"


@dataclass(frozen=True)
class KpiFigure:
    name: str
    title: str
    value: float | None
    shown: str
    target: str  # "≤ 20 с", "" without a target
    met: bool | None  # None: no target or no data
    mark: str


@dataclass(frozen=True)
class BreakdownTable:
    name: str
    title: str
    key_title: str
    rows: list[list[str]]


@dataclass(frozen=True)
class KpiReport:
    first_day: date
    last_day: date
    group: str | None
    title: str
    figures: list[KpiFigure]
    volumes: list[tuple[str, int]]
    csat_distribution: list[int]
    tables: list[BreakdownTable]
    kpis: Kpis
    notes: list[str]

    @property
    def per_operator(self) -> bool:
        return any(t.name == "operator" and t.rows for t in self.tables)


def _figure(spec: FigureSpec, row: KpiRow, targets: Targets) -> KpiFigure:
    value = row.figure(spec.name)
    target = targets.target(spec.name)
    met = target.met(value) if target is not None else None
    target_text = "" if target is None else f"{target.sign} {plain(target.value, spec.unit)}"
    mark = _MARKS[met] if target is not None else "без цели"
    return KpiFigure(spec.name, spec.title, value, shown(value, spec.unit), target_text, met, mark)


def _period(first: date, last: date) -> str:
    if first == last:
        return first.strftime("%d.%m.%Y")
    return f"{first:%d.%m.%Y} – {last:%d.%m.%Y}"


def _cell(row: KpiRow, name: str) -> str:
    if name in _COUNTS:
        return str(row.count(name))
    return shown(row.figure(name))


def build_report(kpis: Kpis) -> KpiReport:
    targets = kpis.targets
    figures = [_figure(spec, kpis.total, targets) for spec in FIGURES]
    sl = plain(targets.service_level_seconds, "с")
    figures[1] = dataclasses.replace(figures[1], title=f"Уровень обслуживания (ответ за {sl})")
    tables = [
        BreakdownTable(
            name,
            BREAKDOWN_TITLES[name],
            KEY_TITLES[name],
            [
                [row.key or _NO_KEY[name], *(_cell(row, col) for col, _ in COLUMNS)]
                for row in kpis.by[name]
            ],
        )
        for name in ("day", "hour", "group", "line", "operator")
    ]
    title = f"Горячая линия: отчёт за {_period(kpis.first_day, kpis.last_day)}"
    if kpis.group:
        title += f", группа {kpis.group}"
    notes = [
        f"ASA — среднее ожидание отвеченных вызовов от постановки в очередь до ответа; уровень "
        f"обслуживания — доля отвеченных за {sl} среди отвеченных и потерянных.",
        "FCR — решено с первого обращения по отметке оператора, если тот же абонент или то же "
        "заявление не обратились снова в течение 7 дней. Повторное обращение — в течение 7 дней.",
        "Загрузка — звонок, разговор и поствызывная обработка от времени в статусах «готов», "
        "«звонок», «разговор», «обработка» (без перерывов), по всем операторам.",
        "Вызов после полуночи считается в день, когда он начался; переведённый вызов — один вызов.",
    ]
    return KpiReport(
        kpis.first_day,
        kpis.last_day,
        kpis.group,
        title,
        figures,
        [(text, kpis.total.count(name)) for name, text in VOLUMES],
        kpis.total.csat_distribution,
        tables,
        kpis,
        notes,
    )


COLUMN_TITLES: Final = [title for _, title in COLUMNS]
