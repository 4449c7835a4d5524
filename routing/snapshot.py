"""The ACD's snapshot in the database, so a node on the embedded default (no Redis) comes back
from a restart (SIGTERM or kill -9) with its operators and knows whom to wait for.

Each node keeps one row in ``acd_snapshots`` (migration 0007): its operators' states and the
calls it held in the queue, rewritten whenever they changed, at most every `every` seconds,
and once more when it stops. Calls the shutdown handed back to the dialplan
(`AcdService.connect`'s cancellation) stay in it: they are the ones coming back.

At start, from a snapshot of the same node id:

* operators take back their state if the snapshot is younger than the recall window: ready
  and paused (with the reason) as they were; one who was ringing, talking or in wrap-up is
  paused ("после перезапуска"): a conversation bridged by Asterisk outlives the controller,
  and the operator says when they are free (*83, or the API). Logged-out ones stay out.
* the calls that were queued are the grace window's expected returners (`routing.grace`)
  if the snapshot is younger than the dialplan's hand-back budget
  (`[routing] handback_budget_seconds`, HOTLINE_REENTRY_SECONDS): older, they have gone to
  the fallback queue by now.

With ``state_backend = "redis"`` none of this runs: Redis keeps the operators and callers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Float, String, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from hotline.store.db import Base
from routing.node import AcdNode
from routing.operators import OperatorState

__all__ = ["AFTER_RESTART", "AcdSnapshot", "AcdSnapshots", "Snapshot"]

log = logging.getLogger("hotline.routing")

AFTER_RESTART = "после перезапуска"  # the pause of an operator who was on a call
S = OperatorState
Snapshot = dict[str, Any]


class AcdSnapshot(Base):
    """One node's ACD snapshot (JSON in `body`; `taken_at`: the ACD's wall clock)."""

    __tablename__ = "acd_snapshots"

    node: Mapped[str] = mapped_column(String, primary_key=True)
    taken_at: Mapped[float] = mapped_column(Float)
    body: Mapped[str] = mapped_column(Text)


def take(node: AcdNode, handed_back: Iterable[str]) -> Snapshot:
    """What a restarted node needs: operators' states, calls queued or handed back."""
    acd = node.acd
    operators = {
        op_id: {"state": op.state.value, "reason": op.pause_reason or ""}
        for op_id, op in sorted(acd.operators.items())
    }
    queued = {c.call_id for c in acd.callers.values() if c.state in ("waiting", "ringing")}
    return {"operators": operators, "calls": sorted(queued | set(handed_back))}


async def restore_operators(node: AcdNode, snapshot: Snapshot) -> int:
    """Log the snapshot's operators back in as they were; returns how many."""
    restored = 0
    for op_id, fields in snapshot.get("operators", {}).items():
        if op_id not in node.acd.operators or node.acd.operator(op_id).state is not S.LOGGED_OUT:
            continue
        state, reason = fields.get("state"), fields.get("reason") or None
        if state == S.READY.value:
            await node.login(op_id)
        elif state == S.PAUSED.value:
            await node.login(op_id, paused_reason=reason or AFTER_RESTART)
        elif state in (S.RINGING.value, S.TALKING.value, S.WRAP_UP.value):
            await node.login(op_id, paused_reason=AFTER_RESTART)
        else:
            continue
        restored += 1
    return restored


class AcdSnapshots:
    """One node's snapshot row: `load` at start, `keep` while running, `save` at the end."""

    def __init__(self, engine: AsyncEngine, node_id: str) -> None:
        self._engine = engine
        self._node_id = node_id
        self._saved = ""

    async def load(self) -> tuple[float, Snapshot] | None:
        """(taken_at, snapshot) of this node's last run, or None."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(AcdSnapshot.taken_at, AcdSnapshot.body).where(
                        AcdSnapshot.node == self._node_id
                    )
                )
            ).first()
        if row is None:
            return None
        try:
            body = json.loads(row.body)
        except ValueError:
            log.warning("unreadable ACD snapshot ignored", extra={"node": self._node_id})
            return None
        return float(row.taken_at), body if isinstance(body, dict) else {}

    async def save(self, taken_at: float, snapshot: Snapshot) -> None:
        """Write the snapshot if it changed since the last write."""
        body = json.dumps(snapshot, ensure_ascii=False, sort_keys=True)
        if body == self._saved:
            return
        values = {"node": self._node_id, "taken_at": taken_at, "body": body}
        dialect = self._engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(AcdSnapshot).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["node"], set_={"taken_at": taken_at, "body": body}
        )
        async with self._engine.begin() as connection:
            await connection.execute(stmt)
        self._saved = body

    async def keep(
        self, node: AcdNode, handed_back: set[str], stop: asyncio.Event, every: float
    ) -> None:
        """Rewrite the snapshot when it changed, every `every` seconds, until `stop`; a
        database error is logged and tried again at the next turn."""
        while not stop.is_set():
            try:
                await self.save(node.acd.clock(), take(node, handed_back))
            except Exception:
                log.exception("ACD snapshot not written")
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
