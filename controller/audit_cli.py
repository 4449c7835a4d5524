"""`hotline audit verify|anchor`: check the audit chain (`hotline.audit`) and export its head.

`verify` recomputes every link (plain SHA-256 before the switch to a key, HMAC with the key
files of `[audit] keys_dir` after), then compares the chain with the newest anchors in the
object-locked bucket (`[audit] anchor_bucket`) and with `--anchor SEQ:HASH` if given: an
anchor naming an entry that is gone or changed proves the end was cut off or rewritten.
Exit 0 intact, 1 broken, 2 the log or the bucket could not be read.

`anchor` exports the head now (the controller does it every `anchor_interval_minutes`);
`--create-bucket` first creates the bucket with object lock (possible only at creation).

`add_commands(commands)` takes the `hotline` parser's subparsers object.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from controller.settings import Settings
from hotline.audit import audit_log_for, parse_anchor
from hotline.audit_anchors import AnchorBucket, AnchorError, anchor_bucket_for
from hotline.audit_watch import AuditWatch
from hotline.store.db import create_engine

__all__ = ["add_commands", "cmd_audit_anchor", "cmd_audit_verify"]

_DB_ERRORS = (OperationalError, ProgrammingError, DBAPIError)


def add_commands(commands: Any) -> None:
    """Register `audit verify` and `audit anchor`."""
    audit = commands.add_parser("audit", help="the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="recompute the chain and compare it with the anchors; exit 1 if broken"
    )
    verify.add_argument(
        "--anchor",
        type=_anchor,
        help="SEQ:HASH printed by an earlier verify; proves nothing was cut off the end",
    )
    verify.set_defaults(run=cmd_audit_verify)
    anchor = audit_commands.add_parser(
        "anchor", help="export the chain's head to the object-locked bucket now"
    )
    anchor.add_argument(
        "--create-bucket", action="store_true", help="create the bucket with object lock first"
    )
    anchor.set_defaults(run=cmd_audit_anchor)


def _anchor(value: str) -> tuple[int, str]:
    try:
        return parse_anchor(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.store.database_url)
    bucket = anchor_bucket_for(settings.audit)
    try:
        anchors = [] if bucket is None else await _anchors(bucket, settings)
        report = await audit_log_for(engine, settings.audit).verify(
            anchor=args.anchor, anchors=anchors
        )
    except _DB_ERRORS as error:
        return _unreadable(f"cannot read the audit log: {_first_line(error)}", migrated=True)
    except AnchorError as error:
        return _unreadable(f"cannot read the anchors: {error}")
    finally:
        await engine.dispose()
    print(report.describe(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


async def _anchors(bucket: AnchorBucket, settings: Settings) -> list[tuple[int, str]]:
    async with bucket:
        found = await bucket.latest(settings.audit.anchor_check_count)
    return [(anchor.seq, anchor.hash) for anchor in found]


async def cmd_audit_anchor(args: argparse.Namespace, settings: Settings) -> int:
    bucket = anchor_bucket_for(settings.audit)
    if bucket is None:
        print("hotline audit anchor: set [audit] anchor_bucket first", file=sys.stderr)
        return 2
    engine = create_engine(settings.store.database_url)
    try:
        async with bucket:
            if args.create_bucket:
                await bucket.create()
            await bucket.check_lock()
            watch = AuditWatch(audit_log_for(engine, settings.audit), settings.audit, bucket)
            anchor = await watch.export_once()
    except _DB_ERRORS as error:
        return _unreadable(f"cannot read the audit log: {_first_line(error)}", migrated=True)
    except AnchorError as error:
        return _unreadable(str(error))
    finally:
        await engine.dispose()
    if anchor is None:
        print("audit log is empty: nothing to anchor")
    else:
        print(f"anchored #{anchor.seq} {anchor.hash} in {bucket.bucket}/{bucket.prefix}")
    return 0


def _unreadable(message: str, *, migrated: bool = False) -> int:
    print(f"hotline audit: {message}", file=sys.stderr)
    if migrated:
        print("(is the database reachable and migrated? `hotline db upgrade`)", file=sys.stderr)
    return 2


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]
