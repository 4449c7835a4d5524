"""The simulated PBX's call queues, as Asterisk 22's app_queue runs them, and the operators'
softphones behind the queue members.

What a controller sees of a queue is AMI events and ``QUEUESTATUS``; this module produces both with
the header layouts of tests/data/asterisk/ami-queue-*.txt:

* a caller joins (``QueueCallerJoin``, music on hold), waits its turn, and members are rung one at
  a time (``leastrecent``, ``fewestcalls``, ``linear``) or all together (``ringall``), each for the
  queue's ``timeout`` with ``retry`` seconds between rounds; a member that does not answer gives
  ``AgentRingNoAnswer``; one who does gives ``AgentConnect`` and, when either side hangs up,
  ``AgentComplete``; a caller who hangs up while waiting gives ``QueueCallerAbandon``;
* members are paused with a reason, added and removed (from queues.conf or over AMI), and follow
  their softphone's device state (``QueueMemberStatus``), with ``wrapuptime`` after each call;
* the member side of each call is a Local channel pair (``Local/agent1@agents-00000004;1``/``;2``)
  with the channel, dial and bridge events Asterisk prints for it.

Simplified on purpose: ``joinempty``/``leavewhenempty`` are yes/no (no per-status lists), no
announcements, no penalty rules, no realtime members, one softphone call model for every
technology (the device is in use while it has an answered call, as Local channels behave).

The caller's hang-up reaches `Queues.enter` as task cancellation: the AGI half cancels the task
running ``Queue()`` when the simulated caller hangs up, exactly where a real channel would see it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Final

from hotline.clock import EpochClock
from pbxsim.model import ChannelState, EventSink, NullSink, SimChannel
from pbxsim.stamps import IdSource

Headers = list[tuple[str, str]]

STRATEGIES: Final = frozenset({"ringall", "leastrecent", "fewestcalls", "linear"})
# Queue() options this simulator acts on; the others (t, T, x, X, k, K, h, H, i, I, w, W...)
# only change what happens inside a bridge, which it does not model.
_NO_RETRY, _RING_NOT_MOH, _CONTINUE = "n", "r", "c"
_CAUSE_TEXT: Final = {0: "Unknown", 16: "Normal Clearing"}
_PENALTY_WEIGHT: Final = 1_000_000  # app_queue adds penalty * 1000000 to every metric


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


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberConfig:
    """One ``member => interface,penalty,name,state_interface`` line."""

    interface: str
    penalty: int = 0
    name: str = ""
    state_interface: str = ""

    @classmethod
    def parse(cls, value: str) -> MemberConfig:
        parts = [part.strip() for part in value.split(",")]
        penalty = int(parts[1]) if len(parts) > 1 and parts[1] else 0
        name = parts[2] if len(parts) > 2 else ""
        state = parts[3] if len(parts) > 3 else ""
        return cls(parts[0], penalty, name, state)


@dataclass(frozen=True)
class QueueConfig:
    """A queue's settings; defaults are app_queue's."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    maxlen: int = 0
    servicelevel: int = 0
    weight: int = 0
    joinempty: bool = True
    leavewhenempty: bool = False
    ringinuse: bool = True
    musicclass: str = "default"
    members: tuple[MemberConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"queue {self.name}: strategy {self.strategy!r} is not simulated")


_INT_KEYS: Final = ("timeout", "retry", "wrapuptime", "maxlen", "servicelevel", "weight")
_BOOL_KEYS: Final = ("joinempty", "leavewhenempty", "ringinuse")


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def _queue_from_pairs(name: str, pairs: Iterable[tuple[str, str]]) -> QueueConfig:
    settings: dict[str, object] = {}
    members: list[MemberConfig] = []
    for key, value in pairs:
        key = key.strip().lower().replace("-", "")
        if key == "member":
            members.append(MemberConfig.parse(value))
        elif key == "strategy":
            settings["strategy"] = value.strip().lower()
        elif key in _INT_KEYS:
            settings[key] = int(value)
        elif key in _BOOL_KEYS:
            settings[key] = _truthy(value)
        elif key == "musicclass":
            settings[key] = value.strip()
        # Every other app_queue option (announcements, rules...) is accepted and ignored.
    return QueueConfig(name=name, members=tuple(members), **settings)  # type: ignore[arg-type]


