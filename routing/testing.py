"""Building blocks for tests and what-if runs of the ACD: terse groups and operators (the
hand-driven clock is `hotline.clock.ManualClock`). Not used on the call path."""

from __future__ import annotations

from routing.groups import Group
from routing.operators import OperatorSpec


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
