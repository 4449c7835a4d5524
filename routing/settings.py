"""Settings of the ACD, for the lead to wire in as the ``[routing]`` section."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from routing.groups import Group
from routing.model import AcdSettings

_REPOSITORY = Path(__file__).resolve().parents[1]

# The groups file's floor for ring_seconds and max_wait_seconds (routing.groups): Dial's
# timeout is whole seconds, so an offer cannot ring for less than one.
_MIN_RING_SECONDS = 1.0
# How long past its ring time an offer waits for Dial's answer hook (AcdSettings).
_RING_TIMER_GRACE_SECONDS = 3.0


def _scale_problem(value: Any) -> str | None:
    """What is wrong with a time_scale (controller.settings's check, and __post_init__'s)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, got {value!r}"
    if not math.isfinite(value) or value <= 0:
        return f"must be a number greater than 0, got {value}"
    return None


@dataclass(frozen=True)
class RoutingSettings:
    # True: menus' `queue` nodes go through this ACD (the caller's session Dials the operator);
    # False: they run Asterisk's own Queue(hotline-<group>) as before.
    enabled: bool = True
    groups_file: str = "dialplans/groups.yaml"  # skill groups (routing.groups)
    operators_file: str = "dialplans/operators.yaml"  # operators (routing.operators)
    state_backend: str = "memory"  # "memory" (one node) or "redis" (shared by all nodes)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "hotline:acd:"
    node_id: str = ""  # empty: the host name; must differ between controller nodes
    # A group's `schedule` names an opening-hours file <schedules_dir>/<schedule>.yaml (the
    # IVR's format, with calendar.yaml beside it); a name with no such file is always open.
    schedules_dir: str = "dialplans"
    recall_window_seconds: float = 600.0  # a caller back within this keeps their place
    # After a restart on the embedded default (routing.snapshot, routing.grace): newcomers get
    # no operator for up to restart_grace_seconds while callers the last run held are on
    # their way back, if that run ended less than handback_budget_seconds ago (the dialplan's
    # HOTLINE_REENTRY_SECONDS: older, they are in the fallback queue). 0 turns it off.
    restart_grace_seconds: float = 15.0
    handback_budget_seconds: float = 60.0
    snapshot_every_seconds: float = 1.0  # how often the ACD's snapshot is rewritten if changed
    service_level_seconds: float = 20.0  # the "answered within" of the service level
    announce_every_seconds: float = 45.0  # position / expected wait announcements
    music_class: str = "default"  # MusicOnHold class while waiting
    timer_resolution_seconds: float = 0.05  # AcdNode.run's longest sleep
    recover_every_seconds: float = 5.0  # how often a degraded node re-tries Redis
    # Each node refreshes its heartbeat in Redis this often, and then sweeps out the waiting
    # callers of nodes whose heartbeat is older than node_lost_seconds (counted abandoned,
    # reason "node lost"). node_lost_seconds must exceed heartbeat_seconds (AcdNode checks).
    heartbeat_seconds: float = 5.0
    node_lost_seconds: float = 30.0
    # Hand edits of the groups, operators and schedule files are looked for this often and
    # applied live (routing.admin); 0 turns that off (the /api edits still apply at once).
    reload_interval: float = 2.0
    # Where the controller writes the Asterisk files generated from the groups and operators
    # (routing.asterisk_files: hotline-queue-members.conf, hotline-seats.conf), at start and
    # after every change of either; the folder asterisk-conf's queues.conf and pjsip.conf
    # include them from (on the Asterisk host, or synced there). Empty: not written.
    asterisk_files_dir: str = ""
    # The operators' seats in those files: "udp" (asterisk-conf/pjsip.conf operator-endpoint)
    # or "tls" (operator-endpoint-tls: SIP over TLS and SRTP only; uncomment transport-tls
    # there with its certificate first).
    seats_transport: Literal["udp", "tls"] = "udp"
    # Every accepted version of those files (``<versions_dir>/groups/...``, as the menus'
    # versions); empty: the ``acd`` folder in [ivr] versions_dir.
    versions_dir: str = ""
    # Every ACD duration is multiplied by this, for compressed demos and simulated days
    # (`hotline sim --time-scale`): the groups' wrap-up, ring, max wait and widening times as
    # the files are loaded (ring and max wait stay >= 1 s), the recall window, service level,
    # announcement interval and expected-wait guess. Not the timer resolution, heartbeats,
    # Redis retries or file polling: those are the machinery's, not the callers' time.
    time_scale: float = field(default=1.0, metadata={"check": _scale_problem})

    def __post_init__(self) -> None:
        problem = _scale_problem(self.time_scale)
        if problem:
            raise ValueError(f"time_scale {problem}")

    def seconds(self, seconds: float) -> float:
        """A duration of the ACD (a setting's, a group's) as it runs: times time_scale."""
        return seconds * self.time_scale

    def acd(self) -> AcdSettings:
        """The routing core's share of these settings, durations scaled."""
        return AcdSettings(
            recall_window_seconds=self.seconds(self.recall_window_seconds),
            service_level_seconds=self.seconds(self.service_level_seconds),
            default_handle_seconds=self.seconds(AcdSettings.default_handle_seconds),
            # network and FastAGI latency, not a duration of the day: never scaled
            ring_timer_grace_seconds=_RING_TIMER_GRACE_SECONDS,
        )

    def timed_groups(self, groups: Mapping[str, Group]) -> dict[str, Group]:
        """The groups as read from their file, with their timings scaled."""
        return {group_id: self._timed(group) for group_id, group in groups.items()}

    def _timed(self, group: Group) -> Group:
        if self.time_scale == 1.0:
            return group
        return replace(
            group,
            wrap_up_seconds=self.seconds(group.wrap_up_seconds),
            ring_seconds=max(_MIN_RING_SECONDS, self.seconds(group.ring_seconds)),
            max_wait_seconds=max(_MIN_RING_SECONDS, self.seconds(group.max_wait_seconds)),
            widen_after_seconds=self.seconds(group.widen_after_seconds),
        )

    def compression_note(self) -> str | None:
        """The start-up warning of a scaled ACD clock; None at time_scale 1."""
        if self.time_scale == 1.0:
            return None
        factor = 1 / self.time_scale
        how = f"compressed x{factor:g}" if factor > 1 else f"stretched x{self.time_scale:g}"
        return (
            f"ACD time {how}: groups' wrap-up, ring, max wait and widening, the service "
            f"level, announcements and the recall window are scaled by "
            f"routing.time_scale = {self.time_scale:g} (ring and max wait at least 1 s)"
        )


def locate(path: str) -> Path:
    """A settings path: absolute as given; relative from the working directory when it is
    there, else from the repository (where the shipped dialplans/ lives, as the IVR's
    default), so `hotline serve` started from another directory still finds the files."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    return _REPOSITORY / given
