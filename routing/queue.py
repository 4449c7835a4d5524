"""The queue of waiting callers, per group, for the ACD core (`routing.acd.Acd`).

Order: higher ``priority`` first, then arrival order (the first arrival time, then a global
sequence number, both kept by recalls, escalations and controller restarts): `Caller.key`.
Each group's queue is a heap of (key, call id); an entry whose caller left, moved or changed
key is dropped lazily when it reaches the top, so leaving is O(1) and only the count of
waiting callers is kept exact.

A caller who hangs up leaves their place behind for the recall window: the same number calling
back into the same group within it resumes that place (`remember`, `take_place`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from routing.model import Caller

__all__ = ["CallerQueue"]

_PLACES_PRUNE_AT = 10_000  # remembered places kept before expired ones are swept


@dataclass
class _Place:
    seq: int
    priority: int
    first_arrival: float
    group: str
    expires: float


class CallerQueue:
    """Every caller the ACD holds (`callers`) and, per group, those waiting, in order."""

    def __init__(self, groups: Iterable[str]) -> None:
        self.callers: dict[str, Caller] = {}
        self._heaps: dict[str, list[tuple[tuple[int, float, int], str]]] = {}
        self._waiting: dict[str, int] = {}
        self._places: dict[str, _Place] = {}
        self._seq = itertools.count(1)
        for group_id in groups:
            self.add_group(group_id)

    def add_group(self, group_id: str) -> None:
        self._heaps[group_id], self._waiting[group_id] = [], 0

    def drop_group(self, group_id: str) -> None:
        del self._heaps[group_id], self._waiting[group_id]

    def next_seq(self) -> int:
        """A new arrival number (single node; several nodes share theirs in the store)."""
        return next(self._seq)

    def push(self, caller: Caller) -> None:
        """Into their group's queue, waiting for an operator."""
        caller.state, caller.operator = "waiting", None
        self.again_at_head(caller)

    def again_at_head(self, caller: Caller) -> None:
        """Back into the queue with the same key: they were first, so they are first again."""
        caller.state = "waiting"
        heapq.heappush(self._heaps[caller.group], (caller.key, caller.call_id))
        self._waiting[caller.group] += 1

    def leave(self, caller: Caller) -> None:
        """Leave the queue; the heap entry is dropped lazily when it reaches the top."""
        if caller.state == "waiting":
            self._waiting[caller.group] -= 1

    def head(self, group_id: str) -> Caller | None:
        """The caller next in line in a group, if any."""
        heap = self._heaps[group_id]
        while heap:
            key, call_id = heap[0]
            caller = self.callers.get(call_id)
            if caller and caller.state == "waiting" and caller.group == group_id:
                if caller.key == key:
                    return caller
            heapq.heappop(heap)
        return None

    def waiting(self, group_id: str) -> int:
        return self._waiting[group_id]

    def position(self, caller: Caller) -> int:
        """1-based place among the callers waiting in the same group (0: not waiting)."""
        if caller.state != "waiting":
            return 0
        return 1 + sum(
            1
            for other in self.callers.values()
            if other.state == "waiting" and other.group == caller.group and other.key < caller.key
        )

    def longest_wait(self, group_id: str, now: float) -> float:
        return max(
            (
                now - c.queued_at
                for c in self.callers.values()
                if c.group == group_id and c.state == "waiting"
            ),
            default=0.0,
        )

    def remember(self, caller: Caller, now: float, expires: float) -> None:
        """Keep a leaving caller's place for their number until `expires`."""
        if len(self._places) > _PLACES_PRUNE_AT:
            self._places = {n: p for n, p in self._places.items() if p.expires > now}
        self._places[caller.number] = _Place(
            caller.seq, caller.priority, caller.first_arrival, caller.group, expires
        )

    def take_place(self, number: str, group_id: str, now: float) -> tuple[int, int, float] | None:
        """(seq, priority, first arrival) a number left in this group and may still resume;
        the remembered place is used up either way."""
        old = self._places.pop(number, None) if number else None
        if old is not None and old.expires > now and old.group == group_id:
            return old.seq, old.priority, old.first_arrival
        return None
