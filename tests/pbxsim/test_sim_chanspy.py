"""ChanSpy on an Originate's answered leg, as Asterisk 22 runs it (app_chanspy.c), and
manager.c's check of the applications an Originate may run, against the simulated AMI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from test_sim_agi import ami_messages

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiActionError
from hotline.ami.protocol import AmiMessage
from hotline.clock import SystemClock
from pbxsim.ami_accounts import ManagerUser, permission_set
from pbxsim.ami_server import AmiServer
from pbxsim.chanspy import originate_app_permitted
from pbxsim.model import ChannelState, SimChannel
from pbxsim.originator import ScriptedOriginator

OPERATOR = SimChannel(
    name="PJSIP/1001-0000000a",
    uniqueid="1795563300.8",
    linkedid="1795563300.7",
    context="operators",
    exten="88001000001",
    state=ChannelState.UP,
)


@dataclass
class Pbx:
    server: AmiServer
    phones: ScriptedOriginator
    ami: AmiClient
    seen: asyncio.Queue[AmiMessage]

    async def event(self, name: str) -> AmiMessage:
        """The next event of that name the controller's AMI client receives."""
        async with asyncio.timeout(10):
            while True:
                message = await self.seen.get()
                if message.get("Event") == name:
                    return message

    async def spy_on(self, data: str) -> AmiMessage:
        channel = [("Channel", "PJSIP/2001"), ("Application", "ChanSpy"), ("Data", data)]
        return await self.ami.action("Originate", channel, Async="true")


@pytest.fixture
async def pbx() -> AsyncIterator[Pbx]:
    phones = ScriptedOriginator()
    # the shipped manager.conf's account: write = call,originate
    user = ManagerUser("hotline", "s", write=permission_set("call,originate"))
    server = AmiServer(clock=SystemClock(), users={"hotline": user}, port=0, originator=phones)
    phones.sink = server
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "hotline", "s", ping_interval=60)
    seen: asyncio.Queue[AmiMessage] = asyncio.Queue()
    ami.on("*", seen.put_nowait)
    await ami.connect()
    yield Pbx(server, phones, ami, seen)
    await ami.close()
    await server.close()


def spy_events(messages: list[AmiMessage], spyer: str, spyee: str) -> list[tuple[str, str]]:
    """ChanSpyStart/Stop and the two sides' Hangups, in order (the side a Hangup is of)."""
    found = []
    for message in messages:
        if message.name in ("ChanSpyStart", "ChanSpyStop"):
            found.append((message.name, ""))
        elif message.name == "Hangup" and message.get("Channel") in (spyer, spyee):
            side = "spyer" if message.get("Channel") == spyer else "spyee"
            found.append(("Hangup", side))
    return found


def captured() -> tuple[list[AmiMessage], str, str]:
    """The listen turn of ami-chanspy.txt (a real Asterisk 22.10.1): from the supervisor's
    OriginateResponse to the Hangup of the supervisor's channel."""
    messages = [m for _, m in ami_messages("ami-chanspy.txt")]
    start = next(i for i, m in enumerate(messages) if m.name == "ChanSpyStart")
    spyer, spyee = messages[start].get("SpyerChannel", ""), messages[start].get("SpyeeChannel", "")
    first = max(
        i
        for i, m in enumerate(messages[:start])
        if m.name == "OriginateResponse" and m.get("Channel", "").startswith("PJSIP/1001")
    )
    last = next(
        i
        for i, m in enumerate(messages)
        if i > start and m.name == "Hangup" and m.get("Channel") == spyer
    )
    return messages[first : last + 1], spyer, spyee


async def test_the_spy_hears_the_operator_until_the_operator_hangs_up(pbx: Pbx) -> None:
    pbx.server.emit("Newchannel", OPERATOR.headers())
    assert (await pbx.spy_on("1795563300.8,qwEu")).get("Response") == "Success"
    start = await pbx.event("ChanSpyStart")
    spyer = start.get("SpyerChannel", "")
    assert spyer.startswith("PJSIP/2001-")
    assert start.get("SpyeeChannel") == "PJSIP/1001-0000000a"
    assert pbx.server.spies.spying() == [(spyer, "PJSIP/1001-0000000a")]
    cause = [("Cause", "16"), ("Cause-txt", "Normal Clearing")]
    pbx.server.emit("Hangup", [*OPERATOR.headers(), *cause])  # E: the spy ends with the call
    stop = await pbx.event("ChanSpyStop")
    assert stop.get("SpyerChannel") == spyer
    assert (await pbx.event("Hangup")).get("Channel") == "PJSIP/1001-0000000a"
    assert (await pbx.event("Hangup")).get("Channel") == spyer
    assert pbx.phones.hung_up == [spyer] and pbx.server.spies.spying() == []


