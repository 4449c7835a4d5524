"""The desktop's state bar is pushed by the ACD, never polled: every move of the operator
(ready, ringing, talking, wrap-up with its countdown, pause with its reason, logged out)
reaches their open desktop as a `state` event, and only theirs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine

from controller.node import state_bar_of
from hotline.access import access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import ManualClock
from routing.node import AcdNode
from routing.testing import group, memory_node, op
from workspace.desk import Desk
from workspace.http import add_desk_routes
from workspace.registry import ContactRegistry
from workspace.store import ContactStore

PEOPLE = {"tok-ivanova": Actor("ivanova", "operator"), "tok-petrov": Actor("petrov", "operator")}


async def lookup(request: web.Request) -> Actor | None:
    return PEOPLE.get(request.headers.get("Authorization", "").removeprefix("Bearer "))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def read_event(stream: object, kind: str) -> dict[str, object]:
    """The next SSE event of `kind` (the timeout only turns a lost event into a failure)."""
    name = ""
    async with asyncio.timeout(30):
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")  # type: ignore[attr-defined]
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == kind:
                return dict(json.loads(line.removeprefix("data: ")))


@dataclass
class Line:
    client: TestClient
    node: AcdNode
    clock: ManualClock


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'desk.sqlite3'}") as engine:
        registry = ContactRegistry(ContactStore(engine), AuditLog(engine))
        desk = Desk(registry)
        node = memory_node(
            {"general": group("general", wrap_up_seconds=20.0)},
            [op("ivanova", general=1), op("petrov", general=1)],
        )
        # as the composition root wires it (controller.node)
        node.watch.listeners.append(lambda status: desk.operator_state(state_bar_of(status)))
        await node.start()
        node.watch.check()  # the root tells every operator's state once wired
        app = web.Application(middlewares=[access_middleware(lookup)])
        add_desk_routes(app, desk, registry)
        assert isinstance(node.acd.clock, ManualClock)
        async with TestClient(TestServer(app)) as client:
            yield Line(client, node, node.acd.clock)


async def test_every_move_of_the_operator_reaches_their_state_bar(line: Line) -> None:
    stream = await line.client.get("/desk/events", headers=bearer("tok-ivanova"))
    assert (await read_event(stream, "state"))["state"] == "logged_out"  # where they start
    await line.node.login("ivanova")
    assert (await read_event(stream, "state"))["state"] == "ready"

    await line.node.enqueue("call-1", "general", number="79161234567")
    assert (await read_event(stream, "state"))["state"] == "ringing"
    await line.node.answer("call-1")
    assert (await read_event(stream, "state"))["state"] == "talking"
    await line.node.end_call("call-1")
    wrap_up = await read_event(stream, "state")
    assert wrap_up == {"state": "wrap_up", "pause_reason": None, "seconds_left": 20}

    line.clock.advance(21)
    await line.node.tick()  # the group's wrap-up is over: ready again, told at once
    assert (await read_event(stream, "state"))["state"] == "ready"
    await line.node.pause("ivanova", "обед")
    paused = await read_event(stream, "state")
    assert (paused["state"], paused["pause_reason"]) == ("paused", "обед")
    await line.node.logout("ivanova")
    assert (await read_event(stream, "state"))["state"] == "logged_out"
    stream.close()


async def test_a_desktop_opened_later_starts_with_the_state_and_sees_no_one_else(
    line: Line,
) -> None:
    await line.node.login("ivanova")
    await line.node.pause("ivanova", "обучение")
    await line.node.login("petrov")
    late = await line.client.get("/desk/events", headers=bearer("tok-ivanova"))
    first = await read_event(late, "state")  # before any new move
    assert (first["state"], first["pause_reason"]) == ("paused", "обучение")
    other = await line.client.get("/desk/events", headers=bearer("tok-petrov"))
    assert (await read_event(other, "state"))["state"] == "ready"
    await line.node.ready("ivanova")
    assert (await read_event(late, "state"))["state"] == "ready"
    await line.node.pause("petrov", "перерыв")
    # petrov's stream shows petrov's pause; ivanova's next event is her own logout
    assert (await read_event(other, "state"))["pause_reason"] == "перерыв"
    await line.node.logout("ivanova")
    assert (await read_event(late, "state"))["state"] == "logged_out"
    late.close()
    other.close()
