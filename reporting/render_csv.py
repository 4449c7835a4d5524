"""The report as CSV (UTF-8 with a BOM, `;`-separated, so a spreadsheet opens it in Russian):
the KPIs with their targets and marks, the volumes, then each breakdown's table."""

from __future__ import annotations

import csv
import io

from reporting.report import COLUMN_TITLES, KpiReport

__all__ = ["render_csv"]


def render_csv(report: KpiReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow([report.title])
    writer.writerow(["Показатель", "Значение", "Цель", "Итог"])
    for figure in report.figures:
        writer.writerow([figure.title, figure.shown, figure.target, figure.mark])
    writer.writerow([])
    writer.writerow(["Объём", "Вызовов"])
    for title, count in report.volumes:
        writer.writerow([title.strip(), count])
    writer.writerow([])
    writer.writerow(["Оценка", "Ответов"])
    for mark, count in enumerate(report.csat_distribution, start=1):
        writer.writerow([mark, count])
    for table in report.tables:
        writer.writerow([])
        writer.writerow([table.title])
        writer.writerow([table.key_title, *COLUMN_TITLES])
        writer.writerows(table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
