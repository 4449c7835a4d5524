"""The grace window after a controller restart: newcomers wait while the callers the previous
controller held are on their way back.

When a controller stops or dies, the callers waiting in its queue are handed back to the
dialplan, which brings them to the next controller after a pause (asterisk-conf's
HOTLINE_REENTRY_PAUSE). A caller who dials in meanwhile would reach the restarted ACD first
and take the first free operator, overtaking people who had waited for minutes. So for a
short window after start (`[routing] restart_grace_seconds`) the ACD offers no operator to a
newcomer (a caller who arrived after the window began) while any caller it expects back (the
previous run's snapshot, `routing.snapshot`) has not re-entered the queue. A returner is
offered as usual. The window ends when the last expected caller is back, or at its deadline:
a caller who hung up meanwhile never holds anybody beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from routing.model import Caller

__all__ = ["GRACE_TIMER", "RestartGrace"]

GRACE_TIMER = "grace"


class RestartGrace:
    """Who the ACD waits for, until when; `holds` answers for one caller."""

    def __init__(self, clock: Callable[[], float], add_timer: Callable[[float, str, str], None]):
        self._clock = clock
        self._add_timer = add_timer
        self.since = math.inf
        self.until = -math.inf
        self.expected: set[str] = set()

    def begin(self, seconds: float, expected: Iterable[str]) -> None:
        """Hold newcomers for up to `seconds` from now, until each of `expected` is back."""
        self.expected = set(expected)
        if seconds <= 0 or not self.expected:
            return
        self.since = self._clock()
        self.until = self.since + seconds
        self._add_timer(self.until, GRACE_TIMER, "")

    @property
    def active(self) -> bool:
        return bool(self.expected) and self._clock() < self.until

    def arrived(self, call_id: str) -> None:
        """A caller joined the queue: one fewer to wait for, maybe the last."""
        if call_id not in self.expected:
            return
        self.expected.discard(call_id)
        if not self.expected and self.until > self._clock():
            self.until = self._clock()
            self._add_timer(self.until, GRACE_TIMER, "")  # serve the newcomers held so far

    def holds(self, caller: Caller) -> bool:
        """True if `caller` is a newcomer the window keeps from an operator for now."""
        return self.active and caller.first_arrival >= self.since
