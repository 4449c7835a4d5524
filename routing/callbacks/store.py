"""The callbacks table: every state change is a compare-and-set on ``state``.

`CallbackStore.claim` is the at-most-once step (one row, one winner, whatever number of nodes
race for it); a claim carries a lease (``lease_until``) its owner renews (`renew`) and any node
takes back once it ran out (`take_back_expired`); a restarted node gives back what it held
(`release_node`).

`book` is how a callback is added: under one write lock for the whole table (PostgreSQL's
transaction-scoped advisory lock, SQLite's ``BEGIN IMMEDIATE``) it checks that the number
has no callback pending in any group and that every `Quota` (the rate limits) has room,
counting rows in the shared database, then inserts: controller nodes booking at the same
moment count together and cannot both take the last place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Update, case, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from routing.callbacks.live_legs import UNCERTAIN
from routing.callbacks.model import ACTIVE, HELD, Callback, new_public_id
from routing.callbacks.model import CallbackState as S

__all__ = ["BookingRefused", "CallbackStore", "Quota"]

# Arbitrary constant naming "callback bookings" among PostgreSQL advisory locks.
_PG_BOOKING_LOCK: Final = 0x43B0_0C11


@dataclass(frozen=True)
class Quota:
    """At most `limit` callbacks whose `column` is `value`, requested after `since` (with
    `api_only`, only those ordered through the API count)."""

    name: str  # for the log: phone_day, requester_minute...
    column: str  # phone | requested_by | group_id
    value: str
    since: datetime
    limit: int
    api_only: bool = False


class BookingRefused(Exception):
    """`book` did not add the callback: the number has one pending (`existing`), or the quota
    named `reason` is full."""

    def __init__(self, reason: str, existing: Callback | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.existing = existing


class CallbackStore:
    """Rows of the callbacks table; every state change is a compare-and-set on ``state``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def add(self, **values: Any) -> Callback:
        """Insert a row as given, no checks (tests, tools); requests go through `book`."""
        row = Callback(**{"public_id": new_public_id(), **values})
        async with self._sessions.begin() as session:
            session.add(row)
        return row

    async def book(self, values: dict[str, Any], quotas: Sequence[Quota]) -> Callback:
        """Add a callback if its number has none pending (in any group) and every quota has
        room; else raise `BookingRefused`. Atomic across nodes (see the module's text)."""
        values = {"public_id": new_public_id(), **values}
        async with self._engine.connect() as connection:
            await self._lock_bookings(connection)
            existing = (
                await connection.execute(
                    select(Callback.id).where(
                        Callback.phone == values["phone"], Callback.state.in_(ACTIVE)
                    )
                )
            ).first()
            if existing is not None:
                await connection.rollback()
                raise BookingRefused("active", await self.get(existing[0]))
            for quota in quotas:
                if await _count(connection, quota) >= quota.limit:
                    await connection.rollback()
                    raise BookingRefused(quota.name)
            await connection.execute(insert(Callback).values(**values))
            await connection.commit()
        booked = await self.get_public(values["public_id"])
        assert booked is not None
        return booked

    async def _lock_bookings(self, connection: AsyncConnection) -> None:
        """Take the bookings' write lock inside the connection's (new) transaction."""
        if self._engine.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_BOOKING_LOCK}
            )
        elif self._engine.dialect.name == "sqlite":
            # sqlite3 would BEGIN (deferred) only at the INSERT, after the counts: IMMEDIATE
            # takes the write lock now, so no other writer books in between.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")

    async def get(self, callback_id: int) -> Callback | None:
        async with self._sessions() as session:
            return await session.get(Callback, callback_id)

    async def get_public(self, public_id: str) -> Callback | None:
        """The callback the API knows as `public_id`."""
        stmt = select(Callback).where(Callback.public_id == public_id)
        async with self._sessions() as session:
            return (await session.execute(stmt)).scalar_one_or_none()

    async def active_for(self, phone: str) -> Callback | None:
        """The number's callback not yet over (pending or being placed), in any group."""
        stmt = select(Callback).where(Callback.phone == phone, Callback.state.in_(ACTIVE))
        async with self._sessions() as session:
            return (await session.execute(stmt.limit(1))).scalar_one_or_none()

    async def candidates(self, now: datetime, per_group: int) -> list[Callback]:
        """Pending callbacks due now, at most `per_group` of each group (the first in its
        queue), all in queue order (priority, then first arrival): a group with thousands
        pending does not hide another group's one."""
        due = (
            select(
                Callback.id,
                func.row_number()
                .over(
                    partition_by=Callback.group_id,
                    order_by=(Callback.priority.desc(), Callback.arrived_at, Callback.id),
                )
                .label("place"),
            )
            .where(
                Callback.state == S.PENDING.value,
                Callback.next_attempt_at <= now,
                (Callback.window_start.is_(None)) | (Callback.window_start <= now),
            )
            .subquery()
        )
        stmt = (
            select(Callback)
            .join(due, due.c.id == Callback.id)
            .where(due.c.place <= per_group)
            .order_by(Callback.priority.desc(), Callback.arrived_at, Callback.id)
        )
        async with self._sessions() as session:
            return list((await session.execute(stmt)).scalars())

    async def backlog(self, now: datetime) -> dict[str, tuple[int, int]]:
        """Per group: (pending callbacks, of which due now), for the metrics. Due means what
        `candidates` would pick: next attempt reached and the window open."""
        due = (Callback.next_attempt_at <= now) & (
            Callback.window_start.is_(None) | (Callback.window_start <= now)
        )
        stmt = (
            select(Callback.group_id, func.count(), func.sum(case((due, 1), else_=0)))
            .where(Callback.state == S.PENDING.value)
            .group_by(Callback.group_id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return {group: (int(pending), int(due_now or 0)) for group, pending, due_now in rows}

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


async def _count(connection: AsyncConnection, quota: Quota) -> int:
    """Callbacks counted against `quota`: requested after its start, in any state (one
    cancelled at once still rang nobody, but still counts: book-and-cancel is no way around)."""
    stmt = select(func.count()).where(
        getattr(Callback, quota.column) == quota.value, Callback.requested_at > quota.since
    )
    if quota.api_only:
        stmt = stmt.where(Callback.source == "api")
    return int((await connection.execute(stmt)).scalar_one())


def _dialling_or(if_dialling: str, otherwise: Any) -> Any:
    """SQL for a row's new last_result: `if_dialling` for a row that was being dialled (its
    state before the UPDATE), else `otherwise`."""
    return case((Callback.state == S.DIALING.value, if_dialling), else_=otherwise)
