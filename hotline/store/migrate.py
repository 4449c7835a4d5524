"""Run the call-log migrations from code, the only way the schema is created or changed.

The Alembic config is built here rather than read from an alembic.ini, and the migrations
folder is found next to this module, so it works the same from a checkout, a wheel or a
container with any working directory.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from hotline.store.db import create_engine

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "lock_migrations",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic Config for `url` pointing at the packaged migrations folder.

    The URL travels in `attributes`, not in `sqlalchemy.url`, so a password containing `%`
    is not mangled by the ini-style interpolation of main options.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def head_revision() -> str | None:
    """The newest revision(s) shipped with this code, comma-separated and sorted (None only if
    there are no migrations). Each part of the product (call log, ACD, recorder) keeps its own
    branch of migrations rooted at 0001, so there may be several heads."""
    heads = ScriptDirectory.from_config(alembic_config("")).get_heads()
    return ",".join(sorted(heads)) or None


async def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema; a no-op if it is already there.

    Alembic's command API is synchronous, so it runs inside `run_sync` on a connection we
    open here and share with env.py, inside one transaction where the database allows it.
    """
    config = alembic_config(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_head, config)
    finally:
        await engine.dispose()


def lock_migrations(connection: Connection) -> None:
    """Make concurrent upgrades of one database take turns, so the migrations run once
    whichever node starts first: the others wait, then find the schema at head (a rolling
    upgrade or a cold start of several controllers). PostgreSQL: an advisory lock held until
    the migration's transaction ends, one per schema (the tables live in the current schema).
    SQLite: the database's write lock, taken before Alembic reads its version (a second
    process waits on the busy timeout). Other databases: no lock."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        key = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.hotline-migrations'))"
        connection.execute(text(key))
    elif dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade_head(connection: Connection, config: Config) -> None:
    """Hand the open connection to env.py and run `alembic upgrade heads` (every branch),
    holding the migration lock (env.py takes it)."""
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at; None for a database never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_read_revision)
    finally:
        await engine.dispose()


def _read_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None
