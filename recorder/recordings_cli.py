"""`hotline recordings ...`: retention, legal holds, quality samples, clips and API tokens.

    hotline recordings purge [--dry-run]          crypto-shred recordings past their term
    hotline recordings hold|release ID --reason   place or lift a legal hold
    hotline recordings sample --period P          random recordings per operator for review
    hotline recordings clip ID --from --to -o F   export seconds FROM-TO of a recording
    hotline recordings token --user U --role R    a bearer token and its token-file entry

`add_commands(commands)` takes the `hotline` parser's subparsers object (and joins a
`recordings` group another part already made). Every command here acts
as the person at the terminal (`cli:<login>` in the audit log, role `system`), and every one of
them that touches a recording is audited like an API access.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from hotline.audit import audit_log_for
from hotline.auth import TOKEN_ROLES, Actor, new_token
from hotline.private import open_private
from hotline.store.db import create_engine
from hotline.yamldoc import YamlFileError
from recorder import keys
from recorder.cli import recorder_settings
from recorder.models import RecordingStore
from recorder.permissions import AccessDenied, Action
from recorder.playback import RecordingAccess
from recorder.retention import (
    Purger,
    RetentionPolicy,
    set_hold,
    shred_safely,
)
from recorder.sampling import ClipError, draw_sample, export_clip, parse_period
from recorder.settings import AccessSettings, WithRecorderSettings
from recorder.storage import StorageError, open_storage

__all__ = [
    "add_commands",
    "cli_actor",
    "cli_source",
    "cmd_clip",
    "cmd_hold",
    "cmd_purge",
    "cmd_sample",
    "cmd_token",
]

SYSTEM_ROLE = "system"


def cli_actor() -> Actor:
    """The person at the terminal, as the audit log names them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): still say it was the CLI
        login = "unknown"
    return Actor(user_id=f"cli:{login}", role=SYSTEM_ROLE)


def cli_source() -> str:
    return f"cli@{socket.gethostname()}"


def add_commands(commands: Any) -> None:
    """Register the `recordings` maintenance commands."""
    _add_recordings_commands(_recordings_subparsers(commands))


def _recordings_subparsers(commands: Any) -> Any:
    """The `recordings` group's subparsers, created here unless another part already did."""
    existing = commands.choices.get("recordings")
    if existing is None:
        parser = commands.add_parser("recordings", help="recordings: retention, holds, samples")
        return parser.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")
    for action in existing._actions:  # argparse offers no public way back to them
        if isinstance(action, argparse._SubParsersAction):
            return action
    return existing.add_subparsers(dest="recordings_command", required=True, metavar="ACTION")


def _add_recordings_commands(group: Any) -> None:
    purge = group.add_parser("purge", help="crypto-shred recordings past their retention term")
    purge.add_argument("--dry-run", action="store_true", help="list what is due, change nothing")
    purge.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    purge.set_defaults(run=cmd_purge)
    for name, verb in (("hold", "place"), ("release", "lift")):
        command = group.add_parser(name, help=f"{verb} a legal hold (stops the purge)")
        command.add_argument("recording_id")
        command.add_argument("--reason", required=True, help="case number or order; audited")
        command.set_defaults(run=cmd_hold, hold=name == "hold")
    sample = group.add_parser("sample", help="random recordings per operator for quality review")
    sample.add_argument("--period", required=True, help="2026-11, 2026-W48 or 2026-11-27 (UTC)")
    sample.add_argument("--per-operator", type=int, default=5, help="N per operator (default 5)")
    sample.add_argument("--seed", help="default: the period; reuse it to redraw the same sample")
    sample.set_defaults(run=cmd_sample)
    clip = group.add_parser("clip", help="export seconds FROM-TO of a recording (training)")
    clip.add_argument("recording_id")
    clip.add_argument("--from", dest="start", type=float, required=True, help="seconds")
    clip.add_argument("--to", dest="end", type=float, required=True, help="seconds")
    clip.add_argument("--output", "-o", type=Path, required=True, help="file to write")
    clip.set_defaults(run=cmd_clip)
    token = group.add_parser("token", help="make an API token; prints the token-file entry")
    token.add_argument("--user", required=True)
    token.add_argument("--role", required=True, choices=sorted(TOKEN_ROLES))
    token.set_defaults(run=cmd_token)


def access_settings(settings: WithRecorderSettings) -> AccessSettings:
    return settings.recorder_access


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def _fail(command: str, message: str, code: int = 2) -> int:
    print(f"hotline recordings {command}: {message}", file=sys.stderr)
    return code


