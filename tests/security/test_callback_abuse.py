"""Issue 11's findings against ``/api/callbacks``, replayed as an attacker would, each now
failing safely: anonymous orders, a burst of 300, premium-rate and foreign numbers, one victim
booked once per group, ids guessed by counting, a 409 naming the existing callback, and a
flood delaying another group's emergency callback."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from routing.callbacks.settings import CallbackSettings
from routing.testing import op
from tests.routing.callback_api import callback_api

VICTIM = "+7 916 123-45-67"


def rate_limited_events() -> float:
    value = REGISTRY.get_sample_value("hotline_security_events_total", {"category": "rate_limited"})
    return value or 0.0


async def test_nobody_orders_or_reads_callbacks_without_credentials(tmp_path: Path) -> None:
    async with callback_api(tmp_path) as api:
        made = await (await api.order(phone=VICTIM, group="general")).json()
        anonymous = [
            await api.order(who=None, phone="+7 903 111-22-33", group="general"),
            await api.call("GET", f"/api/callbacks/{made['id']}", None),
            await api.call("DELETE", f"/api/callbacks/{made['id']}", None),
        ]
        assert [r.status for r in anonymous] == [401, 401, 401]
        assert await api.scheduler.store.active_for("79031112233") is None
        row = await api.scheduler.get_public(made["id"])
        assert row is not None and row.state == "pending"


async def test_a_burst_of_300_callbacks_is_refused_beyond_the_allowed_few(tmp_path: Path) -> None:
    async with callback_api(tmp_path) as api:
        allowed = api.scheduler.settings.per_requester_per_minute
        before = rate_limited_events()
        burst = [api.order(phone=f"+7 916 {i:03d}-00-00", group="general") for i in range(300)]
        responses = await asyncio.gather(*burst)

        statuses = [r.status for r in responses]
        assert statuses.count(201) == allowed and statuses.count(429) == 300 - allowed
        refused = [await r.json() for r in responses if r.status == 429]
        assert {tuple(body) for body in refused} == {("error",)}  # a text and no data
        assert "Слишком много заявок" in refused[0]["error"]
        assert rate_limited_events() == before + 300 - allowed
        booked = await api.scheduler.store.candidates(api.scheduler._now(), per_group=1000)
        assert len(booked) == allowed


@pytest.mark.parametrize(
    "number",
    [
        "8 809 505-00-00",  # premium-rate: the called party earns from the call
        "+7 803 100-20-30",
        "+7 700 123 45 67",  # Kazakhstan
        "8 800 100-00-01",  # free-phone
        "+44 20 7946 0958",
        "+8 916 123 45 67",
    ],
)
async def test_premium_rate_and_international_numbers_are_refused(
    tmp_path: Path, number: str
) -> None:
    async with callback_api(tmp_path) as api:
        response = await api.order(phone=number, group="general")
        assert response.status == 400
        assert "номер" in (await response.json())["error"]
        assert await api.scheduler.run_due() == []
        assert api.originator.dialled() == []


async def test_the_same_victim_cannot_be_booked_once_per_group(tmp_path: Path) -> None:
    async with callback_api(tmp_path, groups=("general", "payments", "pensions")) as api:
        first = await api.order(phone=VICTIM, group="general")
        assert first.status == 201
        made = await first.json()
        for group, who in (("payments", "app"), ("pensions", "crm"), ("general", "crm")):
            again = await api.order(who=who, phone="8 916 123 45 67", group=group)
            assert again.status == 409
            body = await again.json()
            assert body == {"error": "Обратный звонок на этот номер уже заказан."}
            assert not re.search(r"\d", body["error"])  # no id, no count, no group
            assert made["id"] not in await again.text()


async def test_guessing_sequential_ids_finds_nothing(tmp_path: Path) -> None:
    async with callback_api(tmp_path) as api:
        made = []
        for i in range(3):
            phone = f"+7 903 000-00-0{i}"
            order = await api.order(phone=phone, group="general", application_id="1234567897")
            made.append(await order.json())
        ids = [m["id"] for m in made]
        assert len(set(ids)) == 3
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)  # 128 random bits
        missing = await api.call("GET", "/api/callbacks/" + "A" * 22)
        for guess in ("0", "1", "2", "3", "4", "17"):
            for method in ("GET", "DELETE"):
                response = await api.call(method, f"/api/callbacks/{guess}")
                assert response.status == 404
                assert await response.json() == await missing.json()
        for callback_id in ids:  # none was cancelled
            row = await api.scheduler.get_public(callback_id)
            assert row is not None and row.state == "pending"


async def test_another_services_callback_looks_like_no_callback(tmp_path: Path) -> None:
    async with callback_api(tmp_path) as api:
        made = await (await api.order(phone=VICTIM, group="general")).json()
        for method in ("GET", "DELETE"):
            foreign = await api.call(method, f"/api/callbacks/{made['id']}", "crm")
            missing = await api.call(method, "/api/callbacks/" + "A" * 22, "crm")
            assert (foreign.status, await foreign.json()) == (404, await missing.json())
        row = await api.scheduler.get_public(made["id"])
        assert row is not None and row.state == "pending"


async def test_a_flood_does_not_delay_another_groups_emergency_callback(tmp_path: Path) -> None:
    # the flood's own limits raised, to show the scheduler alone keeps the groups apart
    settings = replace(
        CallbackSettings(caller_ring_seconds=5.0),
        per_requester_per_minute=1000,
        per_requester_per_day=1000,
        per_group_per_hour=1000,
    )
    operators = (op("anna", general=5), op("ekaterina", emergency=5))
    async with callback_api(
        tmp_path, settings=settings, groups=("general", "emergency"), operators=operators
    ) as api:
        await api.node.pause("anna", "обед")  # the flooded group's operators are busy
        for i in range(300):
            flood = await api.order(phone=f"+7 916 {i:03d}-11-22", group="general")
            assert flood.status == 201
        emergency = await api.order(who="operator", phone="+7 903 555-44-33", group="emergency")

        path = f"/api/callbacks/{(await emergency.json())['id']}"

        await api.scheduler.run_due()  # one pass

        async with asyncio.timeout(10):
            while (await (await api.call("GET", path, "operator")).json())["state"] != "connected":  # noqa: ASYNC110 - the app polls
                await asyncio.sleep(0.01)
        assert api.originator.dialled() == [
            "PJSIP/ekaterina",
            "Local/79035554433@hotline-callback-out",
        ]
