"""`hotline report`: a period's KPIs against their targets, as HTML, CSV or PDF.

    hotline report --from 2026-12-01 --to 2026-12-31 [--group G] [--format html|csv|pdf]
                   [--out FILE]

Without `--out` the report goes to standard output. A broken targets file stops it with the
file:line of the mistake (exit 2), as does a bad period.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hotline.private import open_private
from hotline.store.db import create_engine
from hotline.yamldoc import YamlFileError
from reporting.http import PeriodError, parse_period
from reporting.output import FORMATS, produce
from reporting.settings import WithReportingSettings, locate
from reporting.targets import load_targets

__all__ = ["add_commands", "cmd_report"]


def add_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="the hotline's KPIs against their targets for a period (html, csv, pdf)"
    )
    report.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    report.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    report.add_argument("--group", help="one operator group only")
    report.add_argument("--format", choices=FORMATS, default="html", help="default: html")
    report.add_argument("--out", type=Path, help="file to write (default: standard output)")
    report.set_defaults(run=cmd_report)


async def cmd_report(args: argparse.Namespace, settings: WithReportingSettings) -> int:
    try:
        targets = load_targets(locate(settings.reporting.targets_file))
    except YamlFileError as error:
        print(f"hotline report: {error}", file=sys.stderr)
        return 2
    try:
        first, last = parse_period(args.first, args.last)
    except PeriodError as error:
        print(f"hotline report: {error}", file=sys.stderr)
        return 2
    engine = create_engine(settings.store.database_url)
    try:
        rendered = await produce(engine, first, last, targets, group=args.group, fmt=args.format)
    finally:
        await engine.dispose()
    if args.out is None:
        sys.stdout.buffer.write(rendered.body)
        sys.stdout.flush()
        return 0
    # per-operator figures: readable by its owner only
    with open_private(args.out) as out:
        out.write(rendered.body)
    print(f"report written to {args.out}", file=sys.stderr)
    return 0
