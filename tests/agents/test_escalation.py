"""Escalation to an outside agency: the operator's desktop asks, the caller's channel is moved
by AMI (Setvar + Redirect) on the simulated PBX over real sockets, the operator gets wrap-up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from people import as_user, guarded_app, sqlite_audit
from yamlfiles import assert_refused_at_line

from agents.escalation import (
    MAX_HEADER_VALUE,
    Agency,
    add_escalation_routes,
    escalation_variables,
    load_agencies,
)
from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiActionError
from hotline.ami.protocol import AmiMessage
from hotline.audit import AuditLog
from hotline.clock import SystemClock
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from routing.node import AcdNode
from routing.testing import group, memory_node, op

ROOT = Path(__file__).resolve().parents[2]
CALL = "1795563226.0"  # the caller's agi_uniqueid: the ACD's call id
CHANNEL = "PJSIP/trunk-00000000"
BRIDGE = [
    ("BridgeUniqueid", "252e2c1b-116e-46cd-b088-31eed29645bc"),
    ("BridgeType", "basic"),
    ("BridgeTechnology", "simple_bridge"),
    ("BridgeCreator", "<unknown>"),
    ("BridgeName", "<unknown>"),
    ("BridgeNumChannels", "2"),
    ("BridgeVideoSourceMode", "none"),
]


def channel_block(name: str, uniqueid: str) -> list[tuple[str, str]]:
    return [
        ("Channel", name),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "79035550011"),
        ("CallerIDName", "Петров Пётр"),
        ("ConnectedLineNum", "1001"),
        ("ConnectedLineName", "anna"),
        ("Language", "ru"),
        ("AccountCode", ""),
        ("Context", "from-pstn"),
        ("Exten", "88001000001"),
        ("Priority", "3"),
        ("Uniqueid", uniqueid),
        ("Linkedid", CALL),
    ]


@dataclass
class Desk:
    client: TestClient[web.Request, web.Application]
    node: AcdNode
    server: AmiServer
    events: list[AmiMessage]
    set_ami: Callable[[AmiClient | None], None]
    audit: AuditLog


AGENCIES = {
    "sfr": Agency("sfr", "Социальный фонд России", "78000000001", 1),
    "mfc": Agency("mfc", "МФЦ", "78000000003", 2),
}


# anna holds the call; "nobody" is a staff member who is not an operator of this ACD
STAFF = {"anna": "operator", "nobody": "operator"}


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    server = AmiServer(clock=SystemClock(), users={"ctl": ManagerUser("ctl", "s")}, port=0)
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "ctl", "s", ping_interval=60)
    await ami.connect()
    watcher = AmiClient("127.0.0.1", server.port, "ctl", "s", ping_interval=60)
    events: list[AmiMessage] = []
    for name in ("VarSet", "BridgeLeave"):
        watcher.on(name, events.append)
    await watcher.connect()
    node = memory_node({"general": group("general")}, [op("anna", general=5)])
    await node.start()
    await node.login("anna")
    current: list[AmiClient | None] = [ami]
    app = guarded_app(STAFF)
    async with sqlite_audit(tmp_path) as audit:
        add_escalation_routes(app, node, lambda: current[0], AGENCIES, audit)
        async with TestClient(TestServer(app), headers=as_user("anna")) as client:
            set_ami = current.__setitem__
            yield Desk(client, node, server, events, lambda c: set_ami(0, c), audit)
    await watcher.close()
    await ami.close()
    await server.close()


async def talking(desk: Desk) -> None:
    """A caller who went through the menu and is talking to anna, bridged on the PBX."""
    await desk.node.enqueue(
        CALL, "general", number="79035550011", data={"snils": "123-456-789 00", "topic": "пенсия"}
    )
    await desk.node.answer(CALL)
    desk.server.emit("Newchannel", channel_block(CHANNEL, CALL))
    desk.server.emit("BridgeEnter", [*BRIDGE, *channel_block(CHANNEL, CALL)])


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_caller_goes_to_the_agency_with_data_and_history(desk: Desk) -> None:
    await talking(desk)
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "sfr"})
    body = await reply.json()
    assert reply.status == 200, body
    assert body == {
        "id": "anna",
        "state": "wrap_up",
        "call": CALL,
        "agency": "sfr",
        "agency_name": "Социальный фонд России",
    }
    assert CALL not in desk.node.acd.callers  # the conversation is over for the ACD
    # who moved which call where is in the audit log
    entries = await desk.audit.entries()
    assert [(e.user_id, e.action, e.detail_data) for e in entries] == [
        ("anna", "operator.escalate", {"operator": "anna", "call": CALL, "agency": "sfr"})
    ]

    # The PBX has the caller at the agency's number in the escalation context.
    probe = AmiClient("127.0.0.1", desk.server.port, "ctl", "s", ping_interval=60)
    await probe.connect()
    try:
        channels = (await probe.action("CoreShowChannels")).events
    finally:
        await probe.close()
    where = [(e.get("Context"), e.get("Exten"), e.get("Priority")) for e in channels]
    assert where == [("hotline-escalate-out", "78000000001", "1")]

    # ...carrying the collected data and the call's history, as the dialplan will read them.
    await until(lambda: len(desk.events) >= 5)
    values = {e.get("Variable"): e.get("Value") or "" for e in desk.events if e.get("Value")}
    assert values["_HOTLINE_CALL"] == CALL
    assert values["_HOTLINE_AGENCY"] == "sfr"
    data = json.loads(unquote(values["_HOTLINE_DATA"]))
    assert data == {"snils": "123-456-789 00", "topic": "пенсия"}
    # this move is the whole history: the agency sees who sent the caller (issue 10, item 5)
    assert json.loads(unquote(values["_HOTLINE_HISTORY"])) == ["general:anna->agency:sfr"]
    left = [e for e in desk.events if e.get("Event") == "BridgeLeave"]
    assert [(e.get("Channel"), e.get("BridgeNumChannels")) for e in left] == [(CHANNEL, "1")]


async def test_history_goes_along_and_records_the_escalation(desk: Desk) -> None:
    await talking(desk)
    caller = desk.node.acd.callers[CALL]
    caller.history.append("tech1:boris->general перевод на 2-ю линию")
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "mfc"})
    assert reply.status == 200
    assert caller.history[-1] == "general:anna->agency:mfc"
    await until(lambda: any(e.get("Variable") == "_HOTLINE_HISTORY" for e in desk.events))
    sent = next(e for e in desk.events if e.get("Variable") == "_HOTLINE_HISTORY")
    assert json.loads(unquote(sent.get("Value") or "")) == [
        "tech1:boris->general перевод на 2-ю линию",
        "general:anna->agency:mfc",
    ]


async def test_refusals_are_russian_and_change_nothing(desk: Desk) -> None:
    post = desk.client.post
    reply = await post(
        "/api/operators/nobody/escalate", json={"agency": "sfr"}, headers=as_user("nobody")
    )
    assert reply.status == 404 and "Оператор не найден" in (await reply.json())["error"]
    reply = await post("/api/operators/anna/escalate", json={"agency": "sfr"})
    assert reply.status == 409 and "не в разговоре" in (await reply.json())["error"]
    await talking(desk)
    for bad in ({"agency": "78001234567"}, {"agency": "police"}):
        reply = await post("/api/operators/anna/escalate", json=bad)
        error = (await reply.json())["error"]
        assert reply.status == 400 and "нет в списке" in error and "sfr" in error
    deep = b'{"agency": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"  # was a 500
    for raw in (b"\xff{", b"[]", b'{"agency": 5}', b"", deep):
        reply = await post("/api/operators/anna/escalate", data=raw)
        assert reply.status == 400 and "agency" in (await reply.json())["error"]
    assert desk.node.acd.callers[CALL].state == "talking"
    assert desk.events == []  # nothing reached the PBX


async def test_ami_down_keeps_the_caller_with_the_operator(desk: Desk) -> None:
    await talking(desk)
    desk.set_ami(None)  # AMI disabled in the settings
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "sfr"})
    assert reply.status == 503 and "Нет связи с АТС" in (await reply.json())["error"]
    desk.set_ami(AmiClient("127.0.0.1", desk.server.port, "ctl", "s"))  # never connected
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "sfr"})
    assert reply.status == 503
    assert desk.node.acd.operators["anna"].state.value == "talking"
    assert desk.node.acd.callers[CALL].state == "talking"


async def test_ami_link_lost_mid_escalation_is_503(desk: Desk) -> None:
    await talking(desk)
    await desk.server.close()  # Asterisk goes away; the client has not noticed yet
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "sfr"})
    assert reply.status == 503 and "остаётся на линии" in (await reply.json())["error"]
    assert desk.node.acd.callers[CALL].state == "talking"


async def test_caller_already_gone_is_409(desk: Desk) -> None:
    await desk.node.enqueue(CALL, "general")
    await desk.node.answer(CALL)  # talking for the ACD, but no such channel on the PBX
    reply = await desk.client.post("/api/operators/anna/escalate", json={"agency": "sfr"})
    assert reply.status == 409 and "положил трубку" in (await reply.json())["error"]


def test_hostile_data_becomes_one_bounded_safe_token() -> None:
    data = {"name": "x\r\nAction: Originate\r\n", "long": "я" * 5000}
    history = [f"step {i}: " + "ж" * 50 for i in range(100)]
    values = dict(escalation_variables("1.2", AGENCIES["sfr"], data, history))
    for value in values.values():
        assert value.isascii() and value.isprintable() and "," not in value
        assert len(value) <= MAX_HEADER_VALUE
    kept = json.loads(unquote(values["_HOTLINE_HISTORY"]))
    assert kept and kept[-1] == history[-1]  # the newest steps are the ones kept
    assert json.loads(unquote(values["_HOTLINE_DATA"])) == {"truncated": "1"}


# --- the allow-list file ---------------------------------------------------------------------


def test_shipped_agencies_load_as_examples() -> None:
    agencies = load_agencies(ROOT / "dialplans" / "agencies.yaml")
    assert {"sfr", "fns", "mfc"} <= agencies.keys()
    assert all(len(a.number) == 11 and a.number.startswith("7") for a in agencies.values())
    assert "ПРИМЕР" in (ROOT / "dialplans" / "agencies.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("agencies:\n  sfr:\n    name: СФР\n    number: '12345'\n", 4, "11 digits"),
        ("agencies:\n  sfr:\n    name: СФР\n    number: '+7 800 abc 00 01'\n", 4, "11 digits"),
        ("agencies:\n  sfr:\n    name: СФР\n    number: '88000000001'\n    dial: x\n", 5, "dial"),
        ("agencies:\n  sfr:\n    name: СФР\n", 3, "number"),
        (
            "agencies:\n  a:\n    name: A\n    number: '88000000001'\n"
            "  b:\n    name: B\n    number: '+7 800 000 00 01'\n",
            7,
            "same number",
        ),
        ("agencies:\n  Bad Id:\n    name: A\n    number: '88000000001'\n", 2, "agency id"),
        ("agencies:\n  a: [\n", 3, "not valid YAML"),
        ("agencies: {}\n", 1, "no agencies"),
        ("", 1, "empty"),
    ],
)
def test_broken_agencies_file_points_at_the_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    assert_refused_at_line(load_agencies, tmp_path / "agencies.yaml", text, line, words)


# --- the simulated PBX's Setvar and Redirect, as Asterisk answers them ------------------------


async def test_sim_redirect_and_setvar_answer_like_asterisk(desk: Desk) -> None:
    desk.server.emit("Newchannel", channel_block(CHANNEL, CALL))
    probe = AmiClient("127.0.0.1", desk.server.port, "ctl", "s", ping_interval=60)
    await probe.connect()
    try:
        replies = []
        for headers in (
            {"Channel": CALL, "Variable": "X", "Value": "1"},
            {"Channel": "PJSIP/none-0001", "Variable": "X", "Value": "1"},
            {"Channel": CHANNEL, "Value": "1"},
        ):
            replies.append(await _reply(probe, "Setvar", headers))
        assert replies == [
            ("Success", "Variable Set"),
            ("Error", "No such channel"),
            ("Error", "No variable specified"),
        ]
        replies = []
        for headers in (
            {"Context": "x", "Exten": "s", "Priority": "1"},
            {"Channel": CHANNEL, "Context": "x", "Exten": "s", "Priority": "first"},
            {"Channel": "PJSIP/none-0001", "Context": "x", "Exten": "s", "Priority": "1"},
            {"Channel": CHANNEL, "Context": "elsewhere", "Exten": "s", "Priority": "2"},
        ):
            replies.append(await _reply(probe, "Redirect", headers))
        assert replies == [
            ("Error", "Channel not specified"),
            ("Error", "Invalid priority"),
            ("Error", "Channel does not exist: PJSIP/none-0001"),
            ("Success", "Redirect successful"),
        ]
        channels = (await probe.action("CoreShowChannels")).events
        assert [(e.get("Channel"), e.get("Context"), e.get("Priority")) for e in channels] == [
            (CHANNEL, "elsewhere", "2")
        ]
    finally:
        await probe.close()


async def _reply(ami: AmiClient, action: str, headers: dict[str, str]) -> tuple[str, str]:
    try:
        response = await ami.action(action, headers)
    except AmiActionError as refused:
        return ("Error", refused.message)
    return (response.status, response.text or "")
