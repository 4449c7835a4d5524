"""``hotline lint`` and ``hotline try``: the admin's tools for menu files.

`add_commands(commands)` adds both to the ``hotline`` command's subparsers.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hotline.config import Settings
from ivr.menu.console import ConsoleChannel, ScriptedKeypad, terminal_keypad
from ivr.menu.engine import CallResult, Engine
from ivr.menu.library import hours_loader, load_library
from ivr.menu.lint import lint_paths
from ivr.menu.model import Services, Step
from ivr.settings import IvrSettings


def ivr_settings(settings: Settings | None) -> IvrSettings:
    """The ``[ivr]`` section once the lead wires it into Settings; the defaults until then."""
    found = getattr(settings, "ivr", None)
    return found if isinstance(found, IvrSettings) else IvrSettings()


def add_commands(commands: Any) -> None:
    lint = commands.add_parser(
        "lint", help="check menu files: every error as file:line (exit 1 on any)"
    )
    lint.add_argument("path", nargs="?", type=Path, help="a menu file or a directory of them")
    lint.set_defaults(run=cmd_lint)
    trial = commands.add_parser(
        "try", help="run a number's menu with no PBX and print the path the call takes"
    )
    trial.add_argument("number", help="the dialled number, e.g. 88001000001")
    trial.add_argument(
        "--at", required=True, help="the moment of the call, ISO (Moscow time when no offset)"
    )
    trial.add_argument(
        "--digits",
        help="the caller's entries in order, comma-separated (empty = presses nothing); "
        "without it, entries are read from the terminal",
    )
    trial.add_argument("--caller-id", default="79990000000", help="the caller's number")
    trial.add_argument("--seen-before", action="store_true", help="the caller has called before")
    trial.add_argument("--surge", choices=("on", "off"), help="override the surge switch")
    trial.add_argument(
        "--queue-status",
        help="QUEUESTATUS the queue reports (TIMEOUT, JOINEMPTY...); default: an operator answers",
    )
    trial.add_argument("--dialplans", type=Path, help="menu directory (default: ivr settings)")
    trial.set_defaults(run=cmd_try)


async def cmd_lint(args: argparse.Namespace, settings: Settings | None) -> int:
    ivr = ivr_settings(settings)
    from ivr.prompts import DEFAULT_CORE_SOUNDS_DIR, load_catalog

    try:
        catalog = load_catalog(ivr.prompts_dir, DEFAULT_CORE_SOUNDS_DIR)
    except ValueError as error:  # a broken prompt text file: its own file:line errors
        print(error)
        return 1
    problems = lint_paths(args.path or ivr.dialplans_dir, catalog.exists, hours_loader())
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{args.path or ivr.dialplans_dir}: ok")
    return 1 if problems else 0


class _StaticHistory:
    def __init__(self, seen: bool) -> None:
        self.seen = seen

    async def seen_before(self, caller_id: str, call_id: str) -> bool:
        return self.seen


async def cmd_try(args: argparse.Namespace, settings: Settings | None) -> int:
    ivr = ivr_settings(settings)
    try:
        at = moment(args.at, ivr.timezone)
    except ValueError:
        print(f"--at: not an ISO date and time: {args.at!r}", file=sys.stderr)
        return 2
    from ivr.entry import base_services

    services: Services = base_services(ivr, None)
    services = Services(**{**services.__dict__, "history": _StaticHistory(args.seen_before)})
    surge = None if args.surge is None else (lambda: args.surge == "on")
    library, problems = load_library(
        args.dialplans or ivr.dialplans_dir, services, ivr.general_number, surge
    )
    for problem in problems:
        print(f"rejected: {problem}", file=sys.stderr)
    picked = library.pick(args.number)
    if picked is None:
        print("no menu could be loaded", file=sys.stderr)
        return 1
    menu, menu_services = picked
    keypad = terminal_keypad if args.digits is None else ScriptedKeypad(args.digits.split(","))
    channel = ConsoleChannel(
        keypad,
        call_id="try.1",
        env={"agi_callerid": args.caller_id},
        queue_status=args.queue_status,
    )
    print(header(menu.number, menu.title, args.number, at, menu_services))
    result = await Engine(ivr.max_steps).run(
        channel, menu, menu_services, at, caller_id=args.caller_id, observer=print_step
    )
    print(footer(result, channel))
    return 0


def moment(text: str, timezone: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(timezone))


def header(number: str, title: str, dialled: str, at: datetime, services: Services) -> str:
    line = f"{number} ({title})"
    if dialled != number:
        line = f"{dialled}: no menu, general line {line}"
    status = services.hours.status(at) if services.hours is not None else None
    when = "no opening hours"
    if status is not None:
        state = "surge" if status.surge else ("open" if status.open else "closed")
        when = f"{state}, {status.kind}"
    return f"{line} at {at.isoformat()}: {when}"


def print_step(step: Step) -> None:
    print(f"  {step}")


def footer(result: CallResult, channel: ConsoleChannel) -> str:
    lines = []
    shown = {k: v for k, v in channel.variables.items() if k.startswith("HOTLINE_")}
    if shown:
        lines.append("  channel: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    end = result.end
    text = f"end: {end.kind}"
    if end.detail:
        text += f" {end.detail}"
    text += f" ({result.outcome})"
    if result.queued is not None and end.kind != "queue":
        text += f" after queue {result.queued[0]}"
    lines.append(text)
    return "\n".join(lines)
