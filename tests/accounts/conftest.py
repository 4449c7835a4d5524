"""A site for the accounts' tests: the pages and API behind the access middleware, the real
accounts over a migrated database, a clock the test moves, browsers from chosen addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from databases import empty_database
from staff import START, Site, accounts_app, staff_kit

from hotline.clock import ManualClock


@pytest.fixture(params=["sqlite"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def site(tmp_path: Path, db_kind: str) -> AsyncIterator[Site]:
    clock = ManualClock(START)
    async with (
        empty_database(db_kind, tmp_path / "accounts.sqlite3", "accounts") as url,
        staff_kit(url, tmp_path, clock=clock) as kit,
        TestClient(TestServer(accounts_app(kit))) as client,
    ):
        yield Site(kit, clock, client)
