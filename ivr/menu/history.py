"""Has this caller number called before? Read from the call log (``calls`` table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from hotline.store.db import CallRecord


class CallLogHistory:
    """`seen_before` over the call log; an empty or withheld caller id is never "seen"."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine)

    async def seen_before(self, caller_id: str, call_id: str) -> bool:
        if not caller_id.strip() or not any(c.isdigit() for c in caller_id):
            return False
        stmt = (
            select(CallRecord.id)
            .where(CallRecord.caller_id == caller_id, CallRecord.call_id != call_id)
            .limit(1)
        )
        async with self._sessions() as session:
            return (await session.execute(stmt)).first() is not None
