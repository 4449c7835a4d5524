"""`hotline recorder ...`: the recording worker and master key maintenance.

    hotline recorder run [--once]   the worker: spool -> transcode -> encrypt -> store -> verify
    hotline recorder keygen         write the next master key version (the current one from now)
    hotline recorder rewrap         move every recording's data key under the current master key

`add_commands(commands)` registers them on the `hotline` command's subparsers; each sets
`run=coroutine(args, settings) -> exit code`, with the `[recorder]`, `[recorder_access]`,
`[ami]` and `[store]` sections of the settings (`recorder.settings.WithRecorderSettings`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from hotline.ami.client import AmiClient
from hotline.ami.protocol import AmiMessage
from hotline.settings import AmiSettings
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from hotline.yamldoc import YamlFileError
from recorder.keys import KeyError_, KeyRing, MasterKeyStore, WrappedKey, wrapped_key_of
from recorder.models import RecordingStore
from recorder.pipeline import CallInfo, Recorder
from recorder.retention import RetentionPolicy, shred_safely
from recorder.settings import RecorderSettings, WithRecorderSettings
from recorder.spool import valid_call_id
from recorder.storage import S3Storage, StorageError, open_storage

__all__ = [
    "add_commands",
    "cmd_keygen",
    "cmd_rewrap",
    "cmd_run",
    "recorder_settings",
    "rewrap_all",
    "run_worker",
    "watch_ami",
]

log = logging.getLogger("recorder.cli")


def recorder_settings(settings: WithRecorderSettings) -> RecorderSettings:
    """The `[recorder]` section."""
    return settings.recorder


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("recorder", help="call recordings: worker and master keys")
    actions = parser.add_subparsers(dest="recorder_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the recording worker (spool -> storage)")
    run.add_argument("--once", action="store_true", help="process what is finished now, then exit")
    run.set_defaults(run=cmd_run)
    keygen = actions.add_parser("keygen", help="write a new master key version (0600)")
    keygen.add_argument("--key-id", help="master key id (default: recorder.master_key_id)")
    keygen.set_defaults(run=cmd_keygen)
    rewrap = actions.add_parser(
        "rewrap", help="re-wrap every data key under the current master key version"
    )
    rewrap.set_defaults(run=cmd_rewrap)


async def cmd_run(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    ami = settings.ami
    rsettings = recorder_settings(settings)
    access = settings.recorder_access
    try:  # the same terms the purge job applies: dialplans/retention.yaml
        retention = RetentionPolicy.load(access.retention_file, rsettings)
    except YamlFileError as error:
        print(f"hotline recorder run: {error}", file=sys.stderr)
        return 2
    return await run_worker(
        rsettings,
        settings.store.database_url,
        once=args.once,
        ami=ami if ami.enabled and not args.once else None,
        retention=retention,
    )


async def cmd_keygen(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    rsettings = recorder_settings(settings)
    store = MasterKeyStore(rsettings.keys_dir)
    try:
        key = store.generate(args.key_id or rsettings.master_key_id)
    except (KeyError_, OSError) as error:
        print(f"hotline recorder keygen: {error}", file=sys.stderr)
        return 2
    path = store.path(key.key_id, key.version)
    print(f"master key {key.key_id} v{key.version} written to {path}")
    if key.version > 1:
        print("new recordings use it now; run `hotline recorder rewrap` to move the old ones")
    return 0


async def cmd_rewrap(args: argparse.Namespace, settings: WithRecorderSettings) -> int:
    rsettings = recorder_settings(settings)
    ring = KeyRing(MasterKeyStore(rsettings.keys_dir), rsettings.master_key_id)
    engine = create_engine(settings.store.database_url)
    try:
        moved, failed = await rewrap_all(RecordingStore(engine), ring)
    except KeyError_ as error:
        print(f"hotline recorder rewrap: {error}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    print(f"{moved} data keys re-wrapped, {failed} could not be unwrapped")
    return 0 if failed == 0 else 1


async def rewrap_all(store: RecordingStore, ring: KeyRing, batch: int = 500) -> tuple[int, int]:
    """Re-wrap every live data key not under the current master key; (moved, failed).

    Rows whose key cannot be unwrapped (their master key file is gone) are counted and
    skipped, never altered: they may still be recoverable from a key backup.
    """
    current = ring.store.current(ring.key_id)
    moved = failed = 0
    skipped: set[str] = set()
    while True:
        rows = [
            row
            for row in await store.with_key_not(
                current.key_id, current.version, batch + len(skipped)
            )
            if row.call_id not in skipped
        ]
        if not rows:
            return moved, failed
        for row in rows:
            old: WrappedKey = wrapped_key_of(row)
            try:
                new = ring.rewrap(row.call_id, old)
            except KeyError_ as error:
                log.error("cannot rewrap recording %s: %s", row.call_id, error)
                skipped.add(row.call_id)
                failed += 1
                continue
            if await store.replace_wrapped_key(row.call_id, old, new):
                moved += 1
            else:  # shredded or rewrapped meanwhile: look at it again next round
                skipped.add(row.call_id)


async def run_worker(
    rsettings: RecorderSettings,
    database_url: str,
    *,
    once: bool = False,
    stop: asyncio.Event | None = None,
    ami: AmiSettings | None = None,
    retention: RetentionPolicy | None = None,
) -> int:
    """The worker process: migrate, open storage, run the pipeline until SIGTERM/SIGINT.

    With `ami` (the `[ami]` section, enabled) the worker keeps its own AMI link and learns
    from Asterisk when each recording stops; without it, the idle fallback finds them."""
    ring = KeyRing(MasterKeyStore(rsettings.keys_dir), rsettings.master_key_id)
    try:
        ring.store.current(rsettings.master_key_id)
    except KeyError_ as error:
        print(f"hotline recorder run: {error}", file=sys.stderr)
        return 2
    await upgrade(database_url)
    engine = create_engine(database_url)
    shred_safely(engine)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with open_storage(rsettings) as storage:
            if isinstance(storage, S3Storage):
                try:
                    await storage.ensure_bucket()
                except StorageError as error:  # keep spooling; uploads retry with back-off
                    log.error("cannot check bucket %s: %s", storage.bucket, error)
            recorder = Recorder(rsettings, RecordingStore(engine), storage, ring, retention)
            log.info("recorder worker started, spool %s", rsettings.spool_dir)
            if once:
                await recorder.run_until_idle()
            else:
                async with _ami_link(ami, recorder):
                    await recorder.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        await engine.dispose()
    return 0


@contextlib.asynccontextmanager
async def _ami_link(ami: AmiSettings | None, recorder: Recorder) -> AsyncIterator[None]:
    """An AMI link (reconnecting in the background) feeding `recorder`, for the block."""
    if ami is None:
        yield
        return
    client = AmiClient.from_settings(ami)
    watch_ami(recorder, client)
    client.start()
    try:
        yield
    finally:
        await client.close()


def watch_ami(recorder: Recorder, ami: Any, operators: dict[str, str] | None = None) -> None:
    """Tell `recorder` when Asterisk finishes a recording: `MixMonitorStop` of a channel, or
    its `Hangup` (Asterisk 22 sends no MixMonitorStop when the channel simply hangs up).

    The operator who took the call comes from the queue's `AgentConnect` (its `MemberName`,
    else the member `Interface`), remembered per caller channel until that channel stops.
    The number dialled and the times are filled from the controller's call log. `operators`
    (call id -> name) may be shared with the ACD, which knows who took calls it connected.
    """
    if operators is None:
        operators = {}

    async def on_connect(event: AmiMessage) -> None:
        call_id = event.get("Uniqueid") or ""
        operator = event.get("MemberName") or event.get("Interface") or ""
        if valid_call_id(call_id) and operator:
            operators[call_id] = operator

    async def on_stop(event: AmiMessage) -> None:
        call_id = event.get("Uniqueid") or ""
        if not valid_call_id(call_id):
            return
        operator = operators.pop(call_id, None)
        await recorder.finished(call_id, CallInfo(operator=operator) if operator else None)

    ami.on("AgentConnect", on_connect)
    ami.on("MixMonitorStop", on_stop)
    ami.on("Hangup", on_stop)
