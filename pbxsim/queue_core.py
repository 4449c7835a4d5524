"""The simulated app_queue's state and bookkeeping: queues loaded from their configuration,
device and member states, a caller leaving the queue, and the AMI events every step prints.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from typing import Final

from hotline.clock import EpochClock
from pbxsim.model import EventSink, NullSink, SimChannel
from pbxsim.queue_config import (
    MemberConfig,
    QueueConfig,
)
from pbxsim.queue_state import (
    CAUSE_TEXT,
    GONE_STATES,
    DeviceState,
    DeviceStates,
    Headers,
    Member,
    MemberLeg,
    Operator,
    Queue,
    QueueCall,
    device_of,
)
from pbxsim.stamps import IdSource

CALLING_PRES: Final = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


def pause_device(member: Member) -> str:
    return f"Queue:{member.queue}_pause_{member.interface}"


def avail_device(q: Queue) -> str:
    return f"Queue:{q.name}_avail"


async def first_of(*waits: Awaitable[object]) -> set[asyncio.Future[object]]:
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


class QueuesCore:
    """The state every part of the simulated app_queue works on, and how it reports it."""

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
        for interface, operator in self.operators.items():
            self.configure_seat(interface, operator)

    def configure_seat(self, interface: str, operator: Operator) -> None:
        """A softphone the PBX is configured with (a PJSIP endpoint): Asterisk knows its device
        from the start, registered or not, and lists it in ``DeviceStateList``."""
        device = device_of(interface)
        if self.devices.get(device) is None:
            self.devices.seed(device, operator.device_state)

    def _load(self, config: QueueConfig) -> None:
        queue = Queue(config)
        self._queues[config.name] = queue
        for item in config.members:
            member = self._new_member(queue, item, dynamic=False)
            queue.members[member.interface] = member
            self.devices.seed(pause_device(member), DeviceState.NOT_INUSE)
        self.devices.seed(f"Queue:{config.name}", DeviceState.NOT_INUSE)
        self.devices.seed(avail_device(queue), self._avail_state(queue))

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

    def _device_status(self, state_interface: str) -> DeviceState:
        busy = self._calls[device_of(state_interface)]
        return DeviceState.INUSE if busy else DeviceState.NOT_INUSE

    def _call_started(self, member: Member) -> None:
        self._calls[device_of(member.state_interface)] += 1
        self._device_changed(device_of(member.state_interface))

    def _call_ended(self, member: Member) -> None:
        self._calls[device_of(member.state_interface)] -= 1
        self._device_changed(device_of(member.state_interface))

    def register_seat(self, interface: str, contact: str, roundtrip_usec: int = 0) -> None:
        """A softphone registering, as res_pjsip reports it (ami-pjsip-registration.txt): its
        contact NonQualified, the peer Reachable, the contact Reachable after the first qualify
        (`roundtrip_usec`), then the device NOT_INUSE (a change only if it was not)."""
        device = device_of(interface)
        self._emit("ContactStatus", contact_status(contact, "NonQualified", device, 0))
        self._emit("PeerStatus", peer_status(device, "Reachable"))
        self._emit("ContactStatus", contact_status(contact, "Reachable", device, roundtrip_usec))
        self._device_changed(device, DeviceState.NOT_INUSE)

    def unregister_seat(self, interface: str, contact: str) -> None:
        """The softphone's REGISTER with ``Expires: 0``: the device UNAVAILABLE first, then
        the peer Unreachable and the contact Removed."""
        device = device_of(interface)
        self._device_changed(device, DeviceState.UNAVAILABLE)
        self._emit("PeerStatus", peer_status(device, "Unreachable"))
        self._emit("ContactStatus", contact_status(contact, "Removed", device, 0))

    def _device_changed(self, device: str, registration: DeviceState | None = None) -> None:
        state = registration or self._device_status(device)
        self._device(device, state)
        for q in self._queues.values():
            for member in q.members.values():
                if device_of(member.state_interface) == device and member.status != state:
                    member.status = state
                    self._emit("QueueMemberStatus", member.blob())
            self._update_avail(q)
            q.changed.notify()

    def _avail_state(self, q: Queue) -> DeviceState:
        free = any(not m.paused and m.status not in GONE_STATES for m in q.members.values())
        return DeviceState.NOT_INUSE if free else DeviceState.INUSE

    def _update_avail(self, q: Queue) -> None:
        self._device(avail_device(q), self._avail_state(q))

    def _device(self, device: str, state: DeviceState) -> None:
        if self.devices.update(device, state):
            self._emit("DeviceStateChange", [("Device", device), ("State", state.name)])

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
                ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")),
            ],
        )


def contact_status(contact: str, status: str, device: str, roundtrip_usec: int) -> Headers:
    """res_pjsip's ``ContactStatus`` of one contact of the AOR named like the endpoint."""
    endpoint = device.partition("/")[2]
    return [
        ("URI", contact),
        ("ContactStatus", status),
        ("AOR", endpoint),
        ("EndpointName", endpoint),
        ("RoundtripUsec", str(roundtrip_usec)),
    ]


def peer_status(device: str, status: str) -> Headers:
    """The ``PeerStatus`` chan_pjsip adds for an endpoint becoming (un)reachable."""
    return [("ChannelType", "PJSIP"), ("Peer", device), ("PeerStatus", status)]
