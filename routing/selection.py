"""Operator selection for the ACD core (`routing.acd.Acd`): which operator takes a caller, and
which caller a freed operator takes. Every operator state change goes through `move`, so the
index of ready operators per group is always in step.

Among qualified ready operators: the caller's preferred operator if they are ready (a repeat
contact goes back to whoever handled it), else highest skill level, then the one idle longest.
After the group's ``widen_after_seconds`` a caller may also go to operators of the groups in its
``widen_to`` (secondary skills), but only when no primary operator is free. A freed operator
takes the best-placed head among their groups' queues and, for callers already widened to
them, those groups' queues too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from routing.groups import Group
from routing.model import AcdOperator, Caller
from routing.operators import OperatorState, check_transition
from routing.queue import CallerQueue

__all__ = ["PREFERRED_OPERATOR", "OperatorSelection"]

# A caller's data entry naming the operator to ring first when they are ready (the operator
# who owns the contact the caller called back about); anyone else otherwise, never a wait.
PREFERRED_OPERATOR = "preferred_operator"

S = OperatorState


class OperatorSelection:
    """Who is ready in which group, and the matching rules between callers and operators."""

    def __init__(
        self,
        groups: Mapping[str, Group],
        operators: Mapping[str, AcdOperator],
        queue: CallerQueue,
        clock: Callable[[], float],
    ) -> None:
        self._operators = operators
        self._queue = queue
        self._clock = clock
        # A newcomer held back while callers are on their way back (routing.grace).
        self.holds: Callable[[Caller], bool] = lambda caller: False
        self._groups: Mapping[str, Group] = {}
        self._ready: dict[str, set[str]] = {}
        self._members: dict[str, set[str]] = {}
        self._widened_from: dict[str, list[str]] = {}
        self.set_groups(groups)

    def set_groups(self, groups: Mapping[str, Group]) -> None:
        """New groups: gone ones are forgotten, new ones start with nobody in them."""
        for gone in self._ready.keys() - groups.keys():
            del self._ready[gone], self._members[gone]
        for new in groups.keys() - self._ready.keys():
            self._ready[new], self._members[new] = set(), set()
        self._groups = groups
        self._widened_from = {g: [] for g in groups}
        for group in groups.values():
            for target in group.widen_to:
                self._widened_from[target].append(group.id)

    def join(self, op: AcdOperator) -> None:
        """The operator's skills make them a member of those groups."""
        for group in op.spec.skills:
            self._members[group].add(op.id)
        self.index(op)

    def leave(self, op: AcdOperator) -> None:
        """The operator's skills no longer count (removed, or about to change)."""
        for group in op.spec.skills:
            self._members[group].discard(op.id)
            self._ready[group].discard(op.id)

    def move(self, op: AcdOperator, state: OperatorState, *, reason: str | None = None) -> None:
        """Change an operator's state (the transition is checked) and re-index them."""
        check_transition(op.id, op.state, state)
        if state is S.READY:
            op.idle_since = self._clock()
        op.state = state
        op.pause_reason = reason if state is S.PAUSED else None
        if state not in (S.RINGING, S.TALKING, S.WRAP_UP):
            op.call_id = None
        op.until = None
        self.index(op)

    def index(self, op: AcdOperator) -> None:
        """Keep the ready sets in step with the operator's state."""
        for group in op.spec.skills:
            if op.offerable:
                self._ready[group].add(op.id)
            else:
                self._ready[group].discard(op.id)

    def members(self, group_id: str) -> set[str]:
        return self._members[group_id]

    def ready_count(self, group_id: str) -> int:
        return len(self._ready[group_id])

    def best_operator(self, group_id: str) -> AcdOperator | None:
        best: AcdOperator | None = None
        for op_id in self._ready[group_id]:
            op = self._operators[op_id]
            if best is None or (op.spec.skills[group_id], -op.idle_since) > (
                best.spec.skills[group_id],
                -best.idle_since,
            ):
                best = op
        return best

    def widened(self, caller: Caller) -> bool:
        """May go to the `widen_to` groups' operators: after `widen_after_seconds`, or at
        once while nobody of the caller's own group is logged in (no one to wait for)."""
        group = self._groups[caller.group]
        if self._clock() - caller.queued_at >= group.widen_after_seconds:
            return True
        return bool(group.widen_to) and not self.logged_in(caller.group)

    def operator_for(self, caller: Caller) -> AcdOperator | None:
        """The operator to ring for a waiting caller, if they are first in line."""
        if caller.state != "waiting" or self._queue.head(caller.group) is not caller:
            return None  # someone ahead of them takes the next free operator
        if self.holds(caller):
            return None
        preferred = caller.data.get(PREFERRED_OPERATOR, "")
        if preferred in self._ready[caller.group]:  # the one who owns the caller's contact
            return self._operators[preferred]
        op = self.best_operator(caller.group)
        if op is None and self.widened(caller):
            candidates = [self.best_operator(g) for g in self._groups[caller.group].widen_to]
            op = max(
                (c for c in candidates if c is not None),
                key=lambda o: -o.idle_since,
                default=None,
            )
        return op

    def caller_for(self, op: AcdOperator) -> Caller | None:
        """The caller a free operator should take, if any."""
        if not op.offerable:
            return None
        best: Caller | None = None
        for group_id in op.spec.skills:
            for candidate_group in (group_id, *self._widened_from[group_id]):
                if candidate_group != group_id and candidate_group in op.spec.skills:
                    continue
                head = self._queue.head(candidate_group)
                if head is None or (candidate_group != group_id and not self.widened(head)):
                    continue
                if best is None or head.key < best.key:
                    best = head
        return None if best is None or self.holds(best) else best

    def staffed(self, group_id: str) -> int:
        """Operators of the group logged in and not on a pause."""
        return sum(
            1
            for o in self._members[group_id]
            if self._operators[o].state not in (S.LOGGED_OUT, S.PAUSED)
        )

    def logged_in(self, group_id: str) -> bool:
        return any(self._operators[o].state is not S.LOGGED_OUT for o in self._members[group_id])

    def by_state(self, group_id: str) -> dict[OperatorState, int]:
        counts = dict.fromkeys(OperatorState, 0)
        for op_id in self._members[group_id]:
            counts[self._operators[op_id].state] += 1
        return counts
