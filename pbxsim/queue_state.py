"""What the simulated app_queue keeps per queue, member, waiting caller and device: the
state the AMI half lists (``QueueStatus``, ``queue show``) and the operators behind the members.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from pbxsim.model import SimChannel
from pbxsim.queue_config import (
    QueueConfig,
)

Headers = list[tuple[str, str]]


CAUSE_TEXT: Final = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 21: "Call Rejected"}


PENALTY_WEIGHT: Final = 1_000_000  # app_queue adds penalty * 1000000 to every metric


# Queue() options this simulator acts on; the others (t, T, x, X, k, K, h, H, i, I, w, W...)
# only change what happens inside a bridge, which it does not model.
NO_RETRY, RING_NOT_MOH, CONTINUE_AFTER = "n", "r", "c"


class DeviceState(IntEnum):
    """Asterisk's device states: the number is a member's ``Status``, the name the ``State`` of
    ``DeviceStateChange``."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8

    @property
    def cli_text(self) -> str:
        """How ``queue show`` prints it."""
        return {
            DeviceState.NOT_INUSE: "Not in use",
            DeviceState.INUSE: "In use",
            DeviceState.RINGINUSE: "Ring+Inuse",
            DeviceState.ONHOLD: "On Hold",
        }.get(self, self.name.capitalize())


@dataclass(frozen=True)
class Operator:
    """The simulated person and softphone behind a member interface."""

    answers: bool = True
    ring_delay: float = 0.0  # seconds from the ring to the answer
    talk_time: float = 4.9  # seconds from the answer to the operator hanging up
    # A fresh talk time per call (a handle-time distribution); talk_time when None.
    talk_times: Callable[[], float] | None = None
    # A configured seat whose softphone has not registered: Asterisk lists it UNAVAILABLE.
    registered: bool = True

    @property
    def device_state(self) -> DeviceState:
        """The state Asterisk's cache holds for the idle seat (``DeviceStateList``)."""
        return DeviceState.NOT_INUSE if self.registered else DeviceState.UNAVAILABLE

    def next_talk_time(self) -> float:
        return self.talk_time if self.talk_times is None else max(0.0, self.talk_times())


@dataclass(eq=False)
class Member:
    """A queue member, with the fields app_queue prints for it."""

    queue: str
    interface: str
    name: str
    state_interface: str
    penalty: int
    dynamic: bool
    login_time: int
    ringinuse: bool = True
    calls: int = 0
    last_call: int = 0
    last_pause: int = 0
    paused: bool = False
    paused_reason: str = ""
    status: DeviceState = DeviceState.NOT_INUSE
    in_call: bool = False
    wrapuptime: int = 0  # 0: the queue's

    def _common(self) -> Headers:
        return [
            ("Membership", "dynamic" if self.dynamic else "static"),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", str(int(self.in_call))),
            ("Status", str(int(self.status))),
            ("Paused", str(int(self.paused))),
            ("PausedReason", self.paused_reason),
        ]

    def blob(self) -> Headers:
        """The headers of QueueMemberAdded/Removed/Pause/Status."""
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
            *self._common(),
            ("Ringinuse", str(int(self.ringinuse))),
            ("Wrapuptime", str(self.wrapuptime)),
        ]

    def status_entry(self) -> Headers:
        """The headers of a QueueStatus ``QueueMember`` event, before its ActionID."""
        return [
            ("Queue", self.queue),
            ("Name", self.name),
            ("Location", self.interface),
            ("StateInterface", self.state_interface),
            *self._common(),
            ("Wrapuptime", str(self.wrapuptime)),
        ]


@dataclass
class QueueStats:
    """The counters app_queue keeps per queue (``holdtime``/``talktime`` are its running
    averages, in seconds)."""

    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0


@dataclass(eq=False)
class MemberLeg:
    """The member side of one ring: the dialed channel (``DestChannel`` in events) and, for Local
    interfaces, its other half that runs the member's dialplan."""

    member: Member
    caller: SimChannel
    one: SimChannel
    two: SimChannel | None
    dialed_us: int
    answered_us: int = 0


@dataclass(eq=False)
class QueueCall:
    """A caller inside ``Queue()``."""

    channel: SimChannel
    queue: Queue
    options: str
    joined_us: int
    joined: int
    original_position: int
    deadline_us: int | None
    ringing: list[MemberLeg] = field(default_factory=list)
    connected: MemberLeg | None = None
    bridge: str = ""
    waiting: bool = True

    @property
    def moh(self) -> bool:
        return RING_NOT_MOH not in self.options


