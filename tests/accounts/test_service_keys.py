"""Service keys: scoped, expiring, revocable, last use kept, every refusal audited; and the
legacy token file still admitted, with a warning."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from databases import DATABASE_KINDS
from sqlalchemy import text
from staff import ADMIN_CLI, START, Site, accounts_app, staff_kit

from hotline.accounts.keys import parse_lifetime
from hotline.accounts.records import AccountError
from hotline.audit import AuditLog
from hotline.auth import Actor, TokenBook
from hotline.clock import ManualClock


async def call(site: Site, key: str, method: str = "GET", path: str = "/api/whoami") -> int:
    headers = {"Authorization": f"Bearer {key}"}
    async with site.client.request(method, path, headers=headers) as response:
        return response.status


@pytest.mark.parametrize("db_kind", DATABASE_KINDS)
async def test_a_key_acts_as_its_service_within_its_scopes(site: Site) -> None:
    key, record = await site.kit.keys.add(
        "portal", ["contacts:read"], timedelta(days=90), by=ADMIN_CLI
    )
    headers = {"Authorization": f"Bearer {key}"}
    async with site.client.get("/api/whoami", headers=headers) as response:
        assert response.status == 200
        assert await response.json() == {
            "user_id": "service:portal",
            "role": "",
            "kind": "service",
            "scopes": ["contacts:read"],
        }
    # a route needing another scope; no CSRF echo needed for a bearer key
    assert await call(site, key, "POST", "/api/callbacks") == 403
    crm, _ = await site.kit.keys.add("crm", ["callbacks:create"], timedelta(days=1), by=ADMIN_CLI)
    assert await call(site, crm, "POST", "/api/callbacks") == 200
    listed = {k.name: k for k in await site.kit.keys.list_keys()}
    assert listed["portal"].last_used_at is not None and listed["portal"].id == record.id


async def test_only_the_keys_hash_is_stored(site: Site) -> None:
    key, _ = await site.kit.keys.add("portal", ["contacts:read"], timedelta(days=9), by=ADMIN_CLI)
    engine = site.kit.engine
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM service_keys"))).all()
    assert key not in repr(rows) and key[4:] not in repr(rows)


async def test_an_expired_key_is_refused_and_audited(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = await site.kit.keys.add("mobile", ["contacts:read"], timedelta(days=90), by=ADMIN_CLI)
    site.clock.advance(timedelta(days=80).total_seconds())
    assert await call(site, key) == 200
    assert any(getattr(r, "security_category", "") == "key_expiring" for r in caplog.records)
    site.clock.advance(timedelta(days=10).total_seconds())
    assert await call(site, key) == 401
    audit = AuditLog(site.kit.engine)
    refused = [e for e in await audit.entries() if e.action == "apikey.refused"]
    assert [(e.user_id, e.outcome, e.detail_data["state"]) for e in refused] == [
        ("service:mobile", "refused", "expired")
    ]


async def test_a_revoked_key_is_refused_at_once(site: Site) -> None:
    key, _ = await site.kit.keys.add("crm", ["contacts:read"], timedelta(days=90), by=ADMIN_CLI)
    assert await call(site, key) == 200
    assert await site.kit.keys.revoke("crm", by=ADMIN_CLI) == 1
    assert await call(site, key) == 401
    assert await site.kit.keys.revoke("crm", by=ADMIN_CLI) == 0
    audit = AuditLog(site.kit.engine)
    actions = [(e.action, e.user_id) for e in await audit.entries()]
    assert ("apikey.add", "cli:tester") in actions and ("apikey.revoke", "cli:tester") in actions
    assert ("apikey.refused", "service:crm") in actions


async def test_unknown_or_malformed_keys_let_nobody_in(site: Site) -> None:
    key, _ = await site.kit.keys.add("crm", ["contacts:read"], timedelta(days=9), by=ADMIN_CLI)
    for presented in (key[:-1] + ("A" if key[-1] != "A" else "B"), "hlk_", "hlk_" + "x" * 5000):
        assert await call(site, presented) == 401


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("Portal!", ["contacts:read"]), ("portal", []), ("portal", ["everything"]), ("", ["a:b"])],
)
async def test_bad_key_requests_are_refused_and_create_nothing(
    site: Site, name: str, scopes: list[str]
) -> None:
    with pytest.raises(AccountError):
        await site.kit.keys.add(name, scopes, timedelta(days=1), by=ADMIN_CLI)
    assert await site.kit.keys.list_keys() == []


def test_lifetimes() -> None:
    assert parse_lifetime("90d") == timedelta(days=90)
    assert parse_lifetime("12h") == timedelta(hours=12)
    for bad in ("0d", "forever", "9999d", "-1d", "1w", ""):
        with pytest.raises(ValueError):
            parse_lifetime(bad)


async def test_legacy_token_file_still_works_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = TokenBook.of({"old-token": Actor("ivanova", "quality_auditor")})
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}"
    async with (
        staff_kit(url, tmp_path, clock=ManualClock(START), legacy=legacy) as kit,
        TestClient(TestServer(accounts_app(kit))) as client,
    ):
        caplog.set_level(logging.WARNING, logger="hotline.accounts.lookup")
        for _ in range(3):
            async with client.get(
                "/api/whoami", headers={"Authorization": "Bearer old-token"}
            ) as response:
                assert response.status == 200
                assert (await response.json())["user_id"] == "ivanova"
        async with client.get("/api/whoami", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
    warnings = [r for r in caplog.records if "legacy token file" in r.getMessage()]
    assert len(warnings) == 1