def parse_queues_conf(text: str) -> dict[str, QueueConfig]:
    """The queues of a queues.conf (``[general]`` is not a queue)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            name = line[1 : line.index("]")].strip()
            current = None if name == "general" else sections.setdefault(name, [])
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current.append((key, value.removeprefix(">").strip()))
    return {name: _queue_from_pairs(name, pairs) for name, pairs in sections.items()}


def load_queues_conf(path: str | Path) -> dict[str, QueueConfig]:
    return parse_queues_conf(Path(path).read_text(encoding="utf-8"))


def queues_from_dict(data: Mapping[str, Mapping[str, object]]) -> dict[str, QueueConfig]:
    """Queues from plain data, e.g. ``{"info": {"strategy": "leastrecent", "members":
    ["Local/agent1@agents/n,0,Agent One"]}}``; a member may also be a mapping of
    `MemberConfig`'s fields."""
    result: dict[str, QueueConfig] = {}
    for name, settings in data.items():
        pairs = [(k, str(v)) for k, v in settings.items() if k != "members"]
        config = _queue_from_pairs(name, pairs)
        members = settings.get("members", [])
        if not isinstance(members, Iterable):
            raise ValueError(f"queue {name}: members must be a list")
        result[name] = replace(config, members=tuple(_member_from_data(m) for m in members))
    return result


def _member_from_data(item: object) -> MemberConfig:
    if isinstance(item, str):
        return MemberConfig.parse(item)
    if isinstance(item, Mapping):
        return MemberConfig(**item)
    raise ValueError(f"not a queue member: {item!r}")


# --- runtime state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """The simulated person and softphone behind a member interface."""

    answers: bool = True
    ring_delay: float = 0.0  # seconds from the ring to the answer
    talk_time: float = 4.9  # seconds from the answer to the operator hanging up
    # A fresh talk time per call (a handle-time distribution); talk_time when None.
    talk_times: Callable[[], float] | None = None

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
        return _RING_NOT_MOH not in self.options


class _Signal:
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
        self.changed = _Signal()

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
        present = [m for m in self.members.values() if m.status not in _GONE]
        free = [m for m in present if m.status in _FREE and not m.paused]
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


_GONE: Final = frozenset({DeviceState.UNAVAILABLE, DeviceState.INVALID})
_FREE: Final = frozenset({DeviceState.NOT_INUSE, DeviceState.UNKNOWN})


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


# --- the service -------------------------------------------------------------------------------


