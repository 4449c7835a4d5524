"""Settings of the ACD, for the lead to wire in as the ``[routing]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from routing.acd import AcdSettings


@dataclass(frozen=True)
class RoutingSettings:
    # True: menus' `queue` nodes go through this ACD (the caller's session Dials the operator);
    # False: they run Asterisk's own Queue(hotline-<group>) as before.
    enabled: bool = True
    groups_file: str = "dialplans/groups.yaml"  # skill groups (routing.groups)
    operators_file: str = "dialplans/operators.yaml"  # operators (agents.operators)
    state_backend: str = "memory"  # "memory" (one node) or "redis" (shared by all nodes)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "hotline:acd:"
    node_id: str = ""  # empty: the host name; must differ between controller nodes
    # A group's `schedule` names an opening-hours file <schedules_dir>/<schedule>.yaml (the
    # IVR's format, with calendar.yaml beside it); a name with no such file is always open.
    schedules_dir: str = "dialplans"
    recall_window_seconds: float = 600.0  # a caller back within this keeps their place
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

    def acd(self) -> AcdSettings:
        """The routing core's share of these settings."""
        return AcdSettings(
            recall_window_seconds=self.recall_window_seconds,
            service_level_seconds=self.service_level_seconds,
        )
