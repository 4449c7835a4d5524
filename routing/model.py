"""The ACD core's records: callers, operators as the ACD sees them, offers, timer outcomes,
per-group totals, the core's settings and its error. Plain data, no behaviour beyond a key;
`operator_fields` and `caller_fields` are how a node writes them to the shared store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from routing.operators import OperatorSpec, OperatorState

__all__ = [
    "NO_ANSWER",
    "AcdError",
    "AcdOperator",
    "AcdSettings",
    "Caller",
    "GroupStats",
    "NoAnswer",
    "Offer",
    "OfferWithdrawn",
    "Overflow",
    "TickEvents",
    "caller_fields",
    "operator_fields",
]

NO_ANSWER = "no answer"  # the pause reason of an operator who let an offer ring out
S = OperatorState


class AcdError(ValueError):
    """A request the ACD cannot carry out (unknown call, operator or group)."""


class OfferWithdrawn(AcdError):
    """An operator answered an offer another node had already taken back (the operator is
    someone else's now): the expected outcome of a race between nodes, not a fault."""


@dataclass(frozen=True)
class AcdSettings:
    """Tunables of the routing core (defaults are the service's promises)."""

    recall_window_seconds: float = 600.0  # a caller calling back within this keeps their place
    service_level_seconds: float = 20.0  # "answered within 20 s"
    default_handle_seconds: float = 180.0  # expected-wait guess before any call was handled
    handle_time_samples: int = 50  # recent handle times kept per group
    # The ring timer fires this long after the offer's ring time. Dial's own timeout, started
    # a little after the offer, is the authority on "no answer" (routing.connect reports it);
    # the timer only backs it up. Without the margin an operator who picks up in the ring's
    # last instant is talking to the caller while the ACD has already moved on.
    ring_timer_grace_seconds: float = 0.0


@dataclass
class Caller:
    """A caller in the ACD, from queueing until the conversation ends (or they leave)."""

    call_id: str
    group: str
    number: str
    priority: int
    seq: int
    first_arrival: float  # kept across recalls, for reporting
    queued_at: float  # entered the current group's queue: widening and max wait count from here
    data: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    state: str = "waiting"  # waiting | ringing | talking | overflowed
    operator: str | None = None
    answered_at: float | None = None

    @property
    def key(self) -> tuple[int, float, int]:
        """Queue order: higher priority first, then earlier first arrival. The arrival time
        orders callers who re-entered after a controller restart (their arrival travels on
        the channel, their arrival number died with the old controller) among newcomers;
        the arrival number breaks ties (callers of the same instant, a hand-moved clock)."""
        return (-self.priority, self.first_arrival, self.seq)


@dataclass
class AcdOperator:
    """An operator as the ACD tracks them: state, phone registration, the call in hand."""

    spec: OperatorSpec
    state: OperatorState = S.LOGGED_OUT
    device_available: bool = True
    idle_since: float = 0.0
    pause_reason: str | None = None
    call_id: str | None = None
    until: float | None = None  # ring timeout or wrap-up end

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def offerable(self) -> bool:
        return self.state is S.READY and self.device_available


@dataclass(frozen=True)
class Offer:
    """Ring operator `operator_id` (phone `device`) for caller `call_id` until `ring_until`."""

    call_id: str
    operator_id: str
    device: str
    group: str
    ring_until: float


@dataclass(frozen=True)
class NoAnswer:
    """An offer the operator's phone did not answer (they are paused "no answer")."""

    operator_id: str
    call_id: str


@dataclass(frozen=True)
class Overflow:
    """A caller who may not (or may no longer) wait in their group."""

    call_id: str
    group: str
    reason: str  # max_wait | closed | nobody_logged_in
    overflow_group: str | None


@dataclass
class TickEvents:
    """What the timers due at one `Acd.tick` did, for the driver to act on."""

    offers: list[Offer] = field(default_factory=list)
    no_answer: list[NoAnswer] = field(default_factory=list)
    overflows: list[Overflow] = field(default_factory=list)
    readied: list[str] = field(default_factory=list)  # operators whose wrap-up time ended


@dataclass
class GroupStats:
    """Running totals per group, read by routing.metrics and the simulators."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within_sl: int = 0
    answer_wait_total: float = 0.0
    overflowed: int = 0


def operator_fields(op: AcdOperator) -> dict[str, str]:
    """An operator's record in the shared store (`routing.state`)."""
    return {
        "state": op.state.value,
        "device": "1" if op.device_available else "0",
        "reason": op.pause_reason or "",
        "call": op.call_id or "",
    }


def caller_fields(caller: Caller, node_id: str) -> dict[str, str]:
    """A caller's record in the shared store, held by node `node_id`."""
    return {
        "group": caller.group,
        "seq": str(caller.seq),
        "priority": str(caller.priority),
        "number": caller.number,
        "first_arrival": repr(caller.first_arrival),
        "data": json.dumps(caller.data, ensure_ascii=False),
        "history": json.dumps(caller.history, ensure_ascii=False),
        "node": node_id,
    }
