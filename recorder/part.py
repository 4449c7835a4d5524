"""The recorder inside `hotline serve`: what the controller starts and stops for recordings.

`RecorderService` owns, for one controller node:

* the ``on_answered`` hook that starts MixMonitor (`recorder.agi.StartRecording`);
* the `/recordings` API on the controller's aiohttp application (`recorder.http.install`);
* the retention purge, run every `purge_interval` seconds (`recorder.retention.Purger`);
* with `embedded_worker` (the default), the pipeline worker (`recorder.pipeline.Recorder`)
  fed by the controller's own AMI link: one process records calls, as the embedded defaults
  of `scripts/run` promise. With `embedded_worker = false` run `hotline recorder run` on the
  machine that sees the spool directory instead.

Start-up refuses broken configuration with its file:line (token file, retention file) rather
than serving recordings under rules nobody wrote. The first start on a machine without a
master key generates one (see `ensure_master_key`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.agi.hooks import AnsweredHook
from hotline.audit import AuditLog
from hotline.private import private_dir
from recorder.agi import StartRecording
from recorder.cli import watch_ami
from recorder.http import install
from recorder.keys import KeyRing, MasterKeyStore
from recorder.models import RecordingStore
from recorder.pipeline import Recorder
from recorder.retention import Purger, RetentionPolicy, shred_safely
from recorder.settings import AccessSettings, RecorderSettings
from recorder.spool import SPOOL_DIR_MODE
from recorder.storage import LocalStorage, S3Storage, StorageError, open_storage

__all__ = ["RecorderService", "ensure_master_key"]

log = logging.getLogger(__name__)


def ensure_master_key(settings: RecorderSettings) -> None:
    """Generate version 1 of the master key when none exists yet (a fresh installation).

    Recording must not silently stop because nobody ran `hotline recorder keygen`; the new
    key is announced at WARNING level so the admin backs it up apart from the database.
    An existing but unusable key file is not replaced: `KeyError_` says what is wrong.
    """
    store = MasterKeyStore(settings.keys_dir)
    if store.versions(settings.master_key_id):
        store.current(settings.master_key_id)  # readable, 32 bytes, 0600, or KeyError_
        return
    key = store.generate(settings.master_key_id)
    log.warning(
        "generated master key %s v%d at %s: back it up now, apart from the database; "
        "without it no recording can be played",
        key.key_id,
        key.version,
        store.path(key.key_id, key.version),
    )


class RecorderService:
    """Recording for one controller: hook, API, purge and (optionally) the worker."""

    def __init__(
        self,
        settings: RecorderSettings,
        access: AccessSettings,
        engine: AsyncEngine,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        # the controller's one (keyed) audit log; an unkeyed one when built alone in tests
        self.audit = audit or AuditLog(engine)
        self.access = access
        self.engine = engine
        shred_safely(engine)  # before the engine's first connection
        self.recorder: Recorder | None = None
        self._policy: RetentionPolicy | None = None
        self._hook: StartRecording | None = None
        self._resources = contextlib.AsyncExitStack()  # the storage client, while started
        self.operators: dict[str, str] = {}  # call id -> who took it, until the call ends
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def prepare(self) -> None:
        """Check the files and make the directories; raises with file:line on bad config."""
        ensure_master_key(self.settings)
        self._policy = RetentionPolicy.load(self.access.retention_file, self.settings)
        # MixMonitor writes into the spool as soon as the first call is answered.
        private_dir(self.settings.spool_dir, SPOOL_DIR_MODE)
        self._hook = StartRecording(self.settings.spool_dir)  # ValueError: unusable path

    @property
    def hooks(self) -> Sequence[AnsweredHook]:
        """For `CallEntry(on_answered=...)`; after `prepare`."""
        return () if self._hook is None else (self._hook,)

    def watch(self, ami: Any) -> None:
        """Let the embedded worker learn from `ami` (an AmiClient) when recordings finish;
        call after `start`."""
        if self.settings.embedded_worker and self.recorder is not None:
            watch_ami(self.recorder, ami, self.operators)

    def note_operator(self, call_id: str, operator: str) -> None:
        """Who took a call the ACD connected (Dial raises no AgentConnect to learn it from)."""
        self.operators[call_id] = operator

    def install(self, app: web.Application) -> None:
        """The `/recordings` API on the controller's HTTP application."""
        install(app, self.engine, self.settings, self.access, self.audit)

    async def start(self) -> None:
        """Open storage, start the purge and the embedded worker (call `prepare` first)."""
        if self._policy is None:
            self.prepare()
        assert self._policy is not None
        storage = open_storage(self.settings)
        await self._resources.enter_async_context(storage)
        await _check_bucket(storage)
        purger = Purger(self.engine, storage, self.audit, self._policy)
        interval = self.settings.purge_interval
        self._tasks.append(asyncio.create_task(purger.run_periodically(self._stop, interval)))
        if self.settings.embedded_worker:
            ring = KeyRing(MasterKeyStore(self.settings.keys_dir), self.settings.master_key_id)
            store = RecordingStore(self.engine)
            self.recorder = Recorder(self.settings, store, storage, ring, self._policy)
            self._tasks.append(asyncio.create_task(self.recorder.run(self._stop)))
        log.info(
            "recorder started",
            extra={"spool": str(self.settings.spool_dir), "worker": self.settings.embedded_worker},
        )

    async def stop(self) -> None:
        """Stop the worker and the purge; unfinished recordings resume at the next start."""
        self._stop.set()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a crashed loop must not keep the controller from stopping
                log.exception("recorder task had failed")
        self._tasks.clear()
        await self._resources.aclose()


async def _check_bucket(storage: LocalStorage | S3Storage) -> None:
    if isinstance(storage, S3Storage):
        try:
            await storage.ensure_bucket()
        except StorageError as error:  # keep spooling; uploads retry with back-off
            log.error("cannot check bucket %s: %s", storage.bucket, error)
