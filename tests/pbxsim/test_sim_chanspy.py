"""ChanSpy on an Originate's answered leg, as Asterisk 22 runs it (app_chanspy.c), and
manager.c's check of the applications an Originate may run, against the simulated AMI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

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


@pytest.fixture
async def pbx() -> AsyncIterator[tuple[AmiServer, ScriptedOriginator, AmiClient, list[AmiMessage]]]:
    phones = ScriptedOriginator()
    # the shipped manager.conf's account: write = call,originate
    user = ManagerUser("hotline", "s", write=permission_set("call,originate"))
    server = AmiServer(clock=SystemClock(), users={"hotline": user}, port=0, originator=phones)
    phones.sink = server
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "hotline", "s", ping_interval=60)
    seen: list[AmiMessage] = []
    ami.on("*", seen.append)
    await ami.connect()
    yield server, phones, ami, seen
    await ami.close()
    await server.close()


async def until(condition: object) -> None:
    async with asyncio.timeout(10):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def events(seen: list[AmiMessage], name: str) -> list[AmiMessage]:
    return [m for m in seen if m.get("Event") == name]


async def test_the_spy_hears_the_operator_until_the_operator_hangs_up(pbx: object) -> None:
    server, phones, ami, seen = pbx  # type: ignore[misc]
    server.emit("Newchannel", OPERATOR.headers())
    reply = await ami.action(
        "Originate",
        [("Channel", "PJSIP/2001"), ("Application", "ChanSpy"), ("Data", "1795563300.8,qwEu")],
        Async="true",
    )
    assert reply.get("Response") == "Success"
    await until(lambda: events(seen, "ChanSpyStart"))
    start = events(seen, "ChanSpyStart")[0]
    assert start.get("SpyerChannel", "").startswith("PJSIP/2001-")
    assert start.get("SpyeeChannel") == "PJSIP/1001-0000000a"
    assert server.spies.spying() == [(start.get("SpyerChannel"), "PJSIP/1001-0000000a")]
    cause = [("Cause", "16"), ("Cause-txt", "Normal Clearing")]
    server.emit("Hangup", [*OPERATOR.headers(), *cause])  # E: the spy ends with the call
    await until(lambda: events(seen, "ChanSpyStop"))
    assert phones.hung_up == [start.get("SpyerChannel")]
    assert server.spies.spying() == []


async def test_a_uniqueid_nobody_has_ends_chanspy_at_once(pbx: object) -> None:
    server, phones, ami, seen = pbx  # type: ignore[misc]
    await ami.action(
        "Originate",
        [("Channel", "PJSIP/2001"), ("Application", "ChanSpy"), ("Data", "1795563399.1,qEu")],
        Async="true",
    )
    await until(lambda: phones.hung_up)
    assert events(seen, "ChanSpyStart") == [] and phones.live_channels() == []


async def test_applications_that_reach_the_shell_need_the_system_class(pbx: object) -> None:
    server, phones, ami, seen = pbx  # type: ignore[misc]
    for app, data in (("System", "rm -rf /"), ("ChanSpy", "PJSIP/DB01-00000001,q")):
        with pytest.raises(AmiActionError, match="Originate Access Forbidden"):
            await ami.action(
                "Originate", [("Channel", "PJSIP/2001"), ("Application", app), ("Data", data)]
            )
    assert phones.calls == []


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
