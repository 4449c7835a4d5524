"""Transfer from the desktop: the operator holding a call sends the caller to another group
(tier 2): the caller waits there with their data and place, the operator goes to wrap-up,
the act is audited; anyone else, or a bad request, is refused and nothing moves."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from people import as_user, guarded_app, sqlite_audit

from agents.escalation import Agency
from agents.transfer import add_transfer_routes
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.clock import SystemClock
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from routing.node import AcdNode
from routing.testing import group, memory_node, op

CALL = "1795563226.0"
AGENCIES = {"sfr": Agency("sfr", "Социальный фонд России", "78000000001", 1)}
STAFF = {"anna": "operator", "boris": "operator"}


@dataclass
class Floor:
    client: TestClient[web.Request, web.Application]
    node: AcdNode
    audit: AuditLog
    set_ami: Callable[[AmiClient | None], None]


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[Floor]:
    server = AmiServer(clock=SystemClock(), users={"ctl": ManagerUser("ctl", "s")}, port=0)
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "ctl", "s", ping_interval=60)
    await ami.connect()
    groups = {"general": group("general"), "tech2": group("tech2", name="Вторая линия")}
    node = memory_node(groups, [op("anna", general=5), op("boris", tech2=5)])
    await node.start()
    current: list[AmiClient | None] = [ami]
    app = guarded_app(STAFF)
    async with sqlite_audit(tmp_path) as audit:
        add_transfer_routes(app, node, lambda: current[0], AGENCIES, audit)
        async with TestClient(TestServer(app), headers=as_user("anna")) as client:
            yield Floor(client, node, audit, lambda c: current.__setitem__(0, c))
    await ami.close()
    await server.close()


async def talking(floor: Floor) -> None:
    await floor.node.login("anna")
    await floor.node.enqueue(CALL, "general", number="79035550011", data={"topic": "пенсия"})
    await floor.node.answer(CALL)


async def test_the_holder_sends_the_caller_to_tier_2_who_rings_there(floor: Floor) -> None:
    await talking(floor)
    await floor.node.login("boris")  # tier 2 is staffed
    reply = await floor.client.post("/api/operators/anna/transfer", json={"group": "tech2"})
    assert reply.status == 200, await reply.text()
    assert (await reply.json())["state"] == "wrap_up"
    caller = floor.node.acd.callers[CALL]
    assert (caller.group, caller.operator, caller.state) == ("tech2", "boris", "ringing")
    assert caller.data["topic"] == "пенсия"  # the menu's data goes along
    entries = await floor.audit.entries()
    assert [(e.action, json.loads(e.detail)["group"]) for e in entries] == [
        ("operator.transfer", "tech2")
    ]


async def test_the_desk_lists_groups_and_agencies_to_send_to(floor: Floor) -> None:
    reply = await floor.client.get("/api/operators/anna/targets")
    body = await reply.json()
    assert {"id": "tech2", "name": "Вторая линия"} in body["groups"]
    assert body["agencies"] == [{"id": "sfr", "name": "Социальный фонд России"}]


async def test_refusals_are_russian_and_move_nothing(floor: Floor) -> None:
    not_talking = await floor.client.post("/api/operators/anna/transfer", json={"group": "tech2"})
    assert not_talking.status == 409
    assert "не в разговоре" in (await not_talking.json())["error"]
    await talking(floor)
    cases = [
        ("anna", {"group": "nowhere"}, 400, "Такой группы нет"),
        ("anna", {"group": "general"}, 400, "уже в этой группе"),
        ("anna", {"grp": "tech2"}, 400, "ожидается"),
        ("anna", [1, 2], 400, "ожидается"),
    ]
    for who, body, status, text in cases:
        reply = await floor.client.post(f"/api/operators/{who}/transfer", json=body)
        assert reply.status == status, body
        assert text in (await reply.json())["error"]
    # boris cannot move anna's caller, neither as himself nor as anna
    other = await floor.client.post(
        "/api/operators/anna/transfer", json={"group": "tech2"}, headers=as_user("boris")
    )
    assert other.status == 403
    floor.set_ami(None)  # no link to the PBX: the caller stays with anna
    down = await floor.client.post("/api/operators/anna/transfer", json={"group": "tech2"})
    assert down.status == 503
    caller = floor.node.acd.callers[CALL]
    assert (caller.group, caller.operator, caller.state) == ("general", "anna", "talking")
    assert await floor.audit.entries() == []
