"""A throwaway schema on the real PostgreSQL for one benchmark run.

A role and a schema of the same name (PostgreSQL looks in a schema named after the user first,
so the tables land there with no special code), dropped afterwards together with any session
still using them. The benchmarks run as scripts and cannot import the tests' own helper
(tests/databases.py), which also fails a test loudly when PostgreSQL is down.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def throwaway_schema(admin_dsn: str = PG_ADMIN) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty schema owned by a new role, both dropped on the way out."""
    name = f"hotline_bench_{uuid.uuid4().hex[:12]}"
    await _as_admin(
        admin_dsn, f'CREATE ROLE "{name}" LOGIN', f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"'
    )
    try:
        yield f"postgresql+asyncpg://{name}@127.0.0.1:5432/test"
    finally:
        await _as_admin(
            admin_dsn,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'",
            f'DROP SCHEMA IF EXISTS "{name}" CASCADE',
            f'DROP ROLE IF EXISTS "{name}"',
        )


async def _as_admin(admin_dsn: str, *statements: str) -> None:
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()
