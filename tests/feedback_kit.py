"""The workspace's feedback form, attachments and app API on a migrated database, behind the
real access middleware with fixed bearer tokens; ClamAV with the test-only EICAR signature
(tests/data/clamav/README.md)."""

from __future__ import annotations

import base64
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine

from hotline.access import access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import ManualClock
from workspace.part import WorkspaceService
from workspace.settings import WorkspaceSettings

SIGNATURES = Path(__file__).resolve().parent / "data" / "clamav" / "eicar-test.hdb"
REPOSITORY = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0
# The anti-virus test file (eicar.org), assembled here so no scanner on a developer's machine
# quarantines the test suite itself.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    + "Справка о доходах Иванова".encode()
)
PEOPLE = {
    "tok-ivanova": Actor("ivanova", "operator"),
    "tok-form": Actor("ivanova", "operator", csrf_token="form-secret"),
    "tok-portal": Actor("portal", "", kind="service", scopes=frozenset({"feedback:create"})),
    "tok-app": Actor("app", "", kind="service", scopes=frozenset({"app:intents", "app:contacts"})),
    "tok-other": Actor("other", "", kind="service", scopes=frozenset({"callbacks:create"})),
}

needs_clamav = pytest.mark.skipif(
    shutil.which("clamscan") is None, reason="ClamAV (Debian's clamav) is not installed"
)


async def lookup(request: web.Request) -> Actor | None:
    return PEOPLE.get(request.headers.get("Authorization", "").removeprefix("Bearer "))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


@dataclass
class Office:
    client: TestClient
    service: WorkspaceService
    clock: ManualClock
    settings: WorkspaceSettings
    audit: AuditLog

    def stored_files(self) -> list[Path]:
        root = self.settings.attachments_dir
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def workspace_settings(tmp_path: Path, **changes: object) -> WorkspaceSettings:
    values: dict[str, object] = {
        "attachments_dir": tmp_path / "attachments",
        "attachments_keys_dir": tmp_path / "keys",
        "clamav_database": SIGNATURES,
        "max_attachment_bytes": 64 * 1024,
        "retention_interval_seconds": 0,  # the tests run the job by hand
    }
    values.update(changes)
    return WorkspaceSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def office(
    tmp_path: Path, url: str | None = None, **changes: object
) -> AsyncIterator[Office]:
    settings = workspace_settings(tmp_path, **changes)
    clock = ManualClock(START)
    async with migrated_engine(url or f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}") as engine:
        service = WorkspaceService.build(
            engine,
            settings,
            retention_file=str(REPOSITORY / "dialplans" / "retention.yaml"),
            clock=clock,
        )
        await service.start()
        app = web.Application(
            middlewares=[access_middleware(lookup)], client_max_size=4 * 1024 * 1024
        )
        service.install(app)
        async with TestClient(TestServer(app)) as client:
            yield Office(client, service, clock, settings, AuditLog(engine))
        await service.stop()
