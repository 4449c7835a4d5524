"""The admin's tools for menu files: ``hotline menus lint|try|graph|versions|rollback``.

`add_commands(commands)` adds them all to the ``hotline`` command's subparsers.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hotline.versions import VersionError, VersionStore, digest
from hotline.yamldoc import write_atomically
from ivr.graph import render_svg
from ivr.menu.console import ConsoleChannel, ScriptedKeypad, terminal_keypad
from ivr.menu.engine import CallResult, Engine
from ivr.menu.library import hours_loader, load_library, load_one
from ivr.menu.lint import lint_paths
from ivr.menu.loader import load_menu
from ivr.menu.model import MenuError, Services, Step
from ivr.settings import IvrSettings, WithIvrSettings


def ivr_settings(settings: WithIvrSettings | None) -> IvrSettings:
    """The ``[ivr]`` section; its defaults when a command runs without settings."""
    return IvrSettings() if settings is None else settings.ivr


def add_commands(commands: Any) -> None:
    """``hotline menus lint|try|graph|versions|rollback``."""
    menus = commands.add_parser(
        "menus", help="menu files: check, try, draw, their versions and rollback"
    )
    actions = menus.add_subparsers(dest="menus_action", metavar="ACTION", required=True)
    _add_lint(actions)
    _add_try(actions)
    _add_graph(actions)
    _add_versions(actions)


def _add_lint(actions: Any) -> None:
    lint = actions.add_parser(
        "lint", help="check menu files: every error as file:line (exit 1 on any)"
    )
    lint.add_argument("path", nargs="?", type=Path, help="a menu file or a directory of them")
    lint.set_defaults(run=cmd_lint)


def _add_try(actions: Any) -> None:
    trial = actions.add_parser(
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


def _add_graph(actions: Any) -> None:
    graph = actions.add_parser("graph", help="draw a number's menu as an SVG picture")
    graph.add_argument("number", help="the number whose menu to draw, e.g. 88001000001")
    graph.add_argument("-o", "--output", type=Path, help="the SVG file (default: standard output)")
    graph.add_argument("--dialplans", type=Path, help="menu directory (default: ivr settings)")
    graph.set_defaults(run=cmd_graph)


def _add_versions(actions: Any) -> None:
    listing = actions.add_parser("versions", help="list a number's accepted menu versions")
    listing.add_argument("number")
    listing.add_argument("--dialplans", type=Path, help="menu directory (default: ivr settings)")
    listing.set_defaults(run=cmd_versions)
    rollback = actions.add_parser(
        "rollback", help="put an accepted version back in service (recorded as a new version)"
    )
    rollback.add_argument("number")
    rollback.add_argument("version", help="a version id, its start, or its 8-character hash")
    rollback.add_argument("--author", help="who rolls back (default: the login user)")
    rollback.add_argument("--dialplans", type=Path, help="menu directory (default: ivr settings)")
    rollback.set_defaults(run=cmd_rollback)


async def cmd_lint(args: argparse.Namespace, settings: WithIvrSettings | None) -> int:
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


async def cmd_try(args: argparse.Namespace, settings: WithIvrSettings | None) -> int:
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


async def cmd_graph(args: argparse.Namespace, settings: WithIvrSettings | None) -> int:
    ivr = ivr_settings(settings)
    path = (args.dialplans or ivr.dialplans_dir) / f"{args.number}.yaml"
    if not path.is_file():
        print(f"{path}: no menu file for {args.number}", file=sys.stderr)
        return 1
    try:
        menu = load_menu(path)
    except MenuError as error:
        print(error, file=sys.stderr)
        return 1
    svg = render_svg(menu)
    if args.output is None:
        sys.stdout.write(svg)
    else:
        write_atomically(args.output, svg.encode("utf-8"))
        print(f"{args.output}: {len(menu.nodes)} nodes of {menu.number}")
    return 0


async def cmd_versions(args: argparse.Namespace, settings: WithIvrSettings | None) -> int:
    ivr = ivr_settings(settings)
    store = VersionStore(ivr.versions_dir)
    try:
        found = store.versions(args.number)
    except VersionError as error:
        print(error, file=sys.stderr)
        return 1
    if not found:
        print(f"{args.number}: no versions recorded in {store.root}")
        return 1
    on_disk = _sha_on_disk((args.dialplans or ivr.dialplans_dir) / f"{args.number}.yaml")
    print(f"{args.number}: {len(found)} versions, oldest first (* = the file in dialplans)")
    for index, version in enumerate(found, 1):
        mark = "*" if version.sha256 == on_disk else " "
        note = f"  ({version.note})" if version.note else ""
        print(f"{mark}{index:>3}  {version.id}  {version.saved_at}  {version.author}{note}")
    return 0


async def cmd_rollback(args: argparse.Namespace, settings: WithIvrSettings | None) -> int:
    ivr = ivr_settings(settings)
    store = VersionStore(ivr.versions_dir)
    target = (args.dialplans or ivr.dialplans_dir) / f"{args.number}.yaml"
    try:
        version = store.find(args.number, args.version)
        data = store.content(version)
    except (VersionError, OSError) as error:
        print(error, file=sys.stderr)
        return 1
    if _sha_on_disk(target) == version.sha256:
        print(f"{target}: already version {version.id}")
        return 0
    try:  # the hours and calendar beside it may have changed since it was accepted
        load_one(target, Services(), lambda: False, data.decode("utf-8"))
    except (MenuError, UnicodeDecodeError) as error:
        print(f"version {version.id} no longer passes its checks:\n{error}", file=sys.stderr)
        return 1
    author = args.author or login_name()
    # Recorded before the file is replaced: the running controller then finds these bytes
    # already recorded, and the rollback keeps its author and note.
    recorded = store.record(args.number, data, author, note=f"rollback to {version.id}")
    write_atomically(target, data)
    print(f"{target}: restored {version.id}, recorded as {recorded.id} by {author}")
    return 0


def login_name() -> str:
    """The user running the command, by their account name."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no account (a container's arbitrary user)
        return f"uid {os.getuid()}"


def _sha_on_disk(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except OSError:
        return None
