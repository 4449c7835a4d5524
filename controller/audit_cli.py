"""`hotline audit verify`: recompute the audit log's hash chain (`hotline.audit`) and say where
it breaks; `--anchor SEQ:HASH` (the head an earlier run printed) also proves nothing was cut off
the end. Exit 0 intact, 1 broken, 2 the log could not be read.

`add_commands(commands)` takes the `hotline` parser's subparsers object.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from controller.settings import Settings
from hotline.audit import AuditLog, parse_anchor
from hotline.store.db import create_engine

__all__ = ["add_commands", "cmd_audit_verify"]


def add_commands(commands: Any) -> None:
    """Register `audit verify`."""
    audit = commands.add_parser("audit", help="the recordings audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="recompute the hash chain; exit 1 at the first broken entry"
    )
    verify.add_argument(
        "--anchor",
        type=_anchor,
        help="SEQ:HASH printed by an earlier verify; proves nothing was cut off the end",
    )
    verify.set_defaults(run=cmd_audit_verify)


def _anchor(value: str) -> tuple[int, str]:
    try:
        return parse_anchor(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.store.database_url)
    try:
        report = await AuditLog(engine).verify(anchor=args.anchor)
    except (OperationalError, ProgrammingError, DBAPIError) as error:
        print(
            f"hotline audit verify: cannot read the audit log: {_first_line(error)}",
            file=sys.stderr,
        )
        print("(is the database reachable and migrated? `hotline db upgrade`)", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    print(report.describe(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