async def test_chanspy_events_as_asterisk_22_sent_them(pbx: Pbx) -> None:
    """Against ami-chanspy.txt: the order (ChanSpyStop before the spyee's Hangup, the
    spying channel's Hangup after it), the headers of ChanSpyStart/Stop and their privilege,
    and the supervisor's OriginateResponse."""
    theirs, their_spyer, their_spyee = captured()
    pbx.server.emit("Newchannel", OPERATOR.headers())
    await pbx.spy_on("1795563300.8,qEu")
    ours: list[AmiMessage] = []
    spyer = "?"
    while not (ours and ours[-1].name == "Hangup" and ours[-1].get("Channel") == spyer):
        ours.append(await asyncio.wait_for(pbx.seen.get(), 10))
        if ours[-1].name == "ChanSpyStart":  # the operator hangs up
            spyer = ours[-1].get("SpyerChannel", "")
            pbx.server.emit("Hangup", [*OPERATOR.headers(), ("Cause", "16"), ("Cause-txt", "x")])
    assert spy_events(ours, spyer, OPERATOR.name) == spy_events(theirs, their_spyer, their_spyee)
    assert spy_events(theirs, their_spyer, their_spyee) == [
        ("ChanSpyStart", ""),
        ("ChanSpyStop", ""),
        ("Hangup", "spyee"),
        ("Hangup", "spyer"),
    ]
    for name in ("ChanSpyStart", "ChanSpyStop", "OriginateResponse"):
        mine = next(m for m in ours if m.name == name).as_dict()
        real = next(m for m in theirs if m.name == name).as_dict()
        assert list(mine) == list(real), name
        assert mine.get("Privilege") == real.get("Privilege"), name
    mine = next(m for m in ours if m.name == "OriginateResponse").as_dict()
    real = next(m for m in theirs if m.name == "OriginateResponse").as_dict()
    for key in ("Response", "Application", "Reason"):
        assert mine.get(key) == real.get(key), key
    assert mine["Data"].split(",")[1:] == real["Data"].split(",")[1:] == ["qEu"]


async def test_a_uniqueid_nobody_has_ends_chanspy_at_once(pbx: Pbx) -> None:
    await pbx.spy_on("1795563399.1,qEu")
    hangup = await pbx.event("Hangup")
    assert hangup.get("Channel", "").startswith("PJSIP/2001-")
    assert pbx.server.spies.spying() == [] and pbx.phones.live_channels() == []


async def test_applications_that_reach_the_shell_need_the_system_class(pbx: Pbx) -> None:
    for app, data in (("System", "rm -rf /"), ("ChanSpy", "PJSIP/DB01-00000001,q")):
        with pytest.raises(AmiActionError, match="Originate Access Forbidden"):
            await pbx.ami.action(
                "Originate", [("Channel", "PJSIP/2001"), ("Application", app), ("Data", data)]
            )
    assert pbx.phones.calls == []


def none(action_class: str) -> bool:
    return False


def system(action_class: str) -> bool:
    return action_class == "system"


def test_manager_c_table() -> None:
    assert originate_app_permitted("ChanSpy", "1795563300.8,qEu", none)
    assert not originate_app_permitted("MixMonitor", "x.wav", none)
    assert originate_app_permitted("MixMonitor", "x.wav", system)
    agi_queue = "q,t,,,40,agi://x"
    assert not originate_app_permitted("Queue", agi_queue, none)
    assert originate_app_permitted("Queue", "q,t,,,40", none)
    assert originate_app_permitted("Playback", "db-lower-case", none)


async def test_the_shipped_user_lists_channels_with_status_not_coreshowchannels(pbx: Pbx) -> None:
    """manager.c: CoreShowChannels needs system or reporting (Asterisk 22 answered the shipped
    write = call,originate 'Permission denied'); Status needs call, and its events carry the
    headers of ami-chanspy.txt's Status of the supervisor's channel."""
    with pytest.raises(AmiActionError, match="Permission denied"):
        await pbx.ami.action("CoreShowChannels")
    pbx.server.emit("Newchannel", OPERATOR.headers())
    listing = await pbx.ami.action("Status")
    ours = [event.as_dict() for event in listing.events if event.get("Event") == "Status"]
    assert [event["Uniqueid"] for event in ours] == ["1795563300.8"]
    messages = [m for _, m in ami_messages("ami-chanspy.txt")]
    real = next(m for m in messages if m.name == "Status").as_dict()
    assert list(ours[0]) == list(real)
    assert ours[0]["Privilege"] == real["Privilege"] == "Call"
    one = await pbx.ami.action("Status", Channel=OPERATOR.name)
    assert [event.get("Channel") for event in one.events if event.get("Event") == "Status"] == [
        OPERATOR.name
    ]
    with pytest.raises(AmiActionError, match="No such channel"):
        await pbx.ami.action("Status", Channel="PJSIP/1001-000000ff")
