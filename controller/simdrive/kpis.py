"""The ACD's figures as the simulated PBX sees them: offered, answered, abandoned, ASA,
service level and occupancy, measured from the simulator's own events, never from the
controller's word (a live run checks the controller, it does not ask it).

`KpiObserver` sits in the event path (it is an `EventSink` that passes every event on):

- a caller *joins a queue* at their first ``MusicOnHoldStart`` (the controller's ACD plays hold
  music while the caller waits) or ``QueueCallerJoin`` (Asterisk's own queue): that call is
  *offered*;
- ``DialEnd`` with ``DialStatus: ANSWER`` for that caller is the answer; the wait is the time
  from joining to it;
- an offered call that ends unanswered was *abandoned* if the caller hung up, else it
  *overflowed* (the menu's overflow path took it: callback offer, voice message, goodbye);
- an operator's phone is busy from ``DialBegin`` to the ``Hangup`` of the operator's channel
  (ringing and talking; the wrap-up after a call is the controller's and is not seen here).

Times are simulated seconds (`clock` gives them), so ASA and the service level read as they
would on the real line whatever the run's time scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pbxsim.model import EventSink
from pbxsim.runner import CallOutcome

__all__ = ["GroupKpis", "KpiObserver"]

_JOIN_EVENTS = frozenset({"MusicOnHoldStart", "QueueCallerJoin"})


@dataclass
class GroupKpis:
    """Counters of one group (or of the whole run)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    waits: list[float] = field(default_factory=list)  # of answered calls

    def add(self, outcome: str, wait: float | None) -> None:
        self.offered += 1
        if outcome == "answered":
            self.answered += 1
            self.waits.append(wait or 0.0)
        elif outcome == "abandoned":
            self.abandoned += 1
        else:
            self.overflowed += 1

    def as_dict(self, service_seconds: float) -> dict[str, Any]:
        asa = sum(self.waits) / len(self.waits) if self.waits else 0.0
        within = sum(1 for w in self.waits if w <= service_seconds)
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "overflowed": self.overflowed,
            "asa": round(asa, 2),
            "service_level": round(within / self.answered, 4) if self.answered else None,
        }


class KpiObserver:
    """Watches the simulator's events on their way to `forward` (the AMI server, or None)."""

    def __init__(self, clock: Callable[[], float], forward: EventSink | None = None) -> None:
        self._clock = clock
        self._forward = forward
        self.joined: dict[str, float] = {}  # caller uniqueid -> when they joined a queue
        self.answered: dict[str, float] = {}  # caller uniqueid -> wait until the answer
        self._ringing: dict[str, tuple[str, float]] = {}  # operator channel uid -> (device, t)
        self.busy_seconds: dict[str, float] = {}  # device -> ringing + talking time
        self.devices_seen: set[str] = set()

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self._observe(event, headers)
        if self._forward is not None:
            self._forward.emit(event, headers)

    def _observe(self, event: str, headers: list[tuple[str, str]]) -> None:
        if event not in _JOIN_EVENTS and event not in ("DialBegin", "DialEnd", "Hangup"):
            return  # the common case: nothing to look up
        h = dict(headers)
        now = self._clock()
        uid = h.get("Uniqueid", "")
        if event in _JOIN_EVENTS:
            self.joined.setdefault(uid, now)
        elif event == "DialBegin":
            device = h.get("DestChannel", "").rpartition("-")[0]
            self.devices_seen.add(device)
            self._ringing[h.get("DestUniqueid", "")] = (device, now)
        elif event == "DialEnd" and h.get("DialStatus") == "ANSWER" and uid in self.joined:
            self.answered.setdefault(uid, now - self.joined[uid])
        elif event == "Hangup" and uid in self._ringing:
            device, since = self._ringing.pop(uid)
            self.busy_seconds[device] = self.busy_seconds.get(device, 0.0) + now - since

    def outcome(self, call: CallOutcome) -> str | None:
        """answered | abandoned | overflowed for a call that joined a queue, else None."""
        if call.uniqueid not in self.joined:
            return None
        if call.uniqueid in self.answered:
            return "answered"
        return "abandoned" if call.caller_hung_up else "overflowed"

    def summary(
        self,
        calls: tuple[CallOutcome, ...],
        *,
        staffed_seconds: float,
        service_seconds: float = 20.0,
        group_of: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The run's figures; `staffed_seconds` is the operator-time on duty (operators times
        the time each was logged in); `group_of` names the group of each caller uniqueid."""
        total = GroupKpis()
        groups: dict[str, GroupKpis] = {}
        left_in_menu = never_queued = 0
        for call in calls:
            outcome = self.outcome(call)
            if outcome is None:  # hung up in the menu, or the menu ended the call itself
                left_in_menu += call.caller_hung_up
                never_queued += not call.caller_hung_up
                continue
            wait = self.answered.get(call.uniqueid)
            total.add(outcome, wait)
            if group_of is not None and call.uniqueid in group_of:
                groups.setdefault(group_of[call.uniqueid], GroupKpis()).add(outcome, wait)
        busy = sum(self.busy_seconds.values())
        figures = total.as_dict(service_seconds)
        figures["left_in_menu"] = left_in_menu
        figures["never_queued"] = never_queued
        figures["service_seconds"] = service_seconds
        figures["occupancy"] = round(busy / staffed_seconds, 4) if staffed_seconds > 0 else None
        if groups:
            figures["groups"] = {
                name: kpis.as_dict(service_seconds) for name, kpis in sorted(groups.items())
            }
        return figures
