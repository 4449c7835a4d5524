"""The callback HTTP API as the mobile app uses it: order, look up, cancel; bad input gets a
clear Russian message and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.access import routes_without_policy
from routing.callbacks.http import add_callback_routes
from tests.routing.callback_api import T0, Api, callback_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with callback_api(tmp_path) as built:
        yield built


async def test_order_look_up_and_get_called(api: Api) -> None:
    body = {
        "phone": "+7 (916) 123-45-67",
        "group": "general",
        "application_id": "1234567897",
        "window_start": "2026-12-01T14:00:00+03:00",
        "window_end": "2026-12-01T16:00:00+03:00",
    }
    response = await api.order(**body)
    assert response.status == 201, await response.text()
    created = await response.json()
    row = await api.scheduler.get_public(created["id"])
    assert row is not None and row.requested_by == "service:mobile-app"
    assert created["state"] == "pending"
    assert created["window_start"] == "2026-12-01T11:00:00+00:00"
    assert created["application_id"] == "1234567897"

    shown = await (await api.call("GET", f"/api/callbacks/{created['id']}")).json()
    assert shown["state"] == "pending" and shown["attempts"] == 0

    # before the window nothing happens; inside it the citizen is called
    assert await api.scheduler.run_due() == []
    api.scheduler._now = lambda: T0 + timedelta(hours=1)  # 11:00 UTC = 14:00 Moscow
    assert await api.scheduler.run_due() == [row.id]
    await asyncio.wait_for(api.scheduler.drain(), 10)
    shown = await (await api.call("GET", f"/api/callbacks/{created['id']}")).json()
    assert shown["state"] == "connected"
    assert api.originator.dialled()[-1] == "Local/79161234567@hotline-callback-out"

    again = await api.order(**body)
    assert again.status == 201  # the first one is done: a new one may be ordered


async def test_cancel(api: Api) -> None:
    response = await api.order(phone="9161234567", group="general")
    callback_id = (await response.json())["id"]
    duplicate = await api.order(phone="89161234567", group="general")
    assert duplicate.status == 409
    assert await duplicate.json() == {"error": "Обратный звонок на этот номер уже заказан."}

    cancelled = await api.call("DELETE", f"/api/callbacks/{callback_id}")
    assert cancelled.status == 200
    assert (await cancelled.json())["state"] == "cancelled"
    again = await api.call("DELETE", f"/api/callbacks/{callback_id}")
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
    response = await api.call(
        "POST", "/api/callbacks", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert await api.scheduler.store.candidates(T0 + timedelta(days=30), per_group=10) == []


async def test_unknown_ids(api: Api) -> None:
    made = await (await api.order(phone="9161234567", group="general")).json()
    last = "y" if made["id"].endswith("x") else "x"
    unknown = ("999", "abc", "9" * 40, "A" * 22, made["id"][:-1] + last, made["id"] * 2)
    for callback_id in unknown:
        path = f"/api/callbacks/{callback_id}"
        response = await api.call("GET", path)
        assert response.status == 404
        assert await response.json() == {"error": "Заявка на обратный звонок не найдена."}
        assert (await api.call("DELETE", path)).status == 404
    assert (await api.call("GET", f"/api/callbacks/{made['id']}")).status == 200


# --- who may do what ---------------------------------------------------------------------


async def test_each_route_admits_only_its_scope_or_staff(api: Api) -> None:
    body = {"phone": "9161234567", "group": "general"}
    assert (await api.order(who=None, **body)).status == 401  # nobody
    assert (await api.call("POST", "/api/callbacks", "unknown-key", json=body)).status == 401
    assert (await api.order(who="reader", **body)).status == 403  # read scope only
    assert (await api.order(who="auditor", **body)).status == 403  # not a staff role for it
    made = await (await api.order(who="creator", **body)).json()
    path = f"/api/callbacks/{made['id']}"
    assert (await api.call("GET", path, "creator")).status == 403  # create scope only
    assert (await api.call("DELETE", path, "reader")).status == 403
    assert (await api.call("GET", path, None)).status == 401
    assert (await api.call("DELETE", path, None)).status == 401
    row = await api.scheduler.get_public(made["id"])
    assert row is not None and row.state == "pending"  # none of the refusals touched it


async def test_a_service_sees_only_its_own_callbacks_and_staff_see_all(api: Api) -> None:
    made = await (await api.order(phone="9161234567", group="general")).json()
    path = f"/api/callbacks/{made['id']}"
    missing = await api.call("GET", "/api/callbacks/" + "Q" * 22, "crm")
    foreign = await api.call("GET", path, "crm")
    assert (foreign.status, await foreign.json()) == (missing.status, await missing.json())
    assert foreign.status == 404
    assert (await api.call("DELETE", path, "crm")).status == 404
    assert (await api.call("GET", path, "reader")).status == 404
    assert (await (await api.call("GET", path, "operator")).json())["state"] == "pending"
    cancelled = await api.call("DELETE", path, "supervisor")
    assert (await cancelled.json())["state"] == "cancelled"


async def test_operators_order_callbacks_for_callers(api: Api) -> None:
    response = await api.order(who="operator", phone="8 495 123-45-67", group="general")
    assert response.status == 201
    row = await api.scheduler.get_public((await response.json())["id"])
    assert row is not None and (row.phone, row.requested_by) == ("74951234567", "person:petrova")


async def test_every_access_is_in_the_audit_log(api: Api) -> None:
    made = await (await api.order(phone="9161234567", group="general")).json()
    path = f"/api/callbacks/{made['id']}"
    await api.call("GET", path, "operator")
    await api.order(who="crm", phone="+7 916 123-45-67", group="payments")  # known number
    await api.call("GET", "/api/callbacks/" + "Q" * 22, "crm")
    await api.call("DELETE", path)
    await api.call("DELETE", path)
    entries = [(e.user_id, e.action, e.recording_id, e.outcome) for e in await api.audit.entries()]
    assert entries == [
        ("mobile-app", "callback.create", made["id"], "ok"),
        ("petrova", "callback.read", made["id"], "ok"),
        ("crm", "callback.create", None, "duplicate"),
        ("crm", "callback.read", None, "not_found"),  # the guessed id is not kept
        ("mobile-app", "callback.cancel", made["id"], "ok"),
        ("mobile-app", "callback.cancel", made["id"], "too_late"),
    ]
    assert (await api.audit.verify()).ok


async def test_without_the_audit_log_nothing_is_booked_or_shown(api: Api) -> None:
    made = await (await api.order(phone="9161234567", group="general")).json()

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("database is away")

    api.audit.record = broken  # type: ignore[assignment,method-assign]
    shown = await api.call("GET", f"/api/callbacks/{made['id']}")
    assert shown.status == 503 and "state" not in await shown.json()
    refused = await api.order(phone="9035556677", group="general")
    assert refused.status == 503
    assert await api.scheduler.store.active_for("79035556677") is None


async def test_every_callback_route_declares_its_policy(api: Api) -> None:
    assert routes_without_policy(api.client.app) == []


async def test_an_app_without_the_access_middleware_opens_nothing(tmp_path: Path) -> None:
    async with callback_api(tmp_path) as api:
        bare = web.Application()
        add_callback_routes(bare, api.scheduler, api.audit)
        async with TestClient(TestServer(bare)) as client:
            made = await client.post(
                "/api/callbacks", json={"phone": "9161234567", "group": "general"}
            )
            assert made.status == 401
            assert (await client.get("/api/callbacks/" + "A" * 22)).status == 401
        assert await api.scheduler.store.active_for("79161234567") is None
