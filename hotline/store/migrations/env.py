"""Alembic environment for the call log, async-engine flavour.

Normally `hotline.store.migrate.upgrade()` drives it and hands over an open connection in
`config.attributes["connection"]` (Alembic's connection-sharing recipe), because we are already
inside an event loop there and cannot start another. Run from the `alembic` command line it
builds its own engine from `config.attributes["url"]` or the `sqlalchemy.url` option.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from hotline.store.db import Base, create_engine
from hotline.store.migrate import lock_migrations

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    """The database URL: set in code by migrate.py, or in an ini file for CLI use."""
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] or sqlalchemy.url")
    return str(url)


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the pending migrations on a synchronous view of an async connection, once: other
    nodes migrating the same database wait for this one (`lock_migrations`)."""
    lock_migrations(connection)
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    """CLI path: own engine, one connection, disposed at the end."""
    engine = create_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Use the connection migrate.py shared with us, or make our own when run from the CLI."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
