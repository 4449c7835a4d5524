"""Building blocks for tests and what-if runs of the ACD: a hand-driven clock, terse groups and
operators. Not used on the call path."""

from __future__ import annotations

from dataclasses import dataclass

from agents.operators import OperatorSpec
from routing.groups import Group


@dataclass
class ManualClock:
    """A clock that only moves when told to: pass it as `Acd(clock=...)`."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def group(gid: str, **overrides: object) -> Group:
    """A group with everyday timings; keyword arguments override any field."""
    values: dict[str, object] = {
        "id": gid,
        "name": gid,
        "schedule": "always",
        "wrap_up_seconds": 10.0,
        "ring_seconds": 15.0,
        "max_wait_seconds": 300.0,
        "widen_after_seconds": 60.0,
    }
    values.update(overrides)
    return Group(**values)  # type: ignore[arg-type]


def op(op_id: str, **skills: int) -> OperatorSpec:
    """An operator on PJSIP/<id>; `skills` are group=level (use _ for - in group ids)."""
    skill_levels = {k.replace("_", "-"): v for k, v in skills.items()}
    return OperatorSpec(op_id, op_id, f"PJSIP/{op_id}", skill_levels)
