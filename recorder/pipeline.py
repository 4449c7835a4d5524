"""The recording pipeline: spool file -> transcode -> encrypt -> upload -> verify -> delete.

Conventions the controller relies on:

* MixMonitor writes `<spool_dir>/<call id>.wav`, where the call id is the channel's Asterisk
  uniqueid (`1795563226.1`); `recorder.spool` owns those names and `mixmonitor_args`.
* When Asterisk reports the recording finished (AMI `MixMonitorStop`, or `Hangup` of the
  recorded channel) the controller calls `Recorder.finished(call_id, CallInfo(...))` with what
  it knows (number dialled, operator, times). Without that notification a spool file unchanged
  for `idle_seconds` is taken as finished anyway, with metadata from the call log.

Every step is idempotent and keyed by the call id; the row's `state` (see `recorder.models`)
says which step is next, and intermediate files live in `work_dir` under names derived from the
call id. A crash anywhere therefore resumes on restart with the same step, and the object key
is a function of the call id, so a repeated upload replaces rather than duplicates. The spool
file is deleted only after the row reached `verified`.

Its `spooled` row is made by `recorder.registration`: one transaction per round of
notifications (group commit), one per batch of files a scan finds. A recording then takes two
steps and two row updates: encode and encrypt (spooled -> encrypted), then upload and verify
(encrypted -> verified). The row's fixed cost (transactions, fsyncs) is what makes a short call
dearer per audio-hour than a long one, so no state is committed that recovery does not need:
until `encrypted` commits the spool file is still there to encode again, and until `verified`
commits the ciphertext is still there to upload again. Rows an older version left `transcoded`
or `stored` are resumed from there.

Storage being down raises `StorageUnavailable`: the worker backs off exponentially (up to
`retry_max`) and, once failures have lasted `storage_alarm_after`, raises the storage alarm
(an ERROR log line and `hotline_recorder_storage_alarm` = 1) while the spool grows. Each scan
also checks the spool filesystem's free space and raises the spool alarm below the threshold
(`recorder.alarms`). Transcoding is `recorder.audio`: in process, in a worker thread, so a
recording costs no process and the event loop is not held while it encodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol

from hotline.logs import bind_call
from hotline.private import private_dir
from recorder import metrics
from recorder.alarms import Alarm, Backoff, check_spool_space
from recorder.audio import TranscodeFailed, encode_file, encoder_threads, wav_duration
from recorder.keys import KeyRing
from recorder.models import RecordedCall, RecordingStore, State
from recorder.registration import CallInfo, Registered, Registrar
from recorder.settings import RecorderSettings
from recorder.spool import (
    SPOOL_DIR_MODE,
    SPOOL_SUFFIX,
    spool_path,
    valid_call_id,
)
from recorder.storage import Storage, StorageUnavailable, VerificationFailed, verify
from recorder.workfiles import KEPT_ORIGINAL, WorkFiles, seal_file


class RetentionTerms(Protocol):
    """When a stored recording's term ends (recorder.retention.RetentionPolicy is one)."""

    def retention_until(
        self, category: str, started_at: datetime, ended_at: datetime | None = None
    ) -> datetime: ...


@dataclass(frozen=True)
class SettingsRetention:
    """The settings' terms, for a recorder built without a retention file."""

    settings: RecorderSettings

    def retention_until(
        self, category: str, started_at: datetime, ended_at: datetime | None = None
    ) -> datetime:
        days = self.settings.retention_days_for(category)
        return (ended_at or started_at) + timedelta(days=days)


__all__ = [
    "KEPT_ORIGINAL",
    "CallInfo",
    "Recorder",
    "RetentionTerms",
    "SettingsRetention",
]

log = logging.getLogger("recorder.pipeline")


# --- the pipeline ---------------------------------------------------------------------------


class MissingInput(Exception):
    """A step's input file is gone; the row is rewound to a step that can recreate it."""


