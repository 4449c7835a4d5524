"""`hotline`: the one command, grouped by noun (`hotline menus lint`, `hotline acd staffing`,
`hotline recordings purge`...). Each part adds its own nouns; this module adds the node's
(`serve`, `config`, `db`, `sim`) and keeps the spellings of earlier releases working.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from controller.settings import Settings, load_settings
from hotline.logs import configure_logging
from hotline.settings import ConfigError
from hotline.yamldoc import YamlFileError

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from controller.node import serve

    try:
        await serve(settings)
    # groups, operators, hours, agencies, retention, tokens...; a TLS key others can read
    except (YamlFileError, ConfigError) as error:
        print(f"hotline serve: {error}", file=sys.stderr)
        return 2
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from hotline.store.migrate import current_revision, upgrade

    await upgrade(settings.store.database_url)
    print(f"database at revision {await current_revision(settings.store.database_url)}")
    return 0


async def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(shown_settings(settings), indent=2, ensure_ascii=False, default=str))
    return 0


def shown_settings(settings: Any) -> Any:
    """Settings as plain data for people to read: secrets (fields marked ``secret``) and the
    password of any URL (a database or Redis URL may carry one) replaced with ``***``."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return {
            field.name: "***"
            if field.metadata.get("secret") and getattr(settings, field.name)
            else shown_settings(getattr(settings, field.name))
            for field in dataclasses.fields(settings)
        }
    if isinstance(settings, dict):
        return {key: shown_settings(value) for key, value in settings.items()}
    if isinstance(settings, str):
        return _without_password(settings)
    if isinstance(settings, tuple | list):
        return [shown_settings(value) for value in settings]
    return settings


def _without_password(text: str) -> str:
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc or parts.password is None:
        return text
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def cmd_sim(args: argparse.Namespace, settings: Settings) -> int:
    if args.virtual:
        from routing.staffing_cli import run_virtual

        return await run_virtual(args, settings)
    if args.live_day:
        from controller.simdrive.day import run_live_day

        return await run_live_day(args, settings)
    if args.scenario is None:
        print(
            "hotline sim: give a scenario file, --virtual or --live-day for a day of calls",
            file=sys.stderr,
        )
        return 2
    from controller.simdrive.scenario_cli import run_simulator

    return await run_simulator(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description="Telephony engine for the government-services hotline."
    )
    parser.add_argument(
        "--config", type=Path, help="TOML configuration file (default: $HOTLINE_CONFIG)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the controller (FastAGI, AMI, health)")
    serve.set_defaults(run=cmd_serve)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(run=cmd_db_upgrade)
    config = commands.add_parser("config", help="the configuration in force")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_commands.add_parser(
        "show", help="print it as JSON, secrets and passwords hidden"
    ).set_defaults(run=cmd_config)
    add_sim_parser(commands)
    for add_commands in part_commands():
        add_commands(commands)
    return parser


def part_commands() -> list[Callable[[Any], None]]:
    """Each part of the product contributes its own subcommands."""
    from controller import audit_cli, keys_cli, status_cli, users_cli
    from ivr import cli as ivr_cli
    from ivr import prompts_cli
    from recorder import cli as recorder_cli
    from recorder import recordings_cli
    from reporting import cli as reporting_cli
    from routing import staffing_cli

    return [
        ivr_cli.add_commands,
        prompts_cli.add_commands,
        status_cli.add_status_command,
        recorder_cli.add_commands,
        audit_cli.add_commands,
        keys_cli.add_commands,
        users_cli.add_commands,
        recordings_cli.add_commands,
        staffing_cli.add_commands,
        reporting_cli.add_commands,
    ]


def add_sim_parser(commands: Any) -> None:
    from routing.staffing_cli import add_virtual_sim_options

    sim = commands.add_parser(
        "sim", help="PBX simulator: simulated callers and operators against the controller"
    )
    sim.add_argument(
        "scenario", type=Path, nargs="?", help="scenario file (YAML); not with --virtual"
    )
    sim.add_argument("--agi-host", help="controller's FastAGI host (default: agi.host)")
    sim.add_argument("--agi-port", type=int, help="controller's FastAGI port (default: agi.port)")
    sim.add_argument(
        "--ami-port", type=int, default=None, help="serve AMI on this port (default: ami.port)"
    )
    sim.add_argument("--no-ami", action="store_true", help="do not serve AMI")
    sim.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="1 = real time, 0 = as fast as possible (default 1)",
    )
    sim.add_argument(
        "--live-day",
        action="store_true",
        help="the traffic file's day (--traffic) played live against the running controller:"
        " its menus, its ACD, operators on duty per the shifts through its operator API",
    )
    sim.add_argument(
        "--window",
        help="with --live-day: only this part of the day, HH:MM-HH:MM (e.g. 09:00-11:00)",
    )
    sim.add_argument(
        "--token-file",
        type=Path,
        help="with --live-day: a file holding a supervisor's bearer token; the day logs the"
        " operators in and out as that supervisor (audited, reason: the simulated day)",
    )
    add_virtual_sim_options(sim)
    sim.set_defaults(run=cmd_sim)


def run_with_loop(settings: Settings, main: Awaitable[int]) -> int:
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # e.g. a platform without uvloop: asyncio's own loop works too
            return asyncio.run(main)  # type: ignore[arg-type]
        return uvloop.run(main)  # type: ignore[arg-type]
    return asyncio.run(main)  # type: ignore[arg-type]


# Spellings of earlier releases, kept working: first word -> the words that replace it.
OLD_SPELLINGS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "lint": ("menus", "lint"),
        "try": ("menus", "try"),
        "graph": ("menus", "graph"),
        "surge": ("hours", "surge"),
        "staffing": ("acd", "staffing"),
    }
)
# Nouns that were commands of their own: the verb they meant when given none.
DEFAULT_VERBS: Final[Mapping[str, str]] = MappingProxyType({"prompts": "build", "config": "show"})


def current_spelling(argv: Sequence[str]) -> list[str]:
    """`argv` with an earlier release's spelling of the command rewritten to today's
    (``hotline lint`` -> ``hotline menus lint``, ``hotline prompts`` -> ``prompts build``)."""
    words = list(argv)
    at = 2 if words[:1] == ["--config"] else 0
    if at >= len(words):
        return words
    command = words[at]
    if command in OLD_SPELLINGS:
        return [*words[:at], *OLD_SPELLINGS[command], *words[at + 1 :]]
    rest = words[at + 1 :]
    if command in DEFAULT_VERBS and (not rest or rest[0].startswith("-")):
        if rest[:1] not in (["-h"], ["--help"]):
            return [*words[: at + 1], DEFAULT_VERBS[command], *rest]
    return words


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(current_spelling(words))
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"hotline: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log)
    run: Command = args.run
    try:
        return run_with_loop(settings, run(args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
