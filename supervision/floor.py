"""What the wallboard reads from the ACD, in its own words (a port: supervision does not know
the ACD; the composition root adapts it, `controller.supervision_ports.AcdFloor`).

`Floor.queues()` gives each group's figures now: who waits and how long, the expected wait of a
new caller, whether the group is open and how many of its operators are logged in, and the
running counters since the ACD started (offered, answered, abandoned, answered within the
service level, the sum of answered waits). `Floor.operators()` gives each operator's state,
pause reason and call. Alarms come from `AlarmSource` callables (the AMI link, the recorder).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["AlarmSource", "Floor", "FloorAlarm", "OperatorNow", "QueueNow"]


@dataclass(frozen=True)
class QueueNow:
    group: str
    name: str
    open: bool
    waiting: int
    longest_wait: float
    expected_wait: float | None  # None: nobody staffed, no estimate
    logged_in: int
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_sl: int = 0
    answer_wait_total: float = 0.0


@dataclass(frozen=True)
class OperatorNow:
    id: str
    name: str
    state: str  # logged_out | ready | paused | ringing | talking | wrap_up
    pause_reason: str | None = None
    call_id: str | None = None
    groups: tuple[str, ...] = field(default_factory=tuple)
    seconds_left: float | None = None


@dataclass(frozen=True)
class FloorAlarm:
    kind: str  # ami_down | recorder_storage | recorder_spool | unstaffed
    text: str  # Russian, for the wallboard


class Floor(Protocol):
    def queues(self) -> Sequence[QueueNow]: ...

    def operators(self) -> Sequence[OperatorNow]: ...


AlarmSource = Callable[[], Sequence[FloorAlarm]]
