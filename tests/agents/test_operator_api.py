"""The operator HTTP API and softphone state from AMI, end to end on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from people import SUPERVISOR, as_user, guarded_app, sqlite_audit

from agents.devices import DeviceWatcher
from agents.http import add_operator_routes
from hotline.ami.client import AmiClient
from hotline.clock import ManualClock, SteppedClock
from pbxsim.ami_accounts import load_manager_conf
from pbxsim.ami_server import AmiServer
from routing.acd import Acd
from routing.node import AcdNode
from routing.state import InMemoryAcdStore
from routing.testing import group, op

CONF = Path(__file__).resolve().parents[1] / "data" / "asterisk" / "conf"


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for AMI events to reach the node over the socket (no single event to await)."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def make_node() -> AcdNode:
    groups = {"general": group("general")}
    specs = [op("anna", general=5), op("boris", general=3)]
    return AcdNode(Acd(groups, specs, clock=ManualClock()), InMemoryAcdStore(), node_id="n1")


STAFF = {"anna": "operator", "boris": "operator", SUPERVISOR: "supervisor"}
ANNA = as_user("anna")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient, AcdNode]]:
    node = make_node()
    await node.start()
    app = guarded_app(STAFF)
    async with sqlite_audit(tmp_path) as audit:
        add_operator_routes(app, node, audit)
        async with TestClient(TestServer(app)) as client:
            yield client, node


async def test_login_pause_ready_logout(api: tuple[TestClient, AcdNode]) -> None:
    client, node = api
    reply = await client.post("/api/operators/anna/login", headers=ANNA)
    assert (reply.status, (await reply.json())["state"]) == (200, "ready")
    reply = await client.post("/api/operators/anna/pause", json={"reason": "обед"}, headers=ANNA)
    assert await reply.json() == {"id": "anna", "state": "paused", "pause_reason": "обед"}
    assert (await client.post("/api/operators/anna/ready", headers=ANNA)).status == 200
    listing = await (await client.get("/api/operators", headers=as_user(SUPERVISOR))).json()
    assert [(o["id"], o["state"]) for o in listing["operators"]] == [
        ("anna", "ready"),
        ("boris", "logged_out"),
    ]
    assert (await client.post("/api/operators/anna/logout", headers=ANNA)).status == 200
    assert node.acd.operators["anna"].state.value == "logged_out"


async def test_errors_are_russian_and_clear(api: tuple[TestClient, AcdNode]) -> None:
    client, node = api
    reply = await client.post(
        "/api/operators/nobody/ready", json={"why": "проверка"}, headers=as_user(SUPERVISOR)
    )
    assert reply.status == 404 and "Оператор не найден" in (await reply.json())["error"]
    reply = await client.post("/api/operators/anna/logout", headers=ANNA)
    assert reply.status == 409 and "войдите" in (await reply.json())["error"]
    # a pause from someone not logged in is refused too (the phone's *82 says the same)
    reply = await client.post("/api/operators/anna/pause", json={"reason": "обед"}, headers=ANNA)
    assert reply.status == 409 and "войдите" in (await reply.json())["error"]
    await client.post("/api/operators/anna/login", headers=ANNA)
    for body in ({}, {"reason": ""}, {"reason": 5}, {"reason": "a\r\nb"}, {"reason": "я" * 101}):
        reply = await client.post("/api/operators/anna/pause", json=body, headers=ANNA)
        assert reply.status == 400, body
        assert "ричин" in (await reply.json())["error"]
    reply = await client.post("/api/operators/anna/pause", data=b"\xff{not json", headers=ANNA)
    assert reply.status == 400 and "JSON" in (await reply.json())["error"]
    await node.enqueue("c1", "general")
    reply = await client.post("/api/operators/anna/pause", json={"reason": "обед"}, headers=ANNA)
    assert reply.status == 409 and "звонит" in (await reply.json())["error"]
    await node.answer("c1")
    reply = await client.post("/api/operators/anna/logout", headers=ANNA)
    assert reply.status == 409 and "разговор" in (await reply.json())["error"]
    await node.end_call("c1")
    reply = await client.post("/api/operators/anna/wrap-up-done", headers=ANNA)
    assert (reply.status, (await reply.json())["state"]) == (200, "ready")


async def test_unregistered_phone_from_ami_is_never_offered() -> None:
    node = make_node()
    await node.start()
    server = AmiServer(
        clock=SteppedClock("1795563209"), users=load_manager_conf(CONF / "manager.conf"), port=0
    )
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "ivr", "ivrsecret", reconnect_min=0.05)
    watcher = DeviceWatcher(node, [o.spec for o in node.acd.operators.values()])
    watcher.attach(ami)
    ami.start()
    try:
        async with asyncio.timeout(5):
            await ami.wait_connected()
        await node.login("anna")
        await node.login("boris")
        await node.pause("anna", "тест")
        server.emit("DeviceStateChange", [("Device", "PJSIP/boris"), ("State", "UNAVAILABLE")])
        await until(lambda: not node.acd.operators["boris"].device_available)
        assert await node.enqueue("c1", "general") == []  # boris's phone is down
        server.emit(
            "ContactStatus",
            [("AOR", "boris"), ("EndpointName", "boris"), ("ContactStatus", "Reachable")],
        )
        await until(lambda: node.acd.operators["boris"].device_available)
        assert node.acd.operators["boris"].call_id == "c1"
        server.emit(
            "ContactStatus",
            [("AOR", "anna"), ("EndpointName", "anna"), ("ContactStatus", "Removed")],
        )
        await until(lambda: not node.acd.operators["anna"].device_available)
        await node.ready("anna")
        assert await node.enqueue("c2", "general") == []
    finally:
        await ami.close()
        await server.close()


def test_device_events_are_parsed_defensively() -> None:
    from agents.devices import device_available
    from hotline.ami.protocol import AmiMessage

    def event(*pairs: tuple[str, str]) -> AmiMessage:
        return AmiMessage.of(*pairs)

    assert device_available(
        event(("Event", "DeviceStateChange"), ("Device", "PJSIP/1001"), ("State", "INUSE"))
    ) == ("PJSIP/1001", True)
    assert device_available(event(("Event", "DeviceStateChange"), ("Device", "PJSIP/1"))) is None
    assert device_available(
        event(("Event", "ContactStatus"), ("AOR", "7"), ("ContactStatus", "Unreachable"))
    ) == ("PJSIP/7", False)
    assert (
        device_available(
            event(("Event", "ContactStatus"), ("AOR", "7"), ("ContactStatus", "Weird"))
        )
        is None
    )


async def test_deeply_nested_json_is_a_clear_400_not_a_crash(
    api: tuple[TestClient, AcdNode],
) -> None:
    client, node = api
    await client.post("/api/operators/anna/login", headers=ANNA)
    nested = b'{"reason": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    reply = await client.post("/api/operators/anna/pause", data=nested, headers=ANNA)
    assert reply.status == 400 and "вложенность" in (await reply.json())["error"]
    too_big = b'{"reason": "' + b"x" * 100_000 + b'"}'
    reply = await client.post("/api/operators/anna/pause", data=too_big, headers=ANNA)
    assert reply.status == 413 and "Слишком большой" in (await reply.json())["error"]
    assert node.acd.operators["anna"].state.value == "ready"  # nothing changed
