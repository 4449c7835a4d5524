"""A callback's conference replayed against ami-confbridge-callback.txt (a real Asterisk
22.10.1: the operator's leg and the citizen's Local leg meet in ``hotline-callback-<id>``, the
operator hangs up, the citizen is kicked by end_marked_any).

The simulator's `ScriptedOriginator` must print the conference's events in Asterisk's order
with its headers, and end both legs with cause 16. Out of its scope (it places the legs but
runs neither their dialplan nor their media): the legs' dialplan position in the channel block
(Asterisk shows the ConfBridge() line's priority), the citizen's Local;2 half and the trunk
channel behind it, music on hold, the softmix bridge's BridgeEnter/Leave, the RTCP and QoS
variables. The bridge's uniqueid is random in both.
"""

from __future__ import annotations

import asyncio

from test_sim_agi import RecordingSink, ami_messages

from pbxsim.ami_originate import OriginateRequest
from pbxsim.originator import ScriptedOriginator

EVENTS = ("ConfbridgeStart", "ConfbridgeJoin", "ConfbridgeLeave", "ConfbridgeEnd", "Hangup")
OPERATOR = "PJSIP/1007"
CITIZEN = "Local/79161234567@hotline-callback-out"


def leg_of(channel: str | None) -> str | None:
    """Which leg an event is about; the citizen's is the Local channel's ;1 half."""
    if channel is None:
        return "conference"
    if channel.startswith(f"{OPERATOR}-"):
        return "operator"
    if channel.startswith(CITIZEN) and channel.endswith(";1"):
        return "citizen"
    if channel.startswith(CITIZEN.split("@")[0]) and ";" not in channel:
        return "citizen"  # the simulator names the Local leg without its ;1
    return None


def real() -> list[tuple[str, dict[str, str]]]:
    found = [(m.name, m.as_dict()) for _, m in ami_messages("ami-confbridge-callback.txt")]
    return [(e, h) for e, h in found if e in EVENTS and leg_of(h.get("Channel"))]


async def simulated() -> list[tuple[str, dict[str, str]]]:
    sink = RecordingSink()
    originator = ScriptedOriginator(sink=sink)
    bridge = (("CALLBACK_BRIDGE", "hotline-callback-1"), ("CALLBACK_ID", "1"))
    operator = await originator.originate(
        OriginateRequest(OPERATOR, "hotline-callback-operator", "s", variables=bridge)
    )
    await originator.originate(
        OriginateRequest(CITIZEN, "hotline-callback-caller", "s", variables=bridge)
    )
    assert operator.channel is not None
    originator.hang_up(operator.channel)  # the operator's BYE
    await asyncio.sleep(0)
    return [(e, dict(h)) for e, h in sink.events if e in EVENTS]


async def test_conference_events_in_asterisks_order() -> None:
    ours = [(e, leg_of(h.get("Channel"))) for e, h in await simulated()]
    assert ours == [(e, leg_of(h.get("Channel"))) for e, h in real()]


async def test_conference_events_have_asterisks_headers() -> None:
    skip = ("Event", "Privilege")
    for (event, ours), (_, theirs) in zip(await simulated(), real(), strict=True):
        assert list(ours) == [k for k in theirs if k not in skip], event
        for key in ("Conference", "BridgeType", "BridgeTechnology", "BridgeCreator"):
            assert ours.get(key) == theirs.get(key), (event, key)
        assert ours.get("BridgeNumChannels") == theirs.get("BridgeNumChannels"), event
        for key in ("Admin", "Muted", "Cause", "Cause-txt", "ChannelState", "Context", "Exten"):
            assert ours.get(key) == theirs.get(key), (event, key)
