"""The hotline's targets as the wallboard shows them beside each live figure.

`FloorTargets` holds the seed's targets (average speed of answer at most 20 s, service level
80 % answered within 20 s, abandons at most 5 %, first-contact resolution 85 %, satisfaction
4.7 of 5, repeat contacts at most 5 %). The wallboard reads them through a `TargetsSource`
each time it builds a board, so the composition root can plug in the administrators' targets
file when there is one; until then `seed_targets` answers the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["FloorTargets", "TargetsSource", "seed_targets"]


@dataclass(frozen=True)
class FloorTargets:
    asa_seconds: float = 20.0
    service_level: float = 0.80  # share answered within service_level_seconds
    service_level_seconds: float = 20.0
    abandon_rate: float = 0.05
    first_contact_resolution: float = 0.85
    csat: float = 4.7
    repeat_rate: float = 0.05


class TargetsSource(Protocol):
    """The targets in force now (a port: the root may plug in a file the admins edit)."""

    def __call__(self) -> FloorTargets: ...


def seed_targets() -> FloorTargets:
    return FloorTargets()
