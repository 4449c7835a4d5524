"""Prometheus metrics shared by the controller's parts.

They live in one module so that `/metrics` shows one coherent set and the names are decided once.
Labels are kept to small, closed sets: never a caller number or a call id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CALLS_IN_PROGRESS = Gauge(
    "hotline_calls_in_progress", "FastAGI sessions (calls) being handled right now"
)
AGI_SESSIONS = Counter(
    "hotline_agi_sessions_total",
    "FastAGI sessions by how they ended",
    # completed | hangup | protocol_error | idle_timeout | rejected | handler_error | cancelled
    ["outcome"],
)
AGI_COMMANDS = Counter(
    "hotline_agi_commands_total",
    "AGI commands sent, by command verb and reply kind",
    # result: ok | failure | invalid | usage | dead_channel | hangup | timeout | protocol_error
    ["command", "result"],
)
AGI_COMMAND_SECONDS = Histogram(
    "hotline_agi_command_seconds",
    "Time from sending an AGI command to its reply",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
AMI_LINK_UP = Gauge("hotline_ami_link_up", "1 while the AMI link is logged in, else 0")
AMI_RECONNECTS = Counter("hotline_ami_reconnects_total", "AMI link (re)connection attempts")
AMI_ACTIONS = Counter(
    "hotline_ami_actions_total", "AMI actions sent, by reply", ["result"]
)  # result: success | error | timeout | link_lost
ERRORS = Counter("hotline_errors_total", "Errors by component and kind", ["component", "kind"])
