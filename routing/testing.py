"""Building blocks for tests and what-if runs of the ACD: terse groups and operators, and a
node on the in-memory store (the hand-driven clock is `hotline.clock.ManualClock`). Not used
on the call path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.groups import Group
from routing.node import AcdNode
from routing.operators import OperatorSpec
from routing.state import InMemoryAcdStore


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


def memory_node(
    groups: Mapping[str, Group], operators: Iterable[OperatorSpec], node_id: str = "n1"
) -> AcdNode:
    """A lone ACD node (not started) on the in-memory store, its clock driven by hand: what a
    part acting on the ACD is tested against, with no Redis."""
    return AcdNode(Acd(groups, operators, clock=ManualClock()), InMemoryAcdStore(), node_id=node_id)
