"""The callback HTTP API as the mobile app uses it: order, look up, cancel; bad input gets a
clear Russian message and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.ami.client import AmiClient
from hotline.clock import SystemClock
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from pbxsim.originator import ScriptedOriginator
from routing.callbacks.http import add_callback_routes
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import CallbackStore
from routing.testing import group, memory_node, op
from tests.routing.test_callbacks import WorkingHours

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    scheduler: CallbackScheduler
    originator: ScriptedOriginator


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.sqlite3'}"
    await upgrade(url)
    engine = create_engine(url)
    originator = ScriptedOriginator()
    server = AmiServer(
        clock=SystemClock(), users={"ctl": ManagerUser("ctl", "s")}, originator=originator, port=0
    )
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "ctl", "s", ping_interval=60)
    await ami.connect()
    groups = {"general": group("general"), "payments": group("payments")}
    node = memory_node(groups, [op("anna", general=5)])
    await node.start()
    await node.login("anna")
    scheduler = CallbackScheduler(
        CallbackStore(engine),
        node,
        ami,
        settings=CallbackSettings(caller_ring_seconds=5.0),
        hours_for=lambda g: WorkingHours(),
        now=lambda: T0,
    )
    app = web.Application()
    add_callback_routes(app, scheduler)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Api(client, scheduler, originator)
    finally:
        await scheduler.close()
        await ami.close()
        await server.close()
        await engine.dispose()


async def test_order_look_up_and_get_called(api: Api) -> None:
    body = {
        "phone": "+7 (916) 123-45-67",
        "group": "general",
        "application_id": "1234567897",
        "window_start": "2026-12-01T14:00:00+03:00",
        "window_end": "2026-12-01T16:00:00+03:00",
    }
    response = await api.client.post("/api/callbacks", json=body)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["state"] == "pending"
    assert created["window_start"] == "2026-12-01T11:00:00+00:00"
    assert created["application_id"] == "1234567897"

    shown = await (await api.client.get(f"/api/callbacks/{created['id']}")).json()
    assert shown["state"] == "pending" and shown["attempts"] == 0

    # before the window nothing happens; inside it the citizen is called
    assert await api.scheduler.run_due() == []
    api.scheduler._now = lambda: T0 + timedelta(hours=1)  # 11:00 UTC = 14:00 Moscow
    assert await api.scheduler.run_due() == [created["id"]]
    await asyncio.wait_for(api.scheduler.drain(), 10)
    shown = await (await api.client.get(f"/api/callbacks/{created['id']}")).json()
    assert shown["state"] == "connected"
    assert api.originator.dialled()[-1] == "Local/79161234567@hotline-callback-out"

    again = await api.client.post("/api/callbacks", json=body)
    assert again.status == 201  # the first one is done: a new one may be ordered


async def test_cancel(api: Api) -> None:
    response = await api.client.post(
        "/api/callbacks", json={"phone": "9161234567", "group": "general"}
    )
    callback_id = (await response.json())["id"]
    duplicate = await api.client.post(
        "/api/callbacks", json={"phone": "89161234567", "group": "general"}
    )
    assert duplicate.status == 409
    assert (await duplicate.json())["id"] == callback_id

    cancelled = await api.client.delete(f"/api/callbacks/{callback_id}")
    assert cancelled.status == 200
    assert (await cancelled.json())["state"] == "cancelled"
    again = await api.client.delete(f"/api/callbacks/{callback_id}")
    assert again.status == 409
    assert "отменить его нельзя" in (await again.json())["error"]
    assert await api.scheduler.run_due() == []
    assert api.originator.dialled() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "ожидается JSON-объект"),
        (b"[1, 2]", "ожидается JSON-объект"),
        (b'{"group": "general"}', "Укажите номер телефона"),
        (b'{"phone": "9161234567"}', "Укажите группу"),
        (b'{"phone": "12", "group": "general"}', "Неверный номер телефона"),
        (b'{"phone": "9161234567", "group": "x"}', "Неизвестная группа"),
        (b'{"phone": "9161234567", "group": "general", "application_id": "1"}', "заявления"),
        (
            b'{"phone": "9161234567", "group": "general", "window_start": "tomorrow"}',
            "ISO 8601",
        ),
        (
            b'{"phone": "9161234567", "group": "general", "window_start": "2026-12-01T12:00"}',
            "часовой пояс",
        ),
        (
            b'{"phone": "9161234567", "group": "general",'
            b' "window_start": "2026-12-01T19:00:00+00:00",'
            b' "window_end": "2026-12-01T23:00:00+00:00"}',
            "не работают",
        ),
        (
            b'{"phone": "9161234567", "group": "general",'
            b' "window_end": "2026-11-30T23:00:00+00:00"}',
            "раньше его конца",
        ),
        ('{"phone": "\xff"}'.encode("latin-1"), "ожидается JSON-объект"),
        (b'{"phone": "' + b"9" * 100_000 + b'", "group": "general"}', "Слишком большой"),
    ],
)
async def test_bad_requests_are_refused_in_russian(api: Api, body: bytes, message: str) -> None:
    response = await api.client.post(
        "/api/callbacks", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert await api.scheduler.store.candidates(T0 + timedelta(days=30), 10) == []


async def test_unknown_ids(api: Api) -> None:
    for path in ("/api/callbacks/999", "/api/callbacks/abc", "/api/callbacks/" + "9" * 40):
        response = await api.client.get(path)
        assert response.status == 404
        assert (await response.json())["error"] == "Заявка на обратный звонок не найдена."
        assert (await api.client.delete(path)).status == 404
