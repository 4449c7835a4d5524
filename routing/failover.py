"""Degraded mode of one node: which store its writes go to, the shared one or, while that
fails, an in-process copy of the node's own view.

When the shared store raises `StateUnavailable` the node logs an error, sets the
``hotline_acd_state_degraded`` gauge to 1, copies what its core knows into an in-process store
and keeps routing on that for new and waiting calls. It never crashes a call for it.
`StoreFailover.recover` (called periodically by `routing.node.AcdNode.run`) writes the node's
view back to Redis once it answers and clears the alarm.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from routing.metrics import ACD_STATE_DEGRADED, ACD_STATE_ERRORS
from routing.model import caller_fields, operator_fields
from routing.operators import OperatorState
from routing.state import AcdStore, InMemoryAcdStore, StateUnavailable

if TYPE_CHECKING:
    from routing.acd import Acd

__all__ = ["StoreFailover"]

# Writes whose effect the core already holds when the node copies its view to the
# in-process store on degrading: retrying them there would test the copy against itself.
_APPLIED_BY_COPY = frozenset({"move_operator", "answer", "finish", "unclaim"})

log = logging.getLogger("hotline.routing")
T = TypeVar("T")
S = OperatorState


class StoreFailover:
    """The store a node uses now, and the switch to (and back from) its in-process copy."""

    def __init__(
        self,
        primary: AcdStore,
        acd: Acd,
        node_id: str,
        on_degraded: Callable[[str], None] | None = None,
    ) -> None:
        self.primary = primary
        self.store: AcdStore = primary
        self.degraded = False
        self._acd = acd
        self._node_id = node_id
        self._on_degraded = on_degraded
        self._claimed: set[tuple[str, str]] = set()  # (call, operator) pairs the store holds

    async def do(self, name: str, action: Callable[[AcdStore], Awaitable[T]]) -> T:
        """Run a store operation; on a Redis failure switch to degraded mode and retry locally."""
        try:
            return await action(self.store)
        except StateUnavailable as exc:
            ACD_STATE_ERRORS.labels(name).inc()
            await self.degrade(str(exc))
            return await action(self.store)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`do` for a store method by name (loop bodies, where lambdas would capture late)."""
        try:
            result = await getattr(self.store, method)(*args, **kwargs)
        except StateUnavailable as exc:
            ACD_STATE_ERRORS.labels(method).inc()
            await self.degrade(str(exc))
            if method in _APPLIED_BY_COPY:
                return True  # the in-process copy already holds what this write meant
            result = await getattr(self.store, method)(*args, **kwargs)
        self._track(method, args, result)
        return result

    def _track(self, method: str, args: tuple[Any, ...], result: Any) -> None:
        """Remember which ringing pairs the store confirmed, so a copy of the core's view
        (degraded mode) writes unconfirmed offers as still open, not as won."""
        if method == "claim" and result:
            self._claimed.add((args[0], args[1]))
        elif method in ("unclaim", "finish"):
            self._claimed.discard((args[0], args[1]))

    async def degrade(self, reason: str) -> None:
        if self.degraded:
            return
        self.degraded = True
        ACD_STATE_DEGRADED.set(1)
        log.error(
            "ACD shared state unavailable, node %s routes on in-process state: %s",
            self._node_id,
            reason,
        )
        local = InMemoryAcdStore()
        await self._copy_view_to(local)
        self.store = local
        if self._on_degraded is not None:
            self._on_degraded(reason)

    async def recover(self) -> bool:
        """If degraded and Redis answers again, write this node's view back and leave degraded
        mode. Returns True when the node is (again) on shared state."""
        if not self.degraded:
            return True
        if not await self.primary.ping():
            return False
        try:
            await self._copy_view_to(self.primary)
        except StateUnavailable:
            return False
        self.store, self.degraded = self.primary, False
        ACD_STATE_DEGRADED.set(0)
        log.warning("ACD shared state is back; node %s routes on Redis again", self._node_id)
        return True

    async def _copy_view_to(self, store: AcdStore) -> None:
        """The node's view of operators and callers; offers whose claim the shared store has
        not confirmed are written as still open."""
        claimed = self._claimed
        for op in self._acd.operators.values():
            fields = operator_fields(op)
            if op.state is S.RINGING and (op.call_id, op.id) not in claimed:
                fields.update(state="ready", call="")  # an offer whose claim is in flight
            await store.put_operator(op.id, fields)
        for caller in self._acd.callers.values():
            fields = caller_fields(caller, self._node_id)
            fields["state"], fields["operator"] = caller.state, caller.operator or ""
            if caller.state == "ringing" and (caller.call_id, caller.operator) not in claimed:
                fields.update(state="waiting", operator="")
            await store.put_caller(caller.call_id, fields)
