"""The operator's desktop: the pop pushed at ring time, the contact opened at answer, the
wrap-up, history and search over HTTP, each behind its access policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from databases import migrated_engine

from hotline.access import access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import ManualClock
from workspace.desk import Desk
from workspace.http import add_desk_routes
from workspace.model import ContactChannel, ContactDraft, ContactState
from workspace.numbers import parse_contact_number
from workspace.pop import Ring
from workspace.registry import ContactRegistry
from workspace.store import ContactStore

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0
# bearer token -> who; a supervisor's cookie session is simulated by a csrf token
PEOPLE = {
    "tok-ivanova": Actor("ivanova", "operator"),
    "tok-petrov": Actor("petrov", "operator"),
    "tok-smirnova": Actor("smirnova", "supervisor"),
    "tok-browser": Actor("ivanova", "operator", csrf_token="form-secret"),
    "tok-auditor": Actor("kozlova", "quality_auditor"),
}


async def lookup(request: web.Request) -> Actor | None:
    header = request.headers.get("Authorization", "")
    return PEOPLE.get(header.removeprefix("Bearer "))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Floor:
    def __init__(
        self,
        client: TestClient,
        desk: Desk,
        registry: ContactRegistry,
        clock: ManualClock,
        audit: AuditLog,
    ) -> None:
        self.client, self.desk, self.registry, self.clock, self.audit = (
            client,
            desk,
            registry,
            clock,
            audit,
        )


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[Floor]:
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path / 'desk.sqlite3'}") as engine:
        clock = ManualClock(START)
        audit = AuditLog(engine)
        registry = ContactRegistry(ContactStore(engine), audit, clock)
        desk = Desk(registry)
        app = web.Application(middlewares=[access_middleware(lookup)])
        add_desk_routes(app, desk, registry)
        async with TestClient(TestServer(app)) as client:
            yield Floor(client, desk, registry, clock, audit)


def ring_for(operator: str = "ivanova", call_id: str = "call-1") -> Ring:
    return Ring(
        call_id=call_id,
        operator_id=operator,
        group="application-status",
        caller_phone="79161234567",
        entries={
            "line": "88004000004",
            "menu_path": "greeting > main > status",
            "topic": "статус заявления",
            "application": "1234567897",
            "status_status": "Заявление на рассмотрении",
            "snils": "11223344595",
        },
        waited_seconds=42.4,
    )


async def read_event(stream: object, kind: str) -> dict[str, object]:
    """The next SSE event of `kind` on an open response (comments skipped). The timeout only
    turns a missing event into a failure instead of a hung test."""
    async with asyncio.timeout(30):
        return await _next_event(stream, kind)


async def _next_event(stream: object, kind: str) -> dict[str, object]:
    name = ""
    while True:
        line = (await stream.content.readline()).decode().rstrip("\n")  # type: ignore[attr-defined]
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == kind:
            return json.loads(line.removeprefix("data: "))


async def test_the_pop_reaches_the_operators_open_desktop_with_history_and_masking(
    floor: Floor,
) -> None:
    earlier = await floor.registry.open(
        ContactDraft(
            ContactChannel.CALL, caller_phone="79161234567", description="Где моё заявление?"
        ),
        actor=Actor("petrov", "operator"),
        source="test",
    )
    floor.clock.advance(3 * DAY)
    async with floor.client.get("/desk/events", headers=bearer("tok-ivanova")) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        await stream.content.readline()  # ": connected": the subscription is in place
        other_desk = floor.client.get("/desk/events", headers=bearer("tok-petrov"))
        async with other_desk as petrov_stream:
            await petrov_stream.content.readline()
            await floor.desk.ring(ring_for("ivanova"))
            pop = await read_event(stream, "pop")
            # petrov's desktop got nothing: the next thing on it is the keepalive at most
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await read_event(petrov_stream, "pop")
    assert pop["line"] == "88004000004" and pop["caller_phone"] == "79161234567"
    assert pop["application_number"] == "1234567897"
    assert pop["application_status"] == "Заявление на рассмотрении"
    assert pop["menu_path"] == "greeting > main > status" and pop["waited_seconds"] == 42
    assert pop["entries"] == {"snils": "*********95"}  # the last two digits only
    assert pop["repeat"] is True
    assert [h["number"] for h in pop["history"]] == [str(earlier.number)]  # type: ignore[index]
    last = (await floor.audit.entries())[-1]
    assert (last.user_id, last.action, last.source) == ("ivanova", "contact.history", "pop")


async def test_answer_opens_the_contact_and_the_operator_closes_it(floor: Floor) -> None:
    async with floor.client.get("/desk/events", headers=bearer("tok-ivanova")) as stream:
        await stream.content.readline()
        await floor.desk.ring(ring_for("ivanova"))
        await floor.desk.answered("call-1")
        opened = await read_event(stream, "contact")
    number = parse_contact_number(str(opened["number"]))
    assert number is not None
    contact = await floor.registry.view(number, actor=Actor("t", "system"), source="t")
    assert contact is not None
    assert (contact.call_id, contact.operator_id, contact.line, contact.application_number) == (
        "call-1",
        "ivanova",
        "88004000004",
        "1234567897",
    )
    wrap_up = {"category": "application_status", "resolution": "Сообщён срок", "resolved": True}
    url = f"/desk/api/contacts/{number}/wrap-up"
    refused = await floor.client.post(url, json=wrap_up, headers=bearer("tok-petrov"))
    assert refused.status == 403  # another operator's contact
    done = await floor.client.post(url, json=wrap_up, headers=bearer("tok-ivanova"))
    assert done.status == 200
    body = await done.json()
    assert (body["state"], body["resolution"], body["first_contact_resolution"]) == (
        ContactState.RESOLVED.value,
        "Сообщён срок",
        True,
    )


async def test_a_pop_moved_to_another_operator_is_withdrawn_from_the_first(floor: Floor) -> None:
    async with floor.client.get("/desk/events", headers=bearer("tok-ivanova")) as stream:
        await stream.content.readline()
        await floor.desk.ring(ring_for("ivanova"))
        await read_event(stream, "pop")
        await floor.desk.ring(ring_for("petrov"))  # ivanova did not answer
        withdrawn = await read_event(stream, "pop_withdrawn")
    assert withdrawn == {"call_id": "call-1"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"category": "application_status", "resolution": " ", "resolved": True},
            "Опишите решение.",
        ),
        (
            {"category": "weather", "resolution": "x", "resolved": True},
            "Выберите категорию обращения.",
        ),
        (
            {"category": "other", "resolution": "x", "resolved": "yes"},
            "Укажите, решён ли вопрос на этом обращении.",
        ),
        ([1, 2], "Тело запроса: объект JSON."),
    ],
)
async def test_a_bad_wrap_up_is_refused_and_changes_nothing(
    floor: Floor, body: object, error: str
) -> None:
    contact = await floor.registry.open(
        ContactDraft(ContactChannel.CALL, operator_id="ivanova"),
        actor=Actor("i", "operator"),
        source="t",
    )
    answer = await floor.client.post(
        f"/desk/api/contacts/{contact.number}/wrap-up", json=body, headers=bearer("tok-ivanova")
    )
    assert answer.status == 400 and (await answer.json())["error"] == error
    again = await floor.registry.view(contact.number, actor=Actor("t", "system"), source="t")
    assert again is not None and again.state is ContactState.OPEN and again.resolution == ""


async def test_search_by_number_and_by_words_and_history(floor: Floor) -> None:
    contact = await floor.registry.open(
        ContactDraft(
            ContactChannel.CALL,
            caller_phone="79161234567",
            description="Не приходит код подтверждения",
        ),
        actor=Actor("ivanova", "operator"),
        source="t",
    )
    for query in (str(contact.number), contact.number.digits, "код подтверждения"):
        found = await floor.client.get(
            "/desk/api/search", params={"q": query}, headers=bearer("tok-smirnova")
        )
        assert [c["number"] for c in (await found.json())["contacts"]] == [str(contact.number)]
    history = await floor.client.get(
        "/desk/api/history", params={"phone": "79161234567"}, headers=bearer("tok-ivanova")
    )
    assert [c["number"] for c in (await history.json())["contacts"]] == [str(contact.number)]
    empty = await floor.client.get("/desk/api/history", headers=bearer("tok-ivanova"))
    assert empty.status == 400


async def test_every_desk_route_refuses_strangers_and_other_roles(floor: Floor) -> None:
    for path in (
        "/desk",
        "/desk/events",
        "/desk/api/search?q=x",
        "/desk/api/contacts/2026-0000001-4",
    ):
        assert (await floor.client.get(path)).status == 401
        assert (await floor.client.get(path, headers=bearer("tok-auditor"))).status == 403
    # the script and style are public and hold no data; nothing else is served from there
    assert (await floor.client.get("/desk/static/desk.js")).status == 200
    assert (await floor.client.get("/desk/static/..%2fhttp.py")).status == 404
    assert (await floor.client.get("/desk/static/desk.html")).status == 404


async def test_a_cookie_session_must_echo_its_csrf_token_to_close_a_contact(floor: Floor) -> None:
    contact = await floor.registry.open(
        ContactDraft(ContactChannel.CALL, operator_id="ivanova"),
        actor=Actor("i", "operator"),
        source="t",
    )
    url = f"/desk/api/contacts/{contact.number}/wrap-up"
    body = {"category": "other", "resolution": "x", "resolved": True}
    forged = await floor.client.post(url, json=body, headers=bearer("tok-browser"))
    assert forged.status == 403
    echoed = await floor.client.post(
        url, json=body, headers={**bearer("tok-browser"), "X-CSRF-Token": "form-secret"}
    )
    assert echoed.status == 200


async def test_the_page_is_russian_and_carries_the_csrf_token(floor: Floor) -> None:
    page = await floor.client.get("/desk", headers=bearer("tok-browser"))
    html = await page.text()
    assert page.status == 200
    assert "Рабочее место" in html and 'content="form-secret"' in html
    assert "http://" not in html and "https://" not in html  # nothing from outside


async def test_an_answer_right_after_the_ring_waits_for_the_pop(floor: Floor) -> None:
    # the ACD tells both without waiting; the contact must still be opened from the pop
    floor.desk.ring_soon(ring_for("ivanova", call_id="fast"))
    floor.desk.answered_soon("fast")
    await floor.desk.idle()
    assert floor.desk.pop_of("fast") is None  # consumed by the answer
    contact = await floor.registry.of_call("fast")
    assert contact is not None and contact.operator_id == "ivanova"
