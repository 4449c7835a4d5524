"""The reporting tests' fixtures: a migrated PostgreSQL reached through a relay the test can
cut (`fact_kit.CuttableRelay`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from databases import isolated_postgres, migrated_engine
from fact_kit import CuttableRelay
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.store.db import create_engine


@pytest.fixture
async def relayed() -> AsyncIterator[tuple[CuttableRelay, AsyncEngine]]:
    """A migrated PostgreSQL database reached through a relay the test can cut."""
    relay = CuttableRelay()
    await relay.open()
    async with isolated_postgres("batches") as url, migrated_engine(url):
        engine = create_engine(url.replace(":5432/", f":{relay.port}/"))
        try:
            yield relay, engine
        finally:
            relay.cut()
            await engine.dispose()