async def cmd_purge(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    recorder = recorder_settings(settings)
    try:
        policy = RetentionPolicy.load(access_settings(settings).retention_file, recorder)
    except YamlFileError as error:
        return _fail("purge", str(error))
    engine = create_engine(settings.store.database_url)
    shred_safely(engine)
    try:
        async with open_storage(recorder) as storage:
            purger = Purger(
                engine, storage, audit_log_for(engine, settings.audit), policy, actor=cli_actor()
            )
            if args.dry_run:
                for row in await purger.due(limit=args.limit):
                    state = "legal hold" if row.legal_hold else "due"
                    print(f"{row.call_id}\t{row.retention_category}\t{state}")
                return 0
            report = await purger.run(limit=args.limit)
    except (StorageError, OperationalError, ProgrammingError, DBAPIError) as error:
        return _fail("purge", _first_line(error))
    finally:
        await engine.dispose()
    print(report.describe())
    for call_id, problem in report.failed.items():
        print(f"{call_id}: {problem}", file=sys.stderr)
    return 1 if report.failed else 0


async def cmd_hold(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    engine = create_engine(settings.store.database_url)
    try:
        result = await set_hold(
            engine,
            audit_log_for(engine, settings.audit),
            cli_actor(),
            args.recording_id,
            hold=args.hold,
            reason=args.reason,
            source=cli_source(),
        )
    except (OperationalError, ProgrammingError, DBAPIError) as error:
        return _fail("hold" if args.hold else "release", _first_line(error))
    finally:
        await engine.dispose()
    print(result.message, file=sys.stdout if result.outcome == "ok" else sys.stderr)
    return 0 if result.outcome == "ok" else 1


async def cmd_sample(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    try:
        period = parse_period(args.period)
    except ValueError as error:
        return _fail("sample", str(error))
    if args.per_operator < 1:
        return _fail("sample", "--per-operator must be at least 1")
    engine = create_engine(settings.store.database_url)
    try:
        sample = await draw_sample(
            engine,
            audit_log_for(engine, settings.audit),
            cli_actor(),
            period=period,
            per_operator=args.per_operator,
            seed=args.seed,
            source=cli_source(),
        )
    except (OperationalError, ProgrammingError, DBAPIError) as error:
        return _fail("sample", _first_line(error))
    finally:
        await engine.dispose()
    shown = {"period": period.name, "seed": sample.seed, "picks": sample.picks}
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


async def cmd_clip(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    if not 0 <= args.start < args.end:
        return _fail("clip", "--from must be >= 0 and less than --to")
    recorder = recorder_settings(settings)
    engine = create_engine(settings.store.database_url)
    key_ring = keys.KeyRing(keys.MasterKeyStore(recorder.keys_dir), recorder.master_key_id)
    try:
        async with open_storage(recorder) as storage:
            access = RecordingAccess(
                RecordingStore(engine), storage, key_ring, audit_log_for(engine, settings.audit)
            )
            clip = await _export(access, args)
    except AccessDenied as denial:
        return _fail("clip", denial.message, 1)
    except (ClipError, StorageError, keys.KeyError_, keys.IntegrityError) as error:
        return _fail("clip", f"{type(error).__name__}: {error}", 1)
    except (OperationalError, ProgrammingError, DBAPIError) as error:
        return _fail("clip", _first_line(error))
    finally:
        await engine.dispose()
    temporary = args.output.with_name(f".{args.output.name}.partial")
    with open_private(temporary) as out:  # a citizen's voice: for the requester only
        out.write(clip)
    temporary.replace(args.output)
    print(f"{args.output}: {len(clip)} bytes, {args.start:g}-{args.end:g} s of {args.recording_id}")
    return 0


async def _export(access: RecordingAccess, args: argparse.Namespace) -> bytes:
    actor, source = cli_actor(), cli_source()
    detail = {"from": args.start, "to": args.end, "output": str(args.output)}
    recording = await access.authorize(
        actor, Action.CLIP, recording_id=args.recording_id, source=source, detail=detail
    )
    assert recording is not None
    try:
        return await export_clip(
            access.plaintext(recording), recording.format, args.start, args.end
        )
    except (ClipError, StorageError, keys.KeyError_, keys.IntegrityError) as error:
        await access.audit_failure(
            actor,
            Action.CLIP,
            recording_id=recording.call_id,
            source=source,
            outcome="error",
            detail={"problem": f"{type(error).__name__}: {error}"},
        )
        raise


async def cmd_token(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    token, digest = new_token()
    tokens_file = access_settings(settings).tokens_file
    print(f"token (give it to {args.user}; it is not stored anywhere): {token}")
    print(f"add to {tokens_file} under `users:`:")
    print(
        f"  - {{user: {json.dumps(args.user, ensure_ascii=False)}, role: {args.role}, "
        f"token_sha256: {digest}}}"
    )
    return 0
