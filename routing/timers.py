"""The ACD core's timers: ring timeouts, wrap-up ends, widening and max-wait overflows.

Timers are a heap of (when, n, kind, id) on the core's clock. A timer whose subject moved on
(the operator answered, the caller left or was requeued) is not removed when that happens: it
is checked when it comes due (`_live`) and dropped, which keeps every state change O(log n).
`AcdTimers.tick` runs the due ones and returns what the driver must act on (`TickEvents`).
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

from routing.grace import GRACE_TIMER
from routing.model import NO_ANSWER, NoAnswer, Overflow, TickEvents
from routing.operators import OperatorState

if TYPE_CHECKING:
    from routing.acd import Acd

__all__ = ["AcdTimers"]

S = OperatorState


class AcdTimers:
    """The timers of one `Acd` (it adds them; the driver runs them through `Acd.tick`)."""

    def __init__(self, acd: Acd) -> None:
        self._acd = acd
        self._heap: list[tuple[float, int, str, str]] = []  # (when, n, kind, id)
        self._n = itertools.count()

    def add(self, when: float, kind: str, ident: str) -> None:
        """`kind` is ring or wrap_up (`ident` an operator), widen or max_wait (a call), or
        grace (the end of a restart's grace window, routing.grace)."""
        heapq.heappush(self._heap, (when, next(self._n), kind, ident))

    def next_deadline(self) -> float | None:
        while self._heap and not self._live(*self._heap[0][2:]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def _live(self, kind: str, ident: str) -> bool:
        if kind == GRACE_TIMER:
            return True
        if kind in ("ring", "wrap_up"):
            op = self._acd.operators.get(ident)
            if op is None:  # removed by an admin edit (only ever when logged out)
                return False
            return op.until is not None and op.state is (S.RINGING if kind == "ring" else S.WRAP_UP)
        caller = self._acd.callers.get(ident)
        return caller is not None and caller.state == "waiting"

    def tick(self) -> TickEvents:
        """Run every timer that is due; returns what the driver must act on."""
        events = TickEvents()
        now = self._acd.clock()
        while self._heap and self._heap[0][0] <= now:
            when, _, kind, ident = heapq.heappop(self._heap)
            if self._live(kind, ident):
                getattr(self, f"_on_{kind}")(ident, when, events)
        return events

    def ring_out(self, op_id: str, when: float, events: TickEvents) -> None:
        """The offer to `op_id` rang out at `when`: the operator is paused "no answer" and the
        caller, first in line, goes to the next operator."""
        acd = self._acd
        op = acd.operators[op_id]
        if op.until is None or op.until > when or op.call_id is None:
            return
        caller = acd.callers.get(op.call_id)
        acd.select.move(op, S.PAUSED, reason=NO_ANSWER)
        if caller is None:
            return
        events.no_answer.append(NoAnswer(op_id, caller.call_id))
        acd.queue.again_at_head(caller)
        events.offers.extend(acd.serve(caller.call_id))

    _on_ring = ring_out

    def _on_wrap_up(self, op_id: str, when: float, events: TickEvents) -> None:
        op = self._acd.operators[op_id]
        if op.until is not None and op.until <= when:
            events.readied.append(op_id)
            events.offers.extend(self._acd.ready(op_id))

    def _on_grace(self, _: str, when: float, events: TickEvents) -> None:
        """The restart's grace window is over (`routing.grace`): free operators take the
        newcomers it held."""
        if self._acd.grace.active:
            return  # a deadline moved on since
        for op in self._acd.operators.values():
            events.offers.extend(self._acd.serve_operator(op.id))

    def _on_widen(self, call_id: str, when: float, events: TickEvents) -> None:
        events.offers.extend(self._acd.serve(call_id))

    def _on_max_wait(self, call_id: str, when: float, events: TickEvents) -> None:
        acd = self._acd
        caller = acd.callers[call_id]
        group = acd.groups[caller.group]
        if when < caller.queued_at + group.max_wait_seconds:
            return  # a timer from before a requeue
        acd.queue.leave(caller)
        caller.state = "overflowed"
        acd.stats[caller.group].overflowed += 1
        events.overflows.append(Overflow(call_id, caller.group, "max_wait", group.overflow_group))
