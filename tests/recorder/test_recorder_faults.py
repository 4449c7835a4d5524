"""Real faults: a worker process killed mid-upload, SeaweedFS stopped mid-run, a small
filesystem filling up. Nothing may be lost or duplicated, and the alarms must fire."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from recorder import metrics
from recorder.keys import KeyRing, MasterKeyStore, decrypt_stream, wrapped_key_of
from recorder.models import RecordingStore, State
from recorder.pipeline import CallInfo, Recorder
from recorder.settings import RecorderSettings
from recorder.storage import LocalStorage

if TYPE_CHECKING:
    from seaweed import Seaweed

WORKER = """
import asyncio, json, logging, sys
from pathlib import Path
from recorder.cli import run_worker
from recorder.settings import RecorderSettings
config = json.loads(sys.argv[1])
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
settings = RecorderSettings(
    spool_dir=Path(config["spool"]), work_dir=Path(config["work"]), keys_dir=Path(config["keys"]),
    storage="s3", s3_endpoint=config["endpoint"], s3_bucket=config["bucket"], format="wav",
    idle_seconds=0.5, scan_interval=0.2, retry_initial=0.2, retry_max=1.0,
    spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
)
sys.exit(asyncio.run(run_worker(settings, config["db"])))
"""


@dataclass
class SlowProxy:
    """A TCP relay that slows uploads to `rate` bytes/s and counts what it relayed, so a test
    can kill the worker while an upload is really half-way through."""

    target_port: int
    rate: int
    uploaded: int = 0
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        tasks = {
            asyncio.create_task(self._pump(reader, up_writer, throttle=True)),
            asyncio.create_task(self._pump(up_reader, writer, throttle=False)),
        }
        self.tasks |= tasks
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        writer.close()
        up_writer.close()

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, throttle: bool
    ) -> None:
        while data := await source.read(8192):
            sink.write(data)
            await sink.drain()
            if throttle:
                self.uploaded += len(data)
                await asyncio.sleep(len(data) / self.rate)


async def _eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _start_worker(config: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(HOTLINE_RECORDER_S3_ACCESS_KEY="t", HOTLINE_RECORDER_S3_SECRET_KEY="t")
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(config)],
            env=env,
            stdout=sink,
            stderr=sink,
            cwd=Path(__file__).resolve().parents[2],  # the checkout, so `recorder` imports
        )


async def test_worker_killed_mid_upload_resumes_with_one_verified_object(
    tmp_path: Path, seaweed: Seaweed, sqlite_url: str, tone: Callable[[Path, float], Path]
) -> None:
    await upgrade(sqlite_url)
    MasterKeyStore(tmp_path / "keys").generate("recorder")
    spool = tmp_path / "spool"
    spool.mkdir()
    original = tone(spool / "1795563226.1.wav", 90.0)  # 1.4 MB: several seconds through the proxy
    os.utime(original, (time.time() - 5, time.time() - 5))
    async with seaweed.bucket() as s3:
        proxy = SlowProxy(seaweed.s3_port, rate=200_000)
        config = {
            "spool": str(spool),
            "work": str(tmp_path / "work"),
            "keys": str(tmp_path / "keys"),
            "bucket": s3.bucket,
            "db": sqlite_url,
            "endpoint": f"http://127.0.0.1:{await proxy.start()}",
        }
        log = tmp_path / "worker.log"
        worker = _start_worker(config, log)
        try:
            await _eventually(lambda: _true(proxy.uploaded > 300_000), 60, "the upload to start")
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
            await proxy.close()

        engine = create_engine(sqlite_url)
        store = RecordingStore(engine)
        try:
            row = await store.get("1795563226.1")
            assert row is not None and row.state == State.ENCRYPTED, log.read_text()[-2000:]
            assert row.cipher_size is not None and proxy.uploaded < row.cipher_size
            assert original.exists()

            config["endpoint"] = seaweed.endpoint  # restart, storage at full speed
            worker = _start_worker(config, log)
            try:
                await _eventually(
                    lambda: _state_is(store, "1795563226.1", State.VERIFIED), 60, "verification"
                )
                await _eventually(lambda: _true(not original.exists()), 10, "spool cleanup")
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=20) == 0
            finally:
                if worker.poll() is None:
                    worker.kill()
            row = await store.get("1795563226.1")
            assert row is not None and row.storage_key is not None
            assert await s3.list_keys() == [row.storage_key]
            blob = b"".join([chunk async for chunk in s3.read(row.storage_key)])
            ring = KeyRing(MasterKeyStore(tmp_path / "keys"), "recorder")
            plain = io.BytesIO()
            decrypt_stream(ring.unwrap(row.call_id, wrapped_key_of(row)), io.BytesIO(blob), plain)
            assert hashlib.sha256(plain.getvalue()).hexdigest() == row.plain_sha256
            assert plain.getvalue()[:4] == b"RIFF"
        finally:
            await engine.dispose()


async def _true(value: bool) -> bool:
    return value


async def _state_is(store: RecordingStore, call_id: str, state: State) -> bool:
    row = await store.get(call_id)
    return row is not None and row.state == state


async def test_seaweedfs_stopped_mid_run_alarms_then_catches_up(
    tmp_path: Path, seaweed: Seaweed, sqlite_url: str, key_ring: KeyRing,
    tone: Callable[[Path, float], Path], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    store = RecordingStore(engine)
    settings = RecorderSettings(
        spool_dir=tmp_path / "spool", work_dir=tmp_path / "work", storage="s3",
        scan_interval=0.1, settle_seconds=0.01, retry_initial=0.1, retry_max=0.5,
        storage_alarm_after=0.5, spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    stop = asyncio.Event()
    try:
        async with seaweed.bucket() as s3:
            recorder = Recorder(settings, store, s3, key_ring)
            recorder.prepare_directories()
            running = asyncio.create_task(recorder.run(stop))
            await _record(recorder, tone, "c-0")
            await _eventually(lambda: _state_is(store, "c-0", State.VERIFIED), 30, "c-0")

            await asyncio.to_thread(seaweed.stop, 0.0)  # a crash, not a shutdown
            with caplog.at_level(logging.ERROR, logger="recorder.pipeline"):
                for n in (1, 2, 3):
                    await _record(recorder, tone, f"c-{n}")
                await _eventually(lambda: _true(recorder.storage_alarm.active), 30, "the alarm")
            assert metrics.STORAGE_ALARM._value.get() == 1
            assert any("ALARM recorder_storage" in r.getMessage() for r in caplog.records)
            waiting = [await store.get(f"c-{n}") for n in (1, 2, 3)]
            assert all(row is not None and row.state != State.VERIFIED for row in waiting)
            assert any(row and row.last_error and "storage" in row.last_error for row in waiting)
            assert sorted(os.listdir(settings.spool_dir)) == ["c-1.wav", "c-2.wav", "c-3.wav"]

            started = time.monotonic()
            await asyncio.to_thread(seaweed.start)
            print(f"seaweed restart took {time.monotonic() - started:.1f} s")
            for n in (1, 2, 3):
                await _eventually(
                    lambda n=n: _state_is(store, f"c-{n}", State.VERIFIED), 60, f"c-{n}"
                )
            assert not recorder.storage_alarm.active
            assert metrics.STORAGE_ALARM._value.get() == 0
            stop.set()
            await running
            assert len(await s3.list_keys()) == 4
            assert not list(settings.spool_dir.iterdir())
    finally:
        stop.set()
        if seaweed.process is None:
            await asyncio.to_thread(seaweed.start)
        await engine.dispose()


async def _record(recorder: Recorder, tone: Callable[[Path, float], Path], call_id: str) -> None:
    tone(recorder.spool_dir / f"{call_id}.wav", 1.0)
    await recorder.finished(call_id, CallInfo(dialled_number="88001000000"))


@pytest.fixture
def small_spool(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a spool filesystem that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount_point = tmp_path / "spool"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                   check=True)  # fmt: skip
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_filling_spool_filesystem_raises_the_alarm_before_it_is_full(
    tmp_path: Path, small_spool: Path, sqlite_url: str, key_ring: KeyRing,
    tone: Callable[[Path, float], Path], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    settings = RecorderSettings(
        spool_dir=small_spool, work_dir=tmp_path / "work", local_dir=tmp_path / "store",
        settle_seconds=0.01, spool_alarm_free_bytes=700_000, spool_alarm_free_percent=0,
    )  # fmt: skip
    try:
        async with LocalStorage(settings.local_dir) as storage:
            recorder = Recorder(settings, RecordingStore(engine), storage, key_ring)
            recorder.prepare_directories()
            await recorder.scan()
            assert not recorder.spool_alarm.active
            calls = []
            with caplog.at_level(logging.ERROR, logger="recorder.pipeline"):
                for n in range(8):  # 20 s calls, 320 kB each, the way MixMonitor grows them
                    calls.append(f"c-{n}")
                    tone(small_spool / f"c-{n}.wav", 20.0)
                    await recorder.scan()
                    if recorder.spool_alarm.active:
                        break
            free = os.statvfs(small_spool).f_bavail * os.statvfs(small_spool).f_frsize
            assert recorder.spool_alarm.active and 0 < free < 700_000  # raised, not yet full
            assert metrics.SPOOL_ALARM._value.get() == 1
            assert any("ALARM recorder_spool_space" in r.getMessage() for r in caplog.records)

            for call_id in calls:
                await recorder.finished(call_id)
            await recorder.run_until_idle()
            await recorder.scan()
            assert not recorder.spool_alarm.active
            assert sorted(os.listdir(small_spool)) == []
            assert len(await storage.list_keys()) == len(calls)
    finally:
        await engine.dispose()