class Queues:
    """The simulated app_queue: implements `pbxsim.model.QueueService` for the AGI half and
    the queue actions for the AMI half."""

    def __init__(
        self,
        configs: Mapping[str, QueueConfig] | Iterable[QueueConfig],
        clock: EpochClock,
        *,
        sink: EventSink | None = None,
        operators: Mapping[str, Operator] | None = None,
        default_operator: Operator | None = None,
        ids: IdSource | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.ids: IdSource = ids or clock  # member legs' uniqueids and Local channel numbers
        self.sink: EventSink = sink or NullSink()
        self.devices = DeviceStates()
        self.operators: dict[str, Operator] = dict(operators or {})
        self.default_operator = default_operator or Operator()
        self._queues: dict[str, Queue] = {}
        self._pending: set[str] = set()  # interfaces being rung, not to be rung twice at once
        self._calls: Counter[str] = Counter()  # answered calls per device
        self._timers: set[asyncio.Task[None]] = set()
        self._random = random.Random(seed)  # bridge ids: reproducible in tests
        items = configs.values() if isinstance(configs, Mapping) else configs
        for config in items:
            self._load(config)

    # -- lookup and configuration

    def queue(self, name: str) -> Queue | None:
        return self._queues.get(name)

    def all(self) -> list[Queue]:
        return list(self._queues.values())

    def set_operator(self, interface: str, operator: Operator) -> None:
        self.operators[interface] = operator

    def _load(self, config: QueueConfig) -> None:
        queue = Queue(config)
        self._queues[config.name] = queue
        for item in config.members:
            member = self._new_member(queue, item, dynamic=False)
            queue.members[member.interface] = member
            self.devices.seed(_pause_device(member), DeviceState.NOT_INUSE)
        self.devices.seed(f"Queue:{config.name}", DeviceState.NOT_INUSE)
        self.devices.seed(_avail_device(queue), self._avail_state(queue))

    def _new_member(self, queue: Queue, item: MemberConfig, *, dynamic: bool) -> Member:
        return Member(
            queue=queue.name,
            interface=item.interface,
            name=item.name or item.interface,
            state_interface=item.state_interface or item.interface,
            penalty=item.penalty,
            dynamic=dynamic,
            login_time=self.clock.epoch(),
            ringinuse=queue.config.ringinuse,
            status=self._device_status(item.state_interface or item.interface),
        )

    async def close(self) -> None:
        """Stop the wrap-up timers (calls in queues end with their callers' tasks)."""
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)

    # -- AMI actions

    def add_member(
        self,
        queue: str,
        interface: str,
        *,
        name: str = "",
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
        state_interface: str = "",
    ) -> str:
        """QueueAdd: ``added``, ``exists`` or ``no-queue``."""
        q = self._queues.get(queue)
        if q is None:
            return "no-queue"
        if interface in q.members:
            return "exists"
        member = self._new_member(
            q, MemberConfig(interface, penalty, name, state_interface), dynamic=True
        )
        member.paused, member.paused_reason = paused, reason if paused else ""
        q.members[interface] = member
        self._device(_pause_device(member), DeviceState.INUSE if paused else DeviceState.NOT_INUSE)
        self._emit("QueueMemberAdded", member.blob())
        self._update_avail(q)
        q.changed.notify()
        return "added"

    def remove_member(self, queue: str, interface: str) -> str:
        """QueueRemove: ``removed``, ``not-there``, ``not-dynamic`` or ``no-queue``."""
        q = self._queues.get(queue)
        if q is None:
            return "no-queue"
        member = q.members.get(interface)
        if member is None:
            return "not-there"
        if not member.dynamic:
            return "not-dynamic"
        del q.members[interface]
        self._emit("QueueMemberRemoved", member.blob())
        self._update_avail(q)
        return "removed"

    def pause_member(
        self, interface: str, paused: bool, *, reason: str = "", queue: str | None = None
    ) -> bool:
        """QueuePause, in one queue or (``queue`` None) every queue: False if not a member."""
        targets = [
            q.members[interface]
            for q in self._queues.values()
            if interface in q.members and queue in (None, "", q.name)
        ]
        for member in targets:
            self._pause(member, paused, reason)
        return bool(targets)

    def _pause(self, member: Member, paused: bool, reason: str) -> None:
        q = self._queues[member.queue]
        member.paused = paused
        member.paused_reason = reason if paused else ""
        if paused:
            member.last_pause = self.clock.epoch()
        self._device(_pause_device(member), DeviceState.INUSE if paused else DeviceState.NOT_INUSE)
        self._update_avail(q)
        self._emit("QueueMemberPause", member.blob())
        q.changed.notify()

    # -- the Queue() application

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str:
        """Run ``Queue(queue,options,,,max_wait)`` for ``channel``; see `QueueService`. With the
        ``c`` option a conversation the operator ended gives ``CONTINUE``."""
        q = self._queues.get(queue)
        if q is None:
            return "UNKNOWN"
        refusal = self._refusal(q)
        if refusal:
            return refusal
        call = self._join(q, channel, options, max_wait)
        try:
            return await self._serve(call)
        except asyncio.CancelledError:
            self._caller_hung_up(call)
            raise

    def _refusal(self, q: Queue) -> str | None:
        if q.config.maxlen and len(q.callers) >= q.config.maxlen:
            return "FULL"
        if not q.config.joinempty and not self._any_available(q):
            return "JOINEMPTY"
        return None

    def _join(
        self, q: Queue, channel: SimChannel, options: str, max_wait: float | None
    ) -> QueueCall:
        now_us = self.clock.now_us()
        deadline = now_us + round(max_wait * 1_000_000) if max_wait else None
        for name in ("ANSWEREDTIME", "DIALEDTIME", "QUEUEWAIT"):
            self._set_var(channel, name, "")
            self._set_var(channel, f"{name}_MS", "")
        call = QueueCall(
            channel, q, options, now_us, self.clock.epoch(), len(q.callers) + 1, deadline
        )
        q.callers.append(call)
        self._device(f"Queue:{q.name}", DeviceState.RINGING)
        self._caller_event(
            "QueueCallerJoin",
            call,
            ("Position", str(q.position(call))),
            ("Count", str(len(q.callers))),
        )
        if call.moh:
            self._emit("MusicOnHoldStart", [*channel.headers(), ("Class", q.config.musicclass)])
        q.changed.notify()
        return call

    async def _serve(self, call: QueueCall) -> str:
        q = call.queue
        while True:
            if self._expired(call):
                return self._leave(call, "TIMEOUT")
            if q.config.leavewhenempty and not self._any_available(q):
                return self._leave(call, "LEAVEEMPTY")
            members = self._pick(call)
            if not members:
                await self._wait(call, None, q.changed.wait())
                continue
            leg = await self._ring(call, members)
            if leg is not None:
                return await self._talk(call, leg)
            if _NO_RETRY in call.options:
                return self._leave(call, "TIMEOUT")
            await self._wait(call, q.config.retry)

    def _leave(self, call: QueueCall, status: str) -> str:
        if call.moh:
            self._emit("MusicOnHoldStop", call.channel.headers())
        self._leave_queue(call)
        return status

    def _leave_queue(self, call: QueueCall) -> None:
        q = call.queue
        position = q.position(call)
        q.callers.remove(call)
        call.waiting = False
        if not q.callers:
            self._device(f"Queue:{q.name}", DeviceState.NOT_INUSE)
        self._caller_event(
            "QueueCallerLeave", call, ("Position", str(position)), ("Count", str(len(q.callers)))
        )
        q.changed.notify()

    def _expired(self, call: QueueCall) -> bool:
        return call.deadline_us is not None and self.clock.now_us() >= call.deadline_us

    def _remaining(self, call: QueueCall) -> float | None:
        if call.deadline_us is None:
            return None
        return max(call.deadline_us - self.clock.now_us(), 0) / 1_000_000

    async def _wait(
        self, call: QueueCall, seconds: float | None, wake: Awaitable[None] | None = None
    ) -> None:
        """Wait ``seconds`` (None: no limit), at most until the caller's deadline, or until
        ``wake`` completes."""
        remaining = self._remaining(call)
        limits = [s for s in (seconds, remaining) if s is not None]
        waits: list[Awaitable[object]] = [self.clock.sleep(min(limits))] if limits else []
        if wake is not None:
            waits.append(wake)
        await _first(*waits)

    # -- choosing members

    def _pick(self, call: QueueCall) -> list[Member]:
        q = call.queue
        if not self._our_turn(call):
            return []
        free = [m for m in q.members.values() if self._can_ring(q, m)]
        if not free:
            return []
        strategy = q.config.strategy
        if strategy == "ringall":
            best = min(m.penalty for m in free)
            return [m for m in free if m.penalty == best]
        # app_queue builds its list of candidates by prepending, so among equal metrics the
        # member listed last wins: ami-queue-call.txt rings Agent Two first.
        order = list(reversed(free)) if strategy != "linear" else free
        return [min(order, key=lambda m: self._metric(q, m))]

    def _metric(self, q: Queue, m: Member) -> int:
        strategy = q.config.strategy
        if strategy == "leastrecent":
            base = 1_000_000 - (self.clock.epoch() - m.last_call) if m.last_call else 0
        elif strategy == "fewestcalls":
            base = m.calls
        else:  # linear: the order members were listed in
            base = list(q.members.values()).index(m)
        return base + m.penalty * _PENALTY_WEIGHT

    def _our_turn(self, call: QueueCall) -> bool:
        """app_queue's autofill: as many callers ring at once as there are free members."""
        q = call.queue
        available = max(sum(1 for m in q.members.values() if self._is_available(q, m)), 1)
        ahead = 0
        for other in q.callers:
            if other is call:
                return ahead < available
            if not other.ringing:
                ahead += 1
        return False

    def _is_available(self, q: Queue, m: Member) -> bool:
        """app_queue's is_member_available: not paused, a usable device, out of wrap-up."""
        if m.paused or m.status in _GONE:
            return False
        if m.status not in _FREE and not m.ringinuse:
            return False
        wrapup = m.wrapuptime or q.config.wrapuptime
        return not (m.last_call and wrapup and self.clock.epoch() - wrapup < m.last_call)

    def _can_ring(self, q: Queue, m: Member) -> bool:
        return self._is_available(q, m) and m.interface not in self._pending

    def _any_available(self, q: Queue) -> bool:
        return any(self._is_available(q, m) for m in q.members.values())

    # -- ringing

    async def _ring(self, call: QueueCall, members: list[Member]) -> MemberLeg | None:
        """Ring ``members`` for the queue's timeout: the leg that answered, or None."""
        q = call.queue
        timeout = float(q.config.timeout) or None
        remaining = self._remaining(call)
        if remaining is not None and (timeout is None or remaining <= timeout):
            timeout = remaining  # app_queue's timeoutpriority=app: the caller's limit wins
        call.ringing = [self._dial(call, m) for m in members]
        answers = {asyncio.ensure_future(self._phone_rings(leg)): leg for leg in call.ringing}
        waits: list[Awaitable[object]] = list(answers)
        if timeout is not None:
            waits.append(self.clock.sleep(timeout))
        done = await _first(*waits)
        winner = next((answers[t] for t in answers if t in done and not t.cancelled()), None)
        legs, call.ringing = call.ringing, []
        for leg in legs:
            self._pending.discard(leg.member.interface)
            if leg is winner:
                continue
            if winner is None:
                self._ring_no_answer(call, leg)
            self._cancel_dial(leg, "NOANSWER" if winner is None else "CANCEL")
            self._hang_up_far_side(leg)
        if winner is not None:
            self._answer(call, winner)
        q.changed.notify()
        return winner

    async def _phone_rings(self, leg: MemberLeg) -> None:
        operator = self.operators.get(leg.member.interface, self.default_operator)
        if not operator.answers:
            await asyncio.get_running_loop().create_future()  # rings until cancelled
        await self.clock.sleep(operator.ring_delay)

    def _dial(self, call: QueueCall, member: Member) -> MemberLeg:
        """Create the member's channels and ring them: AgentCalled and DialBegin."""
        self._pending.add(member.interface)
        one, two = self._member_channels(call.channel, member)
        leg = MemberLeg(member, call.channel, one, two, self.clock.now_us())
        self._emit("Newchannel", one.headers())
        if two is not None:
            self._local_pair_events(call.channel, member, one, two)
        self._agent_event("AgentCalled", call, leg)
        self._emit(
            "DialBegin",
            [*call.channel.headers(), *one.headers("Dest"), ("DialString", member.interface)],
        )
        return leg

    def _member_channels(
        self, caller: SimChannel, member: Member
    ) -> tuple[SimChannel, SimChannel | None]:
        def channel(name: str, state: ChannelState, context: str, exten: str) -> SimChannel:
            return SimChannel(
                name=name,
                uniqueid=self.ids.uniqueid(),
                linkedid=caller.linkedid,
                context=context,
                exten=exten,
                state=state,
                language=caller.language,
            )

        if not member.interface.startswith("Local/"):
            name = f"{member.interface}-{self.ids.local_sequence()}"
            return channel(name, ChannelState.DOWN, "default", "s"), None
        exten, _, context = member.interface.split("/")[1].partition("@")
        base = f"{device_of(member.interface)}-{self.ids.local_sequence()}"
        one = channel(f"{base};1", ChannelState.DOWN, context or "default", exten)
        two = channel(f"{base};2", ChannelState.RING, context or "default", exten)
        return one, two

    def _local_pair_events(
        self, caller: SimChannel, member: Member, one: SimChannel, two: SimChannel
    ) -> None:
        """What a Local channel pair prints while it is set up to ring a member."""
        self._emit("Newchannel", two.headers())
        one.caller_id_num, one.caller_id_name = caller.caller_id_num, caller.caller_id_name
        self._newexten(one, "AppQueue", "(Outgoing Line)")
        self._emit("NewCallerid", [*one.headers(), _CALLING_PRES])
        dialed = member.interface.removeprefix("Local/")
        self._set_var(one, "DIALEDPEERNUMBER", dialed)
        self._set_var(two, "DIALEDPEERNUMBER", dialed)
        two.caller_id_num, two.caller_id_name = caller.caller_id_num, caller.caller_id_name
        two.connected_num, two.connected_name = caller.caller_id_num, caller.caller_id_name
        self._emit("NewCallerid", [*two.headers(), _CALLING_PRES])
        self._emit("NewConnectedLine", two.headers())
        self._emit(
            "LocalBridge",
            [
                *one.headers("LocalOne"),
                *two.headers("LocalTwo"),
                ("Context", two.context),
                ("Exten", two.exten),
                ("LocalOptimization", "No"),  # the /n in the interface
            ],
        )

    def _ring_no_answer(self, call: QueueCall, leg: MemberLeg) -> None:
        rang_ms = (self.clock.now_us() - leg.dialed_us) // 1000
        self._agent_event("AgentRingNoAnswer", call, leg, ("RingTime", str(rang_ms)))

    def _cancel_dial(self, leg: MemberLeg, status: str) -> None:
        """End a ring that was not answered; Local channels print the DialEnd twice."""
        for each in (status, "CANCEL") if leg.two is not None else (status,):
            self._emit(
                "DialEnd", [*leg.caller.headers(), *leg.one.headers("Dest"), ("DialStatus", each)]
            )
        if leg.two is not None:
            self._emit("HangupRequest", [*leg.two.headers(), ("Cause", "0")])
        self._hangup(leg.one, 0)

    def _hang_up_far_side(self, leg: MemberLeg) -> None:
        if leg.two is not None:
            self._emit("SoftHangupRequest", [*leg.two.headers(), ("Cause", "16")])
            self._hangup(leg.two, 0)

    # -- answered calls

    def _answer(self, call: QueueCall, leg: MemberLeg) -> None:
        """The operator picks up: the member's channels go up, the caller leaves the queue."""
        leg.answered_us = self.clock.now_us()
        if leg.two is not None:
            self._newexten(leg.two, "Answer", "")
            leg.two.state = ChannelState.UP
            self._emit("Newstate", leg.two.headers())
        self._call_started(leg.member)
        leg.one.state = ChannelState.UP
        self._emit("Newstate", leg.one.headers())
        if leg.two is not None:
            leg.one.exten = "s"
            self._newexten(leg.one, "AppQueue", "(Outgoing Line)")
        leg.one.connected_num = call.channel.caller_id_num
        leg.one.connected_name = call.channel.caller_id_name
        self._emit("NewConnectedLine", leg.one.headers())
        self._emit(
            "DialEnd", [*call.channel.headers(), *leg.one.headers("Dest"), ("DialStatus", "ANSWER")]
        )
        self._connect(call, leg)

    def _connect(self, call: QueueCall, leg: MemberLeg) -> None:
        q = call.queue
        waited_us = leg.answered_us - call.joined_us
        held = self.clock.epoch() - call.joined
        position = q.position(call)
        if call.moh:
            self._emit("MusicOnHoldStop", call.channel.headers())
        self._leave_queue(call)
        self._set_var(call.channel, "QUEUEPOSITION", str(position))
        self._set_var(call.channel, "QUEUEWAIT", str(waited_us // 1_000_000))
        self._set_var(call.channel, "QUEUEWAIT_MS", str(waited_us // 1000))
        rang = (leg.answered_us - leg.dialed_us) // 1_000_000
        self._agent_event(
            "AgentConnect", call, leg, ("HoldTime", str(held)), ("RingTime", str(rang))
        )
        q.stats.holdtime = ((q.stats.holdtime << 2) - q.stats.holdtime + held) >> 2
        call.connected = leg
        leg.member.in_call = True
        self._bridge(call, leg)

    def _bridge(self, call: QueueCall, leg: MemberLeg) -> None:
        call.bridge = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        self._emit("BridgeCreate", self._bridge_headers(call, 0))
        self._emit("BridgeEnter", [*self._bridge_headers(call, 1), *leg.one.headers()])
        self._emit("BridgeEnter", [*self._bridge_headers(call, 2), *call.channel.headers()])
        self._set_var(leg.one, "BRIDGEPEER", call.channel.name)
        self._set_var(call.channel, "BRIDGEPEER", leg.one.name)

    def _bridge_headers(self, call: QueueCall, count: int) -> Headers:
        return [
            ("BridgeUniqueid", call.bridge),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(count)),
            ("BridgeVideoSourceMode", "none"),
        ]

    async def _talk(self, call: QueueCall, leg: MemberLeg) -> str:
        operator = self.operators.get(leg.member.interface, self.default_operator)
        await self.clock.sleep(operator.next_talk_time())
        self._operator_hung_up(call, leg)
        return "CONTINUE" if _CONTINUE in call.options else "ANSWERED"

    def _operator_hung_up(self, call: QueueCall, leg: MemberLeg) -> None:
        """As at 6.235s in ami-queue-call.txt: the member side goes first, then the bridge."""
        call.connected = None
        if leg.two is not None:
            self._emit("SoftHangupRequest", [*leg.two.headers(), ("Cause", "16")])
            self._emit("HangupRequest", [*leg.one.headers(), ("Cause", "16")])
            self._hangup(leg.two, 16)
        self._set_var(leg.one, "BRIDGEPEER", "")
        self._set_var(call.channel, "BRIDGEPEER", "")
        self._emit("BridgeLeave", [*self._bridge_headers(call, 1), *leg.one.headers()])
        self._hangup(leg.one, 16)
        talked = self._complete(call, leg)
        self._caller_event(
            "AgentComplete", call, *self._member_fields(leg), *talked, ("Reason", "agent")
        )
        self._call_ended(leg.member)
        self._emit("BridgeLeave", [*self._bridge_headers(call, 0), *call.channel.headers()])
        self._emit("BridgeDestroy", self._bridge_headers(call, 0))
        self._set_times(call, leg)

    def _caller_hung_up_talking(self, call: QueueCall, leg: MemberLeg) -> None:
        """As at 24.824s in ami-queue-call.txt: the caller went, the member side follows."""
        call.connected = None
        talked = self._complete(call, leg)
        self._agent_event("AgentComplete", call, leg, *talked, ("Reason", "caller"))
        self._emit("BridgeLeave", [*self._bridge_headers(call, 1), *call.channel.headers()])
        self._emit("BridgeLeave", [*self._bridge_headers(call, 0), *leg.one.headers()])
        if leg.two is not None:
            self._emit("HangupRequest", [*leg.two.headers(), ("Cause", "16")])
        self._hangup(leg.one, 16)
        self._emit("BridgeDestroy", self._bridge_headers(call, 0))
        if leg.two is not None:
            self._emit("SoftHangupRequest", [*leg.two.headers(), ("Cause", "16")])
            self._hangup(leg.two, 16)
        self._call_ended(leg.member)

    def _complete(self, call: QueueCall, leg: MemberLeg) -> Headers:
        """app_queue's update_queue: the member's and the queue's counters after a call."""
        q, member, now = call.queue, leg.member, self.clock.epoch()
        held = leg.answered_us // 1_000_000 - call.joined
        talked = now - leg.answered_us // 1_000_000
        member.calls += 1
        member.last_call = now
        member.in_call = False
        stats = q.stats
        stats.completed += 1
        stats.completed_in_sl += held <= q.config.servicelevel
        stats.talktime = (
            talked
            if stats.completed == 1
            else ((stats.talktime << 2) - stats.talktime + talked) >> 2
        )
        self._wake_after_wrapup(q, member)
        return [("HoldTime", str(held)), ("TalkTime", str(talked))]

    def _set_times(self, call: QueueCall, leg: MemberLeg) -> None:
        now_us = self.clock.now_us()
        for name, since in (("ANSWEREDTIME", leg.answered_us), ("DIALEDTIME", leg.dialed_us)):
            self._set_var(call.channel, name, str((now_us - since) // 1_000_000))
            self._set_var(call.channel, f"{name}_MS", str((now_us - since) // 1000))

    def _wake_after_wrapup(self, q: Queue, member: Member) -> None:
        """Nothing else happens when a wrap-up ends, so a timer tells the waiting callers."""
        wrapup = member.wrapuptime or q.config.wrapuptime
        if not wrapup:
            return

        async def wake() -> None:
            await self.clock.sleep(wrapup)
            q.changed.notify()

        task = asyncio.ensure_future(wake())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # -- the caller hangs up

    def _caller_hung_up(self, call: QueueCall) -> None:
        if call.connected is not None:
            self._caller_hung_up_talking(call, call.connected)
        elif call.waiting:
            self._abandon(call)

    def _abandon(self, call: QueueCall) -> None:
        """As at 14.308s in ami-queue-abandon-and-no-answer.txt."""
        q = call.queue
        if call.moh:
            self._emit("MusicOnHoldStop", call.channel.headers())
        legs, call.ringing = call.ringing, []
        for leg in legs:
            self._pending.discard(leg.member.interface)
            self._cancel_dial(leg, "CANCEL")
        waited = self.clock.epoch() - call.joined
        self._caller_event(
            "QueueCallerAbandon",
            call,
            ("Position", str(q.position(call))),
            ("OriginalPosition", str(call.original_position)),
            ("HoldTime", str(waited)),
        )
        q.stats.abandoned += 1
        q.stats.abandoned_in_sl += waited <= q.config.servicelevel
        self._leave_queue(call)
        for leg in legs:
            self._hang_up_far_side(leg)

    # -- device and member states

    def _device_status(self, state_interface: str) -> DeviceState:
        busy = self._calls[device_of(state_interface)]
        return DeviceState.INUSE if busy else DeviceState.NOT_INUSE

    def _call_started(self, member: Member) -> None:
        self._calls[device_of(member.state_interface)] += 1
        self._device_changed(device_of(member.state_interface))

    def _call_ended(self, member: Member) -> None:
        self._calls[device_of(member.state_interface)] -= 1
        self._device_changed(device_of(member.state_interface))

    def _device_changed(self, device: str) -> None:
        state = self._device_status(device)
        self._device(device, state)
        for q in self._queues.values():
            for member in q.members.values():
                if device_of(member.state_interface) == device and member.status != state:
                    member.status = state
                    self._emit("QueueMemberStatus", member.blob())
            self._update_avail(q)
            q.changed.notify()

    def _avail_state(self, q: Queue) -> DeviceState:
        free = any(not m.paused and m.status not in _GONE for m in q.members.values())
        return DeviceState.NOT_INUSE if free else DeviceState.INUSE

    def _update_avail(self, q: Queue) -> None:
        self._device(_avail_device(q), self._avail_state(q))

    def _device(self, device: str, state: DeviceState) -> None:
        if self.devices.update(device, state):
            self._emit("DeviceStateChange", [("Device", device), ("State", state.name)])

    # -- event helpers

    def _emit(self, event: str, headers: Headers) -> None:
        self.sink.emit(event, headers)

    def _caller_event(self, event: str, call: QueueCall, *extra: tuple[str, str]) -> None:
        self._emit(event, [*call.channel.headers(), ("Queue", call.queue.name), *extra])

    @staticmethod
    def _member_fields(leg: MemberLeg) -> Headers:
        return [("Interface", leg.member.interface), ("MemberName", leg.member.name)]

    def _agent_event(
        self, event: str, call: QueueCall, leg: MemberLeg, *extra: tuple[str, str]
    ) -> None:
        self._emit(
            event,
            [
                *call.channel.headers(),
                *leg.one.headers("Dest"),
                ("Queue", call.queue.name),
                *self._member_fields(leg),
                *extra,
            ],
        )

    def _newexten(self, channel: SimChannel, app: str, data: str) -> None:
        self._emit(
            "Newexten",
            [
                *channel.headers(),
                ("Extension", channel.exten),
                ("Application", app),
                ("AppData", data),
            ],
        )

    def _set_var(self, channel: SimChannel, name: str, value: str) -> None:
        channel.variables[name] = value
        self._emit("VarSet", [*channel.headers(), ("Variable", name), ("Value", value)])

    def _hangup(self, channel: SimChannel, cause: int) -> None:
        self._emit(
            "Hangup",
            [
                *channel.headers(),
                ("Cause", str(cause)),
                ("Cause-txt", _CAUSE_TEXT.get(cause, "Unknown")),
            ],
        )


_CALLING_PRES: Final = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


def _pause_device(member: Member) -> str:
    return f"Queue:{member.queue}_pause_{member.interface}"


def _avail_device(q: Queue) -> str:
    return f"Queue:{q.name}_avail"


async def _first(*waits: Awaitable[object]) -> set[asyncio.Future[object]]:
    """Wait for the first of ``waits`` to finish and cancel the others, also when the waiting task
    itself is cancelled (the caller hanging up)."""
    tasks: list[asyncio.Future[object]] = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return done
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