class Recorder:
    """Moves every finished spool file through the pipeline; `run` is the worker's main loop."""

    def __init__(
        self,
        settings: RecorderSettings,
        store: RecordingStore,
        storage: Storage,
        key_ring: KeyRing,
        retention: RetentionTerms | None = None,
    ) -> None:
        self.settings = settings
        # The worker passes the policy of dialplans/retention.yaml: one source of truth for
        # how long a category is kept, shared with the purge job.
        self.retention = retention or SettingsRetention(settings)
        self.store = store
        self.storage = storage
        self.key_ring = key_ring
        self.spool_dir = Path(settings.spool_dir)
        self.work_dir = Path(settings.work_dir)
        self.files = WorkFiles(self.spool_dir, self.work_dir, settings.s3_prefix)
        self.registrar = Registrar(store, self.spool_dir, settings.format)
        self.storage_alarm = Alarm("recorder_storage", metrics.STORAGE_ALARM)
        self.spool_alarm = Alarm("recorder_spool_space", metrics.SPOOL_ALARM)
        self.backoff = Backoff(
            settings.retry_initial, settings.retry_max, settings.storage_alarm_after,
            self.storage_alarm,
        )  # fmt: skip
        self._encoder = encoder_threads(settings.workers)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()
        self._notified: dict[str, CallInfo] = {}
        # rows just registered, so the worker starts without reading them again; a stale one is
        # harmless: the first step only needs the call id and each step is a compare-and-set
        self._registered: dict[str, RecordedCall] = {}
        self._failures: dict[str, int] = {}
        self._warned_names: set[str] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        # each step returns the row it advanced (None: not advanced by it, read it again). A
        # recording takes two steps, spooled -> encrypted -> verified; `transcoded` and `stored`
        # are only resumed (rows an older version left there, a rewind)
        self._steps: dict[State, Callable[[RecordedCall], Awaitable[RecordedCall | None]]] = {
            State.SPOOLED: self._encode_and_encrypt,
            State.TRANSCODED: self._encrypt,
            State.ENCRYPTED: self._store,
            State.STORED: self._verify,
        }

    # -- entry points --------------------------------------------------------------------

    def prepare_directories(self) -> None:
        private_dir(self.spool_dir, SPOOL_DIR_MODE)
        private_dir(self.work_dir)

    async def run(self, stop: asyncio.Event) -> None:
        """Recover, then scan the spool every `scan_interval` until `stop` is set."""
        self.prepare_directories()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.workers)]
        try:
            await self.recover()
            while not stop.is_set():
                await self.scan()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.scan_interval)
        finally:
            for timer in self._timers:
                timer.cancel()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def run_until_idle(self) -> None:
        """One recovery and scan, then process until nothing is queued (tests, `--once`)."""
        self.prepare_directories()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.settings.workers)]
        try:
            await self.recover()
            await self.scan()
            await self._queue.join()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def finished(self, call_id: str, info: CallInfo | None = None) -> None:
        """Asterisk says this call's recording is complete: register it and queue it after
        `settle_seconds` (MixMonitor closes the file just after the event)."""
        if not valid_call_id(call_id):
            log.warning("ignoring finished recording with unusable call id %r", call_id)
            return
        source = spool_path(self.spool_dir, call_id)
        if not source.is_file() or source.is_symlink():
            return  # a channel not recorded here (AMI reports every hang-up), or already done
        self._notified[call_id] = info or CallInfo()
        await self._register(call_id)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.settings.settle_seconds, self._enqueue, call_id)
        self._timers.add(timer)

    async def recover(self) -> None:
        """Queue every row the pipeline had not finished (after a crash or a restart), and
        every spool file that already has a row (finished, but killed before cleaning up)."""
        for row in await self.store.unfinished(limit=100_000):
            self._enqueue(row.call_id)
        spooled = []
        for entry in os.scandir(self.spool_dir):
            call_id = entry.name.removesuffix(SPOOL_SUFFIX)
            if call_id != entry.name and valid_call_id(call_id) and call_id not in self._pending:
                spooled.append(call_id)
        for call_id in await self.store.registered(spooled):  # one query, not one per file
            self._enqueue(call_id)

    async def scan(self) -> None:
        """Check free space, then queue finished spool files not yet in the pipeline."""
        check_spool_space(self.spool_dir, self.settings, self.spool_alarm)
        now = time.time()
        found: dict[str, CallInfo] = {}
        for entry in os.scandir(self.spool_dir):
            if not entry.name.endswith(SPOOL_SUFFIX) or entry.name.startswith("."):
                continue
            if not entry.is_file(follow_symlinks=False):  # MixMonitor writes regular files
                self._warn_name(entry.name)
                continue
            call_id = entry.name[: -len(SPOOL_SUFFIX)]
            if call_id in self._pending:
                continue
            if not valid_call_id(call_id):
                self._warn_name(entry.name)
                continue
            idle = now - entry.stat().st_mtime >= self.settings.idle_seconds
            if idle or call_id in self._notified:
                found[call_id] = self._notified.get(call_id) or CallInfo()
        # all found at once in one transaction: a short call's registration costs a row, not
        # a commit; one that cannot be registered stays in the spool for the next scan
        done = await self.registrar.register_many(found)
        self._keep_registered(done)
        for call_id in done:
            self._enqueue(call_id)

    # -- the worker ------------------------------------------------------------------------

    def _enqueue(self, call_id: str) -> None:
        if call_id not in self._pending:
            self._pending.add(call_id)
            self._queue.put_nowait(call_id)

    async def _worker(self) -> None:
        while True:
            call_id = await self._queue.get()
            try:
                delay = await self._attempt(call_id)
                if delay is None:
                    self._pending.discard(call_id)
                else:
                    await asyncio.sleep(delay)
                    self._queue.put_nowait(call_id)  # stays in _pending
            finally:
                self._queue.task_done()

    async def _attempt(self, call_id: str) -> float | None:
        """Process one recording; None when done, else seconds to wait before retrying."""
        with bind_call(call_id):
            try:
                await self.process(call_id)
            except StorageUnavailable as error:
                delay = self.backoff.failed(str(error), len(self._pending))
                log.warning("storage unavailable, retrying in %.1f s: %s", delay, error)
                await self._note_failure(call_id, f"storage: {error}")
                return delay
            except Exception as error:
                failures = self._failures.get(call_id, 0) + 1
                self._failures[call_id] = failures
                backoff = self.settings.retry_initial * 2.0 ** min(failures, 30)
                delay = float(min(self.settings.retry_max, backoff))
                log.exception("recording step failed, retrying in %.1f s", delay)
                await self._note_failure(call_id, f"{type(error).__name__}: {error}")
                return delay
        self._failures.pop(call_id, None)
        return None

    async def process(self, call_id: str) -> None:
        """Run the remaining steps of one recording, each committed before the next."""
        row = self._registered.pop(call_id, None) or await self.store.get(call_id)
        while row is not None:
            state = State(row.state)
            if state in (State.VERIFIED, State.PURGED):
                self.files.clean_up(row)
                self._notified.pop(call_id, None)
                return
            advanced: RecordedCall | None = None
            try:
                advanced = await self._steps[state](row)
            except MissingInput as missing:
                await self._rewind(row, str(missing))
            row = advanced if advanced is not None else await self.store.get(call_id)

    # -- steps ---------------------------------------------------------------------------

    async def _encode_and_encrypt(self, row: RecordedCall) -> RecordedCall | None:
        """Encode the spool file into a scratch file, encrypt that, and commit both in one row
        update (spooled -> encrypted). Until that update commits the spool file is still there,
        so a worker killed in between simply does the step again (a new data key, the same
        object key): a `transcoded` row would only save that encoding after a crash, for a
        transaction and an fsync on every recording. Only the ciphertext must survive a crash,
        so the scratch audio is not fsynced and goes as soon as it is encrypted."""
        source = spool_path(self.spool_dir, row.call_id)
        if not source.exists():
            metrics.FAILURES.labels("transcode").inc()
            raise FileNotFoundError(f"spool file {source.name} is missing; recording lost")
        format = self.settings.format
        audio = self.files.audio_path(row.call_id, format)
        audio = audio.with_name(audio.name + ".part")  # never taken for a finished transcode
        started = time.perf_counter()
        duration: float | None
        failure = None
        try:
            # CPU-bound; the codec releases the GIL, so the event loop runs on meanwhile
            duration = await asyncio.get_running_loop().run_in_executor(
                self._encoder, partial(encode_file, source, audio, format, durable=False)
            )
        except TranscodeFailed as error:
            # keep the evidence: the original bytes are encrypted and stored instead, and the
            # row says why (the spool file stays until that copy is verified in storage)
            log.error("transcoding failed, storing the original file: %s", error)
            metrics.FAILURES.labels("transcode").inc()
            format, duration, audio = KEPT_ORIGINAL, wav_duration(source), source
            failure = f"transcode: {error}; original file kept"
        metrics.STAGE_SECONDS.labels("transcode").observe(time.perf_counter() - started)
        try:
            return await self._seal(
                row, audio, State.SPOOLED, format=format, duration_seconds=duration,
                last_error=failure,
            )  # fmt: skip
        finally:
            if audio != source:
                audio.unlink(missing_ok=True)

    async def _encrypt(self, row: RecordedCall) -> RecordedCall | None:
        """Encrypt the durable transcoded file of a `transcoded` row."""
        source = self.files.audio_path(row.call_id, row.format)
        if not source.exists():
            raise MissingInput(f"transcoded file {source.name} is missing")
        return await self._seal(row, source, State.TRANSCODED, format=row.format)

    async def _seal(
        self, row: RecordedCall, audio: Path, expected: State, *, format: str, **values: object
    ) -> RecordedCall | None:
        """Encrypt `audio` under a new data key into the work file and move the row from
        `expected` to `encrypted` with the key and the object's name."""
        target = self.files.cipher_path(row.call_id)
        sealing = target.with_name(target.name + ".part")
        started = time.perf_counter()
        data_key, wrapped = self.key_ring.new_data_key(row.call_id)
        summary = await asyncio.to_thread(
            seal_file, data_key, audio, sealing, self.settings.chunk_size
        )
        metrics.STAGE_SECONDS.labels("encrypt").observe(time.perf_counter() - started)
        # the wrapped key is committed before any ciphertext leaves this machine
        advanced = await self.store.advance(
            row.call_id, expected, State.ENCRYPTED, format=format,
            key_id=wrapped.key_id, key_version=wrapped.key_version, wrapped_key=wrapped.wrapped,
            plain_size=summary.plain_size, plain_sha256=summary.plain_sha256,
            cipher_size=summary.cipher_size, cipher_sha256=summary.cipher_sha256,
            storage_backend=self.storage.name,
            storage_key=self.files.object_key(row.call_id, format, row.started_at), **values,
        )  # fmt: skip
        # Named as the row's ciphertext only once the row holds its key: a step run on a stale
        # row (its compare-and-set fails) must not replace the file a committed row describes.
        # Should the rename not survive a crash, the missing file rewinds the row to `spooled`.
        if advanced is None:
            sealing.unlink(missing_ok=True)
        else:
            os.replace(sealing, target)
        return advanced

    async def _store(self, row: RecordedCall) -> RecordedCall | None:
        """Upload the ciphertext, verify it, and move the row from `encrypted` to `verified`
        in one update. A worker killed between the upload and that update uploads again on
        restart, which replaces the object (its key is the call's): a `stored` row would only
        save that upload after a crash, for a transaction on every recording."""
        source = self.files.cipher_path(row.call_id)
        if not source.exists() or row.storage_key is None or row.cipher_sha256 is None:
            raise MissingInput(f"encrypted file {source.name} is missing")
        started = time.perf_counter()
        log.info("uploading %s (%d bytes)", row.storage_key, row.cipher_size or 0)
        await self.storage.put(row.storage_key, source, row.cipher_sha256)
        self.backoff.succeeded()
        metrics.STAGE_SECONDS.labels("upload").observe(time.perf_counter() - started)
        try:
            await self._check_stored(row)
        except VerificationFailed as error:
            # the row stays `encrypted`: the worker uploads again after its back-off
            metrics.FAILURES.labels("verify").inc()
            log.error("stored object failed verification, uploading again: %s", error)
            raise
        return await self._mark_verified(row, State.ENCRYPTED)

    async def _verify(self, row: RecordedCall) -> RecordedCall | None:
        """Verify the object of a `stored` row; upload again if it differs."""
        try:
            await self._check_stored(row)
        except VerificationFailed as error:
            metrics.FAILURES.labels("verify").inc()
            log.error("stored object failed verification, uploading again: %s", error)
            return await self.store.advance(row.call_id, State.STORED, State.ENCRYPTED)
        return await self._mark_verified(row, State.STORED)

    async def _check_stored(self, row: RecordedCall) -> None:
        if row.storage_key is None or row.cipher_size is None or row.cipher_sha256 is None:
            raise MissingInput("stored row lacks its object key or checksum")
        started = time.perf_counter()
        await verify(self.storage, row.storage_key, row.cipher_size, row.cipher_sha256)
        self.backoff.succeeded()
        metrics.STAGE_SECONDS.labels("verify").observe(time.perf_counter() - started)

    async def _mark_verified(self, row: RecordedCall, expected: State) -> RecordedCall | None:
        retention_until = self.retention.retention_until(
            row.retention_category, row.started_at, row.ended_at
        )
        verified = await self.store.advance(
            row.call_id, expected, State.VERIFIED, retention_until=retention_until
        )
        if verified is not None:
            metrics.RECORDINGS.labels(
                "kept_original" if verified.format == KEPT_ORIGINAL else "verified"
            ).inc()
            log.info("recording stored and verified as %s", row.storage_key)
        return verified

    async def _rewind(self, row: RecordedCall, reason: str) -> None:
        """Go back to the latest step whose input still exists (work dir lost, etc.)."""
        state = State(row.state)
        if state is State.SPOOLED:  # pragma: no cover - SPOOLED raises FileNotFoundError
            raise FileNotFoundError(reason)
        audio_ok = self.files.audio_path(row.call_id, row.format).exists()
        target = State.TRANSCODED if audio_ok and state is not State.TRANSCODED else State.SPOOLED
        log.warning("%s: going back from %s to %s", reason, state.value, target.value)
        await self.store.advance(row.call_id, state, target)

    # -- helpers -------------------------------------------------------------------------

    async def _register(self, call_id: str) -> None:
        registered = await self.registrar.register(
            call_id, self._notified.get(call_id) or CallInfo()
        )
        self._keep_registered({call_id: registered})

    def _keep_registered(self, done: dict[str, Registered]) -> None:
        for call_id, registered in done.items():
            if registered.existed:  # may have changed since: the worker reads it afresh
                self._registered.pop(call_id, None)
            else:
                self._registered[call_id] = registered.row

    async def _note_failure(self, call_id: str, reason: str) -> None:
        try:
            await self.store.note_failure(call_id, reason)
        except Exception:  # the database itself may be what failed
            log.warning("could not record the failure in the database", exc_info=True)

    def _warn_name(self, name: str) -> None:
        if name not in self._warned_names:
            self._warned_names.add(name)
            log.error("spool entry %r is not a <call id>.wav file; left in place", name)
