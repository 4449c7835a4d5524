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

How the work is shared: `queue_config` reads the configuration, `queue_state` holds the
queues, members and callers, `queue_core` the bookkeeping and events, `queue_members` the
member legs; `Queues` (here) is the service: the AMI actions and the caller's wait.

The caller's hang-up reaches `Queues.enter` as task cancellation: the AGI half cancels the task
running ``Queue()`` when the simulated caller hangs up, exactly where a real channel would see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pbxsim.model import SimChannel
from pbxsim.queue_config import (
    MemberConfig,
)
from pbxsim.queue_core import first_of, pause_device
from pbxsim.queue_members import MemberCalls
from pbxsim.queue_state import (
    FREE_STATES,
    GONE_STATES,
    NO_RETRY,
    PENALTY_WEIGHT,
    DeviceState,
    Member,
    Operator,
    Queue,
    QueueCall,
)


class Queues(MemberCalls):
    """The simulated app_queue: implements `pbxsim.model.QueueService` for the AGI half and
    the queue actions for the AMI half."""

    def queue(self, name: str) -> Queue | None:
        return self._queues.get(name)

    def all(self) -> list[Queue]:
        return list(self._queues.values())

    def set_operator(self, interface: str, operator: Operator) -> None:
        self.operators[interface] = operator
        self.configure_seat(interface, operator)

    async def close(self) -> None:
        """Stop the wrap-up timers (calls in queues end with their callers' tasks)."""
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)

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
        self._device(pause_device(member), DeviceState.INUSE if paused else DeviceState.NOT_INUSE)
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
        self._device(pause_device(member), DeviceState.INUSE if paused else DeviceState.NOT_INUSE)
        self._update_avail(q)
        self._emit("QueueMemberPause", member.blob())
        q.changed.notify()

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
            if NO_RETRY in call.options:
                return self._leave(call, "TIMEOUT")
            await self._wait(call, q.config.retry)

    def _leave(self, call: QueueCall, status: str) -> str:
        if call.moh:
            self._emit("MusicOnHoldStop", call.channel.headers())
        self._leave_queue(call)
        return status

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
        await first_of(*waits)

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
        return base + m.penalty * PENALTY_WEIGHT

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
        if m.paused or m.status in GONE_STATES:
            return False
        if m.status not in FREE_STATES and not m.ringinuse:
            return False
        wrapup = m.wrapuptime or q.config.wrapuptime
        return not (m.last_call and wrapup and self.clock.epoch() - wrapup < m.last_call)

    def _can_ring(self, q: Queue, m: Member) -> bool:
        return self._is_available(q, m) and m.interface not in self._pending

    def _any_available(self, q: Queue) -> bool:
        return any(self._is_available(q, m) for m in q.members.values())

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
