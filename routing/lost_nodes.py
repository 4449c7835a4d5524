"""Nodes that never come back: heartbeats, and the sweep of the callers they left behind.

Every node refreshes a heartbeat in the store (TTL ``node_lost_seconds``, every
``heartbeat_seconds``) and sweeps the store for callers whose node's heartbeat is gone: such a
caller is removed (counted as abandoned, reason "node lost", its place remembered for its
number so a call back resumes it) and an operator ringing for it goes back to ready. A caller
who is *talking* is left alone: the bridge lives in Asterisk, not in the lost node. The check
and the removal are one Lua script, so a node that comes back in between keeps its callers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from routing.acd import Acd
from routing.state import Fields, StateUnavailable

__all__ = ["LostNodeSweeper"]

log = logging.getLogger("hotline.routing")

StoreCall = Callable[..., Awaitable[Any]]
"""`routing.failover.StoreFailover.call`: a store method by name, degraded mode included."""


class LostNodeSweeper:
    """One node's heartbeat and its sweep of other nodes' lost callers."""

    def __init__(
        self,
        acd: Acd,
        node_id: str,
        call: StoreCall,
        *,
        heartbeat_seconds: float,
        node_lost_seconds: float,
    ) -> None:
        self._acd = acd
        self._node_id = node_id
        self._call = call
        self.heartbeat_seconds = heartbeat_seconds
        self.node_lost_seconds = node_lost_seconds

    async def beat(self) -> None:
        """Tell the other nodes this one is alive for the next ``node_lost_seconds``."""
        await self._call("beat", self._node_id, self.node_lost_seconds)

    async def sweep(self) -> list[str]:
        """Remove the callers of nodes whose heartbeat is gone; returns their call ids."""
        records: dict[str, Fields] = await self._call("callers")
        alive: dict[str, bool] = {self._node_id: True}
        swept: list[str] = []
        for call_id, record in records.items():
            owner = record.get("node", "")
            if not owner or call_id in self._acd.callers:
                continue
            if owner not in alive:
                alive[owner] = bool(await self._call("node_alive", owner))
            if alive[owner]:
                continue
            operator = record.get("operator", "")
            dropped = await self._call("drop_lost_caller", call_id, owner, operator)
            if dropped is not None:
                swept.append(call_id)
                await self._count_lost(call_id, owner, dropped)
        return swept

    async def _count_lost(self, call_id: str, owner: str, record: Fields) -> None:
        group_id = record.get("group", "")
        if group_id in self._acd.stats:
            self._acd.stats[group_id].abandoned += 1
        log.warning(
            "caller %s of lost node %s removed from group %s: abandoned (node lost)",
            call_id,
            owner,
            group_id,
        )
        number = record.get("number", "")
        if number:
            place = {k: v for k, v in record.items() if k not in ("state", "operator", "node")}
            place["left_at"] = repr(self._acd.clock())  # noticed gone now: the window starts
            window = self._acd.settings.recall_window_seconds
            await self._call("remember_place", number, place, window)

    async def run(self) -> None:
        """Heartbeat and sweep every ``heartbeat_seconds``; a store error is the degraded
        mode's business (`StoreFailover.call`), never the end of the loop."""
        while True:
            try:
                await self.beat()
                await self.sweep()
            except StateUnavailable:
                pass  # the failover already degraded the node
            except Exception:
                log.exception("node %s: heartbeat/sweep failed; retrying", self._node_id)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return  # redis-py can turn our cancellation into a connection error
            await asyncio.sleep(self.heartbeat_seconds)
