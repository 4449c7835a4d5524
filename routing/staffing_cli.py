"""``hotline acd staffing`` (Erlang C per interval), ``hotline sim --virtual`` (a simulated day).

Both read the traffic file (``dialplans/traffic.yaml``); a mistake in it is printed as
``file:line: message`` with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hotline.yamldoc import YamlFileError
from routing.asterisk_cli import add_asterisk_files_command
from routing.des import FallbackFifoRouter, SimRouter, simulate_day
from routing.erlang import offered_load, required_agents
from routing.traffic import TrafficPlan, format_clock, load_traffic

DEFAULT_TRAFFIC = Path("dialplans/traffic.yaml")


def add_commands(commands: Any) -> None:
    """``hotline acd staffing`` and ``hotline acd asterisk-files`` (`routing.asterisk_cli`)."""
    acd = commands.add_parser("acd", help="the ACD: operator groups and staffing")
    actions = acd.add_subparsers(dest="acd_action", metavar="ACTION", required=True)
    staffing = actions.add_parser(
        "staffing", help="Erlang C: operators needed per interval for a target service level"
    )
    staffing.add_argument(
        "--traffic", type=Path, default=DEFAULT_TRAFFIC, help=f"traffic file ({DEFAULT_TRAFFIC})"
    )
    staffing.add_argument(
        "--target-sl", type=_share, help="share answered within --target-seconds (file: 0.8)"
    )
    staffing.add_argument(
        "--target-seconds", type=_seconds, help="service level threshold, s (file: 20)"
    )
    staffing.add_argument("--target-asa", type=_seconds, help="average speed of answer cap, s")
    staffing.add_argument("--max-occupancy", type=_share, help="occupancy cap, e.g. 0.9")
    staffing.add_argument(
        "--shrinkage", type=_shrinkage, help="share of paid time off the phones (file: 0.3)"
    )
    staffing.add_argument("--group", action="append", help="only this group (repeatable)")
    staffing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    staffing.set_defaults(run=run_staffing)
    add_asterisk_files_command(actions)


def add_virtual_sim_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hotline sim --virtual``: the day comes from a traffic file, not a scenario."""
    parser.add_argument(
        "--virtual",
        action="store_true",
        help="discrete-event mode: a whole day through the ACD on a simulated clock",
    )
    parser.add_argument(
        "--traffic",
        type=Path,
        default=DEFAULT_TRAFFIC,
        help=f"traffic file for --virtual and --live-day ({DEFAULT_TRAFFIC})",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="random seed for --virtual and --live-day (1)"
    )
    parser.add_argument(
        "--router",
        choices=("acd", "fifo"),
        default="acd",
        help="acd: the production ACD (default); fifo: plain first come, first served",
    )


# -- hotline acd staffing ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalPlan:
    group: str
    start: str
    calls: float
    aht: float
    load: float
    agents: int
    scheduled: int
    rostered: int  # operators the traffic file's shifts put there
    service_level: float
    asa: float
    occupancy: float


async def run_staffing(args: argparse.Namespace, settings: object) -> int:
    try:
        plan = load_traffic(args.traffic)
        rows = staffing_rows(_with_overrides(plan, args), groups=args.group)
    except (YamlFileError, ValueError) as error:
        print(f"hotline: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([_row_json(row) for row in rows], indent=2, ensure_ascii=False))
    else:
        print(staffing_table(rows))
    return 0


def _with_overrides(plan: TrafficPlan, args: argparse.Namespace) -> TrafficPlan:
    target = plan.target
    changes = {
        "service_level": args.target_sl,
        "target_seconds": args.target_seconds,
        "asa": args.target_asa,
        "max_occupancy": args.max_occupancy,
    }
    target = replace(target, **{k: v for k, v in changes.items() if v is not None})
    shrinkage = plan.shrinkage if args.shrinkage is None else args.shrinkage
    return replace(plan, target=target, shrinkage=shrinkage)


def staffing_rows(plan: TrafficPlan, groups: list[str] | None = None) -> list[IntervalPlan]:
    """Erlang C staffing for every interval with calls, group by group."""
    known = {g.name for g in plan.groups}
    unknown = sorted(set(groups or ()) - known)
    if unknown:
        raise ValueError(f"unknown group {unknown[0]!r}; the traffic file has {sorted(known)}")
    rows: list[IntervalPlan] = []
    for traffic in plan.groups:
        if groups and traffic.name not in groups:
            continue
        for index, calls in enumerate(traffic.calls):
            if calls <= 0:
                continue
            start = plan.interval_start(index)
            load = offered_load(calls, plan.interval_seconds, traffic.aht)
            need = required_agents(load, traffic.aht, plan.target, plan.shrinkage)
            rows.append(
                IntervalPlan(
                    traffic.name,
                    format_clock(start),
                    calls,
                    traffic.aht,
                    load,
                    need.agents,
                    need.scheduled,
                    traffic.operators_at(start),
                    need.figures.service_level,
                    need.figures.asa,
                    need.figures.occupancy,
                )
            )
    return rows


_COLUMNS = (
    ("группа", "group", "{}"),
    ("начало", "start", "{}"),
    ("звонки", "calls", "{:g}"),
    ("AHT, с", "aht", "{:.0f}"),
    ("нагрузка, Эрл", "load", "{:.1f}"),
    ("операторов", "agents", "{}"),
    ("с учётом потерь", "scheduled", "{}"),
    ("в сменах", "rostered", "{}"),
    ("SL", "service_level", "{:.1%}"),
    ("ASA, с", "asa", "{:.1f}"),
    ("занятость", "occupancy", "{:.1%}"),
)


def staffing_table(rows: list[IntervalPlan]) -> str:
    """A plain-text table for supervisors (headings in Russian, like the operator screens)."""
    cells = [[title for title, _, _ in _COLUMNS]]
    cells += [[form.format(getattr(row, name)) for _, name, form in _COLUMNS] for row in rows]
    widths = [max(len(line[n]) for line in cells) for n in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _row_json(row: IntervalPlan) -> dict[str, Any]:
    return {
        "group": row.group,
        "start": row.start,
        "calls": row.calls,
        "aht": row.aht,
        "load_erlangs": round(row.load, 4),
        "required_agents": row.agents,
        "scheduled_agents": row.scheduled,
        "rostered_agents": row.rostered,
        "service_level": round(row.service_level, 4),
        "asa": round(row.asa, 2),
        "occupancy": round(row.occupancy, 4),
    }


# -- hotline sim --virtual -----------------------------------------------------------------


async def run_virtual(args: argparse.Namespace, settings: object) -> int:
    """Simulate the traffic file's day and print the JSON summary; 2 on a bad file."""
    try:
        plan = load_traffic(args.traffic)
    except YamlFileError as error:
        print(f"hotline: {error}", file=sys.stderr)
        return 2
    result = simulate_day(
        plan, make_router(args.router, plan), seed=args.seed, router_name=args.router
    )
    print(json.dumps(result.summary(), indent=2, ensure_ascii=False))
    return 0


def make_router(name: str, plan: TrafficPlan) -> SimRouter:
    if name == "fifo":
        return FallbackFifoRouter()
    from routing.des_acd import AcdRouter

    return AcdRouter(plan)


# -- argument types ------------------------------------------------------------------------


def _share(text: str) -> float:
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _shrinkage(text: str) -> float:
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def _seconds(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value
