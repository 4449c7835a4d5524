"""A simulated `Originator` for AMI Originate: the called phones answer, ring out or are busy as
a test or scenario scripts them, and an answered call hangs up after ``talk_seconds``.

Outcomes are scripted per dial string fragment (a phone number or a device such as
``PJSIP/o1``): each Originate whose channel contains the fragment takes the next outcome of its
list; when the list is used up (or no fragment matches) ``default`` applies. The outcomes and
the Reason codes Asterisk 22 puts in ``OriginateResponse``:

    answer     4  (the callee picked up)
    no_answer  3  (rang until the Originate's Timeout)
    busy       5
    congestion 8
    fail       0  (the channel could not be created)

Every request is kept in ``calls`` in order, so a test can check who was dialled first. Each
outgoing channel (but a ``fail``, which creates none) is announced with ``Newchannel`` when
the Originate arrives, so AMI ``CoreShowChannels`` lists it while it rings; an answered one
goes ``Up`` (``Newstate``) and into its conference (``Newexten`` ConfBridge with the
conference's name, the ``ApplicationData`` CoreShowChannels shows), an unanswered one ends
with a ``Hangup`` carrying its Q.850 cause.

Callback conferences: answered legs that carry the same ``CALLBACK_BRIDGE`` variable meet in
one ConfBridge, configured as asterisk-conf/extensions.conf does it (every leg ``marked`` and
``end_marked_any``): when one leg hangs up, by its own ``talk_seconds`` or by the AMI
``Hangup`` action, the others are kicked and hang up too. A leg answered into a conference
left empty (the operator hung up during the ring) in ``guarded_context`` (the citizen's) is
hung up at once, as that context's guard does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from pbxsim.ami_originate import OriginateRequest, OriginateResult
from pbxsim.conference import Conferences
from pbxsim.model import ChannelState, EventSink, SimChannel

__all__ = ["OUTCOME_REASONS", "ScriptedOriginator"]

OUTCOME_REASONS: Final[Mapping[str, int]] = {
    "answer": 4,
    "no_answer": 3,
    "busy": 5,
    "congestion": 8,
    "fail": 0,
}


# Q.850 causes of the Hangup of a channel that was not answered (Asterisk's causes.h).
_UNANSWERED_CAUSES: Final[Mapping[str, tuple[str, str]]] = {
    "no_answer": ("19", "User alerting, no answer"),
    "busy": ("17", "User busy"),
    "congestion": ("34", "Circuit/channel congestion"),
}


@dataclass
class _Leg:
    """An answered outgoing channel, until it hangs up."""

    channel: str
    uniqueid: str
    bridge: str
    block: SimChannel  # the channel as its events print it
    timer: asyncio.TimerHandle | None = None
    joined: bool = False  # in its ConfBridge


@dataclass
class ScriptedOriginator:
    """Places simulated outgoing calls; plug it into ``AmiServer(originator=...)``."""

    script: dict[str, list[str]] = field(default_factory=dict)
    default: str = "answer"
    talk_seconds: float | None = None  # None: the answered call never hangs up by itself
    # Per dial string fragment, overriding talk_seconds (e.g. the citizen hangs up first).
    talk_seconds_for: dict[str, float] = field(default_factory=dict)
    ring_seconds: float = 0.0  # how long the phone rings before the outcome
    sink: EventSink | None = None  # where Hangup events go (the AmiServer)
    calls: list[OriginateRequest] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)  # channels, in the order they ended
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _legs: dict[str, _Leg] = field(default_factory=dict)  # live answered channels by name
    # The context whose dialplan refuses to join an empty conference (the citizen's leg).
    guarded_context: str = "hotline-callback-caller"
    _conferences: Conferences = field(default_factory=Conferences)

    def __post_init__(self) -> None:
        self._conferences.sink = self.sink
        for fragment, outcomes in self.script.items():
            unknown = [o for o in outcomes if o not in OUTCOME_REASONS]
            if unknown or self.default not in OUTCOME_REASONS:
                raise ValueError(f"unknown outcome(s) for {fragment!r}: {unknown or self.default}")

    def _outcome(self, channel: str) -> str:
        for fragment, outcomes in self.script.items():
            if fragment in channel and outcomes:
                return outcomes.pop(0)
        return self.default

    def _talk_seconds(self, channel: str) -> float | None:
        for fragment, seconds in self.talk_seconds_for.items():
            if fragment in channel:
                return seconds
        return self.talk_seconds

    async def originate(self, request: OriginateRequest) -> OriginateResult:
        self.calls.append(request)
        outcome = self._outcome(request.channel)
        if outcome == "fail":  # no channel was created
            return OriginateResult(answered=False, reason=OUTCOME_REASONS[outcome])
        leg = _new_leg(request, next(self._ids))
        self._emit("Newchannel", leg.block.headers())  # rings from now on (CoreShowChannels)
        if self.ring_seconds:
            await asyncio.sleep(self.ring_seconds)
        if outcome != "answer":
            cause, text = _UNANSWERED_CAUSES[outcome]
            self._emit("Hangup", [*leg.block.headers(), ("Cause", cause), ("Cause-txt", text)])
            return OriginateResult(answered=False, reason=OUTCOME_REASONS[outcome])
        leg.block.state = ChannelState.UP
        self._emit("Newstate", leg.block.headers())
        loop = asyncio.get_running_loop()
        alone = not any(other.bridge == leg.bridge for other in self._legs.values())
        self._legs[leg.channel] = leg
        if leg.bridge and alone and request.context == self.guarded_context:
            # The dialplan's guard: nobody left to talk to, so the leg ends right after the
            # answer (after the OriginateResponse, as the call_soon below orders it).
            loop.call_soon(self.hang_up, leg.channel)
        else:
            if leg.bridge:
                step = [("Extension", leg.block.exten), ("Application", "ConfBridge")]
                self._emit("Newexten", [*leg.block.headers(), *step, ("AppData", leg.bridge)])
                self._conferences.sink = self.sink
                self._conferences.join(leg.bridge, leg.block)
                leg.joined = True
            talk = self._talk_seconds(request.channel)
            if talk is not None:
                leg.timer = loop.call_later(talk, self.hang_up, leg.channel)
        return OriginateResult(answered=True, reason=4, channel=leg.channel, uniqueid=leg.uniqueid)

    def hang_up(self, channel: str) -> bool:
        """End an answered channel (its own hang-up or AMI Hangup); its conference ends too."""
        leg = self._legs.pop(channel, None)
        if leg is None:
            return False
        if leg.joined:  # ConfbridgeLeave of both, ConfbridgeEnd, then the Hangups
            self._conferences.sink = self.sink
            self._conferences.end_by(leg.bridge, leg.block)
        self._end(leg)
        if leg.bridge:
            for other in [o for o in self._legs.values() if o.bridge == leg.bridge]:
                del self._legs[other.channel]
                self._end(other)  # end_marked_any: a marked user left
        return True

    def _end(self, leg: _Leg) -> None:
        if leg.timer is not None:
            leg.timer.cancel()
        self.hung_up.append(leg.channel)
        cause = [("Cause", "16"), ("Cause-txt", "Normal Clearing")]
        self._emit("Hangup", [*leg.block.headers(), *cause])

    def _emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        if self.sink is not None:
            self.sink.emit(event, headers)

    def live_channels(self) -> list[str]:
        """Answered channels that have not hung up yet."""
        return list(self._legs)

    def dialled(self) -> list[str]:
        """The dial strings of every Originate so far, in order."""
        return [call.channel for call in self.calls]


def _new_leg(request: OriginateRequest, n: int) -> _Leg:
    """The outgoing channel of an Originate, named as Asterisk names it (``PJSIP/1007-00000001``,
    ``Local/79161234567@hotline-callback-out-00000002;1``: the Local channel's ;1 half; its ;2
    half and the trunk channel behind it are not simulated). The legs' dialplan is not run
    here: the block carries the Originate's context, extension and priority (Asterisk's would
    show the ConfBridge() line's)."""
    half = ";1" if request.channel.startswith("Local/") else ""
    name = f"{request.channel}-{n:08x}{half}"
    uniqueid = f"1795600000.{n}"
    block = SimChannel(
        name=name,
        uniqueid=uniqueid,
        linkedid=uniqueid,
        context=request.context,
        exten=request.exten,
        priority=request.priority,
        state=ChannelState.DOWN,
        caller_id_num=request.caller_id_num or "<unknown>",
        caller_id_name=request.caller_id_name or "<unknown>",
        connected_num=request.caller_id_num or "<unknown>",
        connected_name=request.caller_id_name or "<unknown>",
    )
    bridge = dict(request.variables).get("CALLBACK_BRIDGE", "")
    return _Leg(channel=name, uniqueid=uniqueid, bridge=bridge, block=block)