class QueueSignal:
    """Wakes every waiter when a queue's state changes (a member freed, unpaused, added...).
    Each waiter gets its own future, so one caller giving up does not cancel the others' wait."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Queue:
    """One queue: its settings, members (in the order they joined), waiting callers, counters."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.members: dict[str, Member] = {}
        self.callers: list[QueueCall] = []
        self.stats = QueueStats()
        self.changed = QueueSignal()

    @property
    def name(self) -> str:
        return self.config.name

    def position(self, call: QueueCall) -> int:
        return self.callers.index(call) + 1

    def params(self) -> Headers:
        """QueueStatus's ``QueueParams`` headers, before its ActionID."""
        s = self.stats
        sl = 100 * s.completed_in_sl / s.completed if s.completed else 0.0
        both = s.completed + s.abandoned
        sl2 = 100 * (s.completed_in_sl + s.abandoned_in_sl) / both if both else 0.0
        return [
            ("Queue", self.name),
            ("Max", str(self.config.maxlen)),
            ("Strategy", self.config.strategy),
            ("Calls", str(len(self.callers))),
            ("Holdtime", str(s.holdtime)),
            ("TalkTime", str(s.talktime)),
            ("Completed", str(s.completed)),
            ("Abandoned", str(s.abandoned)),
            ("ServiceLevel", str(self.config.servicelevel)),
            ("ServicelevelPerf", f"{sl:2.1f}"),
            ("ServicelevelPerf2", f"{sl2:2.1f}"),
            ("Weight", str(self.config.weight)),
        ]

    def entries(self, now: int) -> list[Headers]:
        """QueueStatus's ``QueueEntry`` headers for each waiting caller, before ActionID."""
        return [
            [
                ("Queue", self.name),
                ("Position", str(position)),
                ("Channel", call.channel.name),
                ("Uniqueid", call.channel.uniqueid),
                ("CallerIDNum", call.channel.caller_id_num),
                ("CallerIDName", call.channel.caller_id_name),
                ("ConnectedLineNum", call.channel.connected_num),
                ("ConnectedLineName", call.channel.connected_name),
                ("Wait", str(now - call.joined)),
                ("Priority", "0"),
            ]
            for position, call in enumerate(self.callers, start=1)
        ]

    def summary(self, now: int) -> Headers:
        """QueueSummary's headers, before its ActionID."""
        present = [m for m in self.members.values() if m.status not in GONE_STATES]
        free = [m for m in present if m.status in FREE_STATES and not m.paused]
        longest = max((now - call.joined for call in self.callers), default=0)
        return [
            ("Queue", self.name),
            ("LoggedIn", str(len(present))),
            ("Available", str(len(free))),
            ("Callers", str(len(self.callers))),
            ("HoldTime", str(self.stats.holdtime)),
            ("TalkTime", str(self.stats.talktime)),
            ("LongestHoldTime", str(longest)),
        ]

    def cli_lines(self, now: int) -> list[str]:
        """This queue in ``queue show``."""
        s, c = self.stats, self.config
        sl = 100 * s.completed_in_sl / s.completed if s.completed else 0.0
        both = s.completed + s.abandoned
        sl2 = 100 * (s.completed_in_sl + s.abandoned_in_sl) / both if both else 0.0
        limit = str(c.maxlen) if c.maxlen else "unlimited"
        lines = [
            f"{self.name} has {len(self.callers)} calls (max {limit}) in '{c.strategy}' strategy "
            f"({s.holdtime}s holdtime, {s.talktime}s talktime), W:{c.weight}, C:{s.completed}, "
            f"A:{s.abandoned}, SL:{sl:2.1f}%, SL2:{sl2:2.1f}% within {c.servicelevel}s"
        ]
        if self.members:
            lines.append("   Members: ")
            lines += [_cli_member(m, now) for m in self.members.values()]
        else:
            lines.append("   No Members")
        if self.callers:
            lines.append("   Callers: ")
            for position, call in enumerate(self.callers, start=1):
                wait = now - call.joined
                lines.append(
                    f"      {position}. {call.channel.name} (wait: {wait // 60}:{wait % 60:02d}, "
                    "prio: 0)"
                )
        else:
            lines.append("   No Callers")
        lines.append("")
        return lines


GONE_STATES: Final = frozenset({DeviceState.UNAVAILABLE, DeviceState.INVALID})


FREE_STATES: Final = frozenset({DeviceState.NOT_INUSE, DeviceState.UNKNOWN})


def _cli_member(member: Member, now: int) -> str:
    text = f"      {member.name}"
    if member.name != member.interface:
        text += f" ({member.interface})"
    if member.penalty:
        text += f" with penalty {member.penalty}"
    text += f" (ringinuse {'enabled' if member.ringinuse else 'disabled'})"
    text += " (dynamic)" if member.dynamic else ""
    text += " (in call)" if member.in_call else ""
    if member.paused:
        reason = f":{member.paused_reason}" if member.paused_reason else ""
        text += f" (paused{reason} was {now - member.last_pause} secs ago)"
    text += f" ({member.status.cli_text})"
    if member.calls:
        text += f" has taken {member.calls} calls (last was {now - member.last_call} secs ago)"
    else:
        text += " has taken no calls yet"
    return text + f" (login was {now - member.login_time} secs ago)"


def device_of(interface: str) -> str:
    """The device whose state a member follows: ``Local/agent1@agents/n`` -> ``Local/agent1@agents``
    (Local channel options are not part of the device)."""
    if interface.startswith("Local/"):
        return "/".join(interface.split("/")[:2])
    return interface


class DeviceStates:
    """Asterisk's device-state cache: a change is announced only when the state differs from the
    cached one, and the cache outlives members (a member re-added with its old state makes no
    ``DeviceStateChange``, as ami-actions.txt shows)."""

    def __init__(self) -> None:
        self._states: dict[str, DeviceState] = {}

    def get(self, device: str) -> DeviceState | None:
        return self._states.get(device)

    def seed(self, device: str, state: DeviceState) -> None:
        """Record a state without announcing it: history from before anyone listened."""
        self._states[device] = state

    def update(self, device: str, state: DeviceState) -> bool:
        """Store ``state``; True when it is a change to announce."""
        if self._states.get(device) == state:
            return False
        self._states[device] = state
        return True

    def known(self) -> list[tuple[str, DeviceState]]:
        """Every cached (device, state), in the order first seen (``DeviceStateList``)."""
        return list(self._states.items())
