"""Databases for tests: an empty SQLite file, or a throwaway schema on the real PostgreSQL, and
an engine on one migrated to head, or a database brought to an older revision (to test a
migration on the rows of before).

The PostgreSQL one is a role and a schema of the same name (PostgreSQL looks in a schema named
after the user first, so the tables land there with no special code), dropped afterwards. The
server at 127.0.0.1:5432 must be running: a test that needs it fails, never skips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.store.db import create_engine
from hotline.store.migrate import alembic_config, upgrade

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL_TEMPLATE = "postgresql+asyncpg://{user}@127.0.0.1:5432/test"
# The kinds of database a fixture parametrised with these runs each test on.
DATABASE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def pg_admin() -> asyncpg.Connection:
    """Connect as the superuser, failing the test loudly if PostgreSQL is not running."""
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_DSN} ({type(exc).__name__}: {exc}). "
            "These tests need the real service; start it (CI does) instead of skipping.",
            pytrace=False,
        )


@asynccontextmanager
async def isolated_postgres(prefix: str) -> AsyncIterator[str]:
    """The URL of an empty schema owned by a new role, both dropped on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await pg_admin()
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN')
        await admin.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
    except BaseException:
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        raise
    finally:
        await admin.close()
    try:
        yield PG_URL_TEMPLATE.format(user=name)
    finally:
        await _drop(name)


async def _drop(name: str) -> None:
    admin = await pg_admin()
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
        )
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await admin.close()


@asynccontextmanager
async def empty_database(kind: str, sqlite_file: Path, prefix: str) -> AsyncIterator[str]:
    """The URL of an empty database of `kind` (one of DATABASE_KINDS): the SQLite file
    `sqlite_file`, not created yet, or an `isolated_postgres` schema named after `prefix`."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{sqlite_file}"
        return
    async with isolated_postgres(prefix) as url:
        yield url


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at `url` migrated to head (the way production gets its
    schema), disposed of on the way out."""
    await upgrade(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


REDIS_URL = "redis://127.0.0.1:6379/0"


async def delete_redis_prefix(prefix: str) -> None:
    """Delete every key a test wrote under its own `prefix` on the real Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def migrate_to(url: str, revision: str) -> None:
    """Bring the database at `url` to `revision` (not head): the schema a migration test fills
    with rows of before, then upgrades."""

    def run(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()
