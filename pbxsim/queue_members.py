"""Ringing queue members and the calls they take: the Local channel pair of each member leg,
ring-no-answer, answer, bridge, talk, either side hanging up, and the wrap-up after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

from pbxsim.model import ChannelState, SimChannel
from pbxsim.queue_core import CALLING_PRES, QueuesCore, first_of
from pbxsim.queue_state import (
    CONTINUE_AFTER,
    Headers,
    Member,
    MemberLeg,
    Queue,
    QueueCall,
    device_of,
)


class MemberCalls(QueuesCore):
    """The member side of a queue call, from the first ring to the wrap-up."""

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
        done = await first_of(*waits)
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
        self._emit("NewCallerid", [*one.headers(), CALLING_PRES])
        dialed = member.interface.removeprefix("Local/")
        self._set_var(one, "DIALEDPEERNUMBER", dialed)
        self._set_var(two, "DIALEDPEERNUMBER", dialed)
        two.caller_id_num, two.caller_id_name = caller.caller_id_num, caller.caller_id_name
        two.connected_num, two.connected_name = caller.caller_id_num, caller.caller_id_name
        self._emit("NewCallerid", [*two.headers(), CALLING_PRES])
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
        return "CONTINUE" if CONTINUE_AFTER in call.options else "ANSWERED"

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
