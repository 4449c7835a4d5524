"""`CallbackSettings`: the tunables of callbacks (the lead wires them in as ``[callbacks]``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallbackSettings"]


@dataclass(frozen=True)
class CallbackSettings:
    """Tunables of callbacks (the lead wires them in as ``[callbacks]``)."""

    max_attempts: int = 3  # calls to the citizen before the callback is failed
    retry_seconds: float = 300.0  # wait before the 2nd attempt
    retry_backoff: float = 2.0  # each further wait is this many times longer
    caller_ring_seconds: float = 30.0  # how long the citizen's phone rings
    poll_seconds: float = 5.0  # how often run() looks for due callbacks
    max_in_flight: int = 10  # callbacks one node holds in the queue at once
    default_window_hours: float = 24.0  # API request without window_end: start + this
    max_days_ahead: float = 14.0  # a window may not start later than this
    caller_channel: str = "Local/{phone}@hotline-callback-out"  # how the citizen is dialled
    operator_context: str = "hotline-callback-operator"
    caller_context: str = "hotline-callback-caller"
    caller_id: str = "88001000001"  # the number the citizen's phone shows
    response_grace_seconds: float = 10.0  # OriginateResponse later than Timeout + this: lost
    # A claimed callback's owner renews its lease every poll; a lease not renewed for this
    # long (the node died) lets any node put the callback back to pending.
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        # controller.settings turns these into a ConfigError naming the [callbacks] section
        if self.max_attempts < 1 or self.max_in_flight < 1:
            raise ValueError("max_attempts and max_in_flight must be at least 1")
        positive = ("retry_seconds", "caller_ring_seconds", "poll_seconds",
                    "default_window_hours", "max_days_ahead", "response_grace_seconds",
                    "lease_seconds")  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0")
        if self.retry_backoff < 1:
            raise ValueError("retry_backoff must be at least 1 (waits never shrink)")
        if self.lease_seconds <= self.poll_seconds:
            # renewed once per poll: a shorter lease would expire under a live node
            raise ValueError("lease_seconds must be greater than poll_seconds")
