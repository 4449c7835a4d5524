"""The audit log's tests share: who reads recordings, entries to fill a log with, and tampering
as an insider would, with straight SQL around the append-only triggers (dropped on SQLite,
`session_replication_role = replica` as superuser on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from databases import PG_ADMIN_DSN
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor

AUDITOR = Actor("ivanova", "quality_auditor")
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


async def fill_audit(log: AuditLog, count: int, first: int = 0) -> None:
    """`count` plays by the AUDITOR, entry `first` onwards, a minute apart from START on."""
    for index in range(first, first + count):
        await log.record(
            AUDITOR,
            "play",
            recording_id=f"1732701600.{index}",
            source="10.0.0.5",
            outcome="ok",
            detail={"range": f"bytes={index}-"},
            at=START + timedelta(minutes=index),
        )


async def tamper_audit(engine: AsyncEngine, schema: str | None, *statements: str) -> None:
    """Run raw SQL around the append-only triggers, as a DBA or a file editor could: on SQLite
    (`schema` None) in `engine` with the triggers dropped, on PostgreSQL as the superuser in
    `schema` with the triggers off for the transaction."""
    if schema is None:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP TRIGGER IF EXISTS recording_audit_no_update")
            await connection.exec_driver_sql("DROP TRIGGER IF EXISTS recording_audit_no_delete")
            for statement in statements:
                await connection.exec_driver_sql(statement)
        return
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        async with admin.transaction():
            await admin.execute(f'SET LOCAL search_path TO "{schema}"')
            await admin.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await admin.execute(statement)
    finally:
        await admin.close()
