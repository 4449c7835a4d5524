"""Who is told when an operator's state changes on this node (the desktop's state bar).

The core (`routing.acd.Acd`) moves operators in many places: a button, a ring, an answer, the
end of a call, a wrap-up timer, a missed ring, another node's change taken from the store.
Rather than hooking each of them, `AcdNode` asks the watch to `check()` after each of its
operations: the watch compares every operator with what it last told and reports only the
ones that moved. An operator's screen thus hears of every change at the moment the node makes
it (push), and nothing is told twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from routing.acd import Acd
from routing.model import AcdOperator
from routing.operators import OperatorState

log = logging.getLogger(__name__)

__all__ = ["OperatorStatus", "OperatorWatch"]


@dataclass(frozen=True)
class OperatorStatus:
    """An operator's state as their screen shows it."""

    operator_id: str
    state: OperatorState
    pause_reason: str | None
    call_id: str | None
    # ringing: seconds until the ring times out; wrap-up: the countdown to "ready"
    seconds_left: float | None

    def key(self) -> tuple[str, str | None, str | None]:
        return (self.state.value, self.pause_reason, self.call_id)


class OperatorWatch:
    def __init__(self, acd: Acd) -> None:
        self._acd = acd
        self._told: dict[str, tuple[str, str | None, str | None]] = {}
        self.listeners: list[Callable[[OperatorStatus], None]] = []

    def status(self, op: AcdOperator) -> OperatorStatus:
        timed = op.state in (OperatorState.RINGING, OperatorState.WRAP_UP) and op.until
        left = max(0.0, op.until - self._acd.clock()) if timed and op.until else None
        return OperatorStatus(op.id, op.state, op.pause_reason, op.call_id, left)

    def check(self) -> None:
        """Tell the listeners every operator whose state changed since they were last told."""
        if not self.listeners:
            return
        for op in self._acd.operators.values():
            status = self.status(op)
            if self._told.get(op.id) == status.key():
                continue
            self._told[op.id] = status.key()
            for listener in self.listeners:
                try:
                    listener(status)
                except Exception:  # a screen's trouble never stops the ACD
                    log.exception("operator listener failed", extra={"operator": op.id})
