"""The callbacks table: every state change is a compare-and-set on ``state``.

`CallbackStore.claim` is the at-most-once step (one row, one winner, whatever number of nodes
race for it); a claim carries a lease (``lease_until``) its owner renews (`renew`) and any node
takes back once it ran out (`take_back_expired`); a restarted node gives back what it held
(`release_node`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, case, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from routing.callbacks.live_legs import UNCERTAIN
from routing.callbacks.model import ACTIVE, HELD, Callback
from routing.callbacks.model import CallbackState as S

__all__ = ["CallbackStore"]


class CallbackStore:
    """Rows of the callbacks table; every state change is a compare-and-set on ``state``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def add(self, **values: Any) -> Callback:
        row = Callback(**values)
        async with self._sessions.begin() as session:
            session.add(row)
        return row

    async def get(self, callback_id: int) -> Callback | None:
        async with self._sessions() as session:
            return await session.get(Callback, callback_id)

    async def active_for(self, phone: str, group_id: str) -> Callback | None:
        stmt = select(Callback).where(
            Callback.phone == phone, Callback.group_id == group_id, Callback.state.in_(ACTIVE)
        )
        async with self._sessions() as session:
            return (await session.execute(stmt.limit(1))).scalar_one_or_none()

    async def candidates(self, now: datetime, limit: int) -> list[Callback]:
        """Pending callbacks due now, in queue order (priority, then first arrival)."""
        stmt = (
            select(Callback)
            .where(
                Callback.state == S.PENDING.value,
                Callback.next_attempt_at <= now,
                (Callback.window_start.is_(None)) | (Callback.window_start <= now),
            )
            .order_by(Callback.priority.desc(), Callback.arrived_at, Callback.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def move(
        self,
        callback_id: int,
        expect: tuple[str, ...],
        state: str,
        now: datetime,
        *,
        owner: str | None = None,
        **values: Any,
    ) -> bool:
        """Set `state` (and `values`) only if the row is in one of `expect` (and, with `owner`,
        still held by that node); True if it was."""
        stmt = update(Callback).where(Callback.id == callback_id, Callback.state.in_(expect))
        if owner is not None:
            stmt = stmt.where(Callback.node == owner)
        stmt = stmt.values(state=state, updated_at=now, **values)
        return bool(await self._changed(stmt))

    async def claim(
        self, callback_id: int, node: str, now: datetime, lease: timedelta = timedelta(minutes=1)
    ) -> bool:
        """The at-most-once step: exactly one node moves a pending row to reserved."""
        return await self.move(
            callback_id,
            (S.PENDING.value,),
            S.RESERVED.value,
            now,
            node=node,
            lease_until=now + lease,
        )

    async def renew(
        self, callback_ids: list[int], node: str, now: datetime, lease: timedelta
    ) -> int:
        """The owner is still working on these: push their leases forward."""
        if not callback_ids:
            return 0
        stmt = (
            update(Callback)
            .where(
                Callback.id.in_(callback_ids),
                Callback.node == node,
                Callback.state.in_(HELD),
            )
            .values(lease_until=now + lease)
        )
        return await self._changed(stmt)

    async def take_back_expired(self, now: datetime) -> int:
        """Rows whose owner stopped renewing (a dead node) go back to pending, attempts kept.
        One it was dialling may have a call still up: it is marked uncertain, so the next
        attempt first makes sure no leg of it is alive (`routing.callbacks.live_legs`)."""
        stmt = (
            update(Callback)
            .where(Callback.state.in_(HELD), Callback.lease_until < now)
            .values(
                state=S.PENDING.value,
                node=None,
                operator=None,
                lease_until=None,
                last_result=_dialling_or(f"{UNCERTAIN}: node lost while dialling", "node_lost"),
                updated_at=now,
            )
        )
        return await self._changed(stmt)

    async def expire(self, now: datetime) -> int:
        stmt = (
            update(Callback)
            .where(Callback.state == S.PENDING.value, Callback.window_end <= now)
            .values(state=S.EXPIRED.value, updated_at=now, last_result="window_over")
        )
        return await self._changed(stmt)

    async def release_node(self, node: str, now: datetime) -> int:
        """A restarted node gives back what it held: its attempts died with the process (the
        calls it was dialling may not have: those are marked uncertain, as above)."""
        restarted = f"{UNCERTAIN}: node restarted while dialling"
        stmt = (
            update(Callback)
            .where(Callback.node == node, Callback.state.in_(HELD))
            .values(
                state=S.PENDING.value,
                node=None,
                operator=None,
                lease_until=None,
                last_result=_dialling_or(restarted, Callback.last_result),
                updated_at=now,
            )
        )
        return await self._changed(stmt)

    async def _changed(self, stmt: Update) -> int:
        """Run an UPDATE in its own transaction; how many rows it changed."""
        async with self._sessions.begin() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0))


def _dialling_or(if_dialling: str, otherwise: Any) -> Any:
    """SQL for a row's new last_result: `if_dialling` for a row that was being dialled (its
    state before the UPDATE), else `otherwise`."""
    return case((Callback.state == S.DIALING.value, if_dialling), else_=otherwise)
