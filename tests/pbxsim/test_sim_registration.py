"""Softphone registration replayed against ami-pjsip-registration.txt (a real Asterisk 22.10.1,
seat 1001 registering from sipp and unregistering with ``Expires: 0``, then DeviceStateList).

The simulator's `register_seat`/`unregister_seat` must print the events Asterisk printed, in
its order and header for header; only the qualify's measured ``RoundtripUsec`` is masked. The
DeviceStateList reply must have the real reply's shape; its items are the device-state cache,
which in the capture also holds devices of the suite's earlier calls (``PJSIP/trunk``, queues
that had callers) and lists them in hash order: the simulator's cache is compared where the two
know the same device, and order is not compared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_sim_ami import BOOT, Client
from transcripts import DATA, load, stream

from hotline.ami.protocol import AmiMessage, AmiParser
from hotline.clock import SteppedClock
from pbxsim.ami_accounts import ManagerUser, privilege_of
from pbxsim.ami_server import AmiServer
from pbxsim.queue_config import load_queues_conf
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues

CAPTURE = "ami-pjsip-registration.txt"
SHIPPED_QUEUES = DATA.parents[2] / "asterisk-conf" / "queues.conf"
CONTACT = "sip:1001@127.0.0.1:34691"  # sipp's contact in the capture (its port is sipp's)


def capture() -> list[AmiMessage]:
    parsed = AmiParser(expect_greeting=True).feed(stream(load(CAPTURE), "asterisk->client"))
    return [m for m in parsed if isinstance(m, AmiMessage)]


def without_rtt(message: AmiMessage) -> tuple[tuple[str, str], ...]:
    return tuple((k, "<rtt>" if k == "RoundtripUsec" else v) for k, v in message.headers)


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    clock = SteppedClock(BOOT, boot=BOOT)
    seats = {"PJSIP/1001": Operator(registered=False), "PJSIP/1007": Operator(registered=False)}
    queues = Queues(load_queues_conf(SHIPPED_QUEUES), clock, operators=seats)
    users = {"hotline": ManagerUser("hotline", "asterisk-suite-secret")}
    server = AmiServer(clock=clock, users=users, queues=queues, port=0)
    await server.start()
    yield server
    await server.close()
    await queues.close()


async def test_register_and_unregister_print_asterisks_events(server: AmiServer) -> None:
    client = await Client.connect(server)
    await client.send(
        ("Action", "Login"), ("Username", "hotline"), ("Secret", "asterisk-suite-secret")
    )
    await client.until_event("FullyBooted")
    assert server.queues is not None
    server.queues.register_seat("PJSIP/1001", CONTACT, roundtrip_usec=1)
    server.queues.unregister_seat("PJSIP/1001", CONTACT)
    await client.sync()
    names = ("ContactStatus", "PeerStatus", "DeviceStateChange")
    got = [without_rtt(m) for m in client.events() if m.name in names]
    expected = [without_rtt(m) for m in capture() if m.name in names and not m.get("ActionID")]
    assert got == expected
    await client.close()


async def test_device_state_list_has_the_real_replys_shape(server: AmiServer) -> None:
    assert server.queues is not None
    server.queues.register_seat("PJSIP/1001", CONTACT)
    server.queues.unregister_seat("PJSIP/1001", CONTACT)
    client = await Client.connect(server)
    await client.send(
        ("Action", "Login"), ("Username", "hotline"), ("Secret", "asterisk-suite-secret")
    )
    await client.until_event("FullyBooted")
    real = [m for m in capture() if m.get("ActionID") == "suite-2"]
    answer = await client.action("DeviceStateList", "suite-2")
    await client.until_event("DeviceStateListComplete")
    assert answer.headers == real[0].headers
    items = [m for m in client.events() if m.get("ActionID") == "suite-2"]
    assert [k for k, _ in items[0].headers] == [k for k, _ in real[1].headers]
    assert [k for k, _ in items[-1].headers] == [k for k, _ in real[-1].headers]
    assert items[-1]["ListItems"] == str(len(items) - 1)
    ours = {m["Device"]: m["State"] for m in items[:-1]}
    theirs = {m["Device"]: m["State"] for m in real[1:-1]}
    assert {d: theirs[d] for d in ours.keys() & theirs.keys()} == {
        d: ours[d] for d in ours.keys() & theirs.keys()
    }
    # The real cache also held the trunk (the suite's earlier calls); the simulator has none.
    assert set(theirs) - set(ours) == {"PJSIP/trunk"}
    await client.close()


def test_registration_events_have_the_captures_privilege() -> None:
    seen = {(m.name, m["Privilege"]) for m in capture() if m.kind == "event" and "Privilege" in m}
    assert seen and all(privilege_of(name) == privilege for name, privilege in seen)
