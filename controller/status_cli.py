"""`hotline status-service`: runs the simulator's stand-in application-status service
(`pbxsim.status_service`) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from pbxsim.status_service import DEFAULT_FIXTURES, FixtureError, load_fixtures, serve


async def cmd_status_service(args: argparse.Namespace, settings: Any) -> int:
    try:
        applications = load_fixtures(args.fixtures)
    except FixtureError as error:
        print(error)
        return 1
    try:
        runner = await serve(applications, args.host, args.port)
    except OSError as error:
        print(f"не удалось занять {args.host}:{args.port}: {error}")
        return 1
    address = f"http://{args.host}:{args.port}/applications/<номер>"
    print(f"сервис статусов: {address} ({len(applications)} заявлений)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def add_status_command(commands: Any) -> None:
    parser = commands.add_parser(
        "status-service", help="the stand-in application-status service the demo menus query (HTTP)"
    )
    parser.add_argument(
        "--fixtures", type=Path, default=DEFAULT_FIXTURES, help="the applications file"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.set_defaults(run=cmd_status_service)
