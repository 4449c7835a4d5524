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
    # callbacks one node holds in one group's queue at once: each group has its own slots,
    # so one group's backlog never keeps another group's callbacks from their operators
    max_in_flight: int = 10
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
    # The numbers a callback may call (routing.callbacks.numbers); relative paths as the
    # groups file's ([routing] locate).
    numbers_file: str = "dialplans/callback-numbers.yaml"
    # Rate limits, counted in the shared database so every controller node counts together.
    # Callbacks ordered to one number (menus and API alike), in 24 hours:
    per_phone_per_day: int = 3
    # Callbacks one requester (a service key, a staff member) orders through the API:
    per_requester_per_minute: int = 10
    per_requester_per_day: int = 500
    # Callbacks ordered through the API into one group, in an hour:
    per_group_per_hour: int = 200

    def __post_init__(self) -> None:
        # controller.settings turns these into a ConfigError naming the [callbacks] section
        at_least_one = ("max_attempts", "max_in_flight", "per_phone_per_day",
                        "per_requester_per_minute", "per_requester_per_day",
                        "per_group_per_hour")  # fmt: skip
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
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
