"""The back office's work queue over HTTP: the pages, their forms, who may open what, and a
hostile comment shown as text."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ticket_kit import HOUR, Office, office

from hotline.access import access_middleware, routes_without_policy
from hotline.auth import Actor
from workspace.backoffice_http import add_backoffice_routes
from workspace.model import Category

# bearer token -> who; the csrf token stands for a browser's cookie session
PEOPLE = {
    "sidorov": Actor("sidorov", "back_office", csrf_token="sid-form"),
    "orlova": Actor("orlova", "back_office", csrf_token="orl-form"),
    "ivanova": Actor("ivanova", "operator", csrf_token="iva-form"),
    "smirnova": Actor("smirnova", "supervisor", csrf_token="smi-form"),
    "kozlova": Actor("kozlova", "quality_auditor", csrf_token="koz-form"),
}


async def lookup(request: web.Request) -> Actor | None:
    return PEOPLE.get(request.headers.get("Authorization", "").removeprefix("Bearer "))


def as_(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}"}


class Site:
    def __init__(self, client: TestClient, kit: Office) -> None:
        self.client, self.kit = client, kit

    async def page(self, who: str, path: str) -> tuple[int, str]:
        async with self.client.get(path, headers=as_(who)) as response:
            return response.status, await response.text()

    async def post(self, who: str, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        form = {"csrf_token": PEOPLE[who].csrf_token or "", **data}
        async with self.client.post(
            path, data=form, headers=as_(who), allow_redirects=False
        ) as response:
            return response.status, await response.text(), response.headers.get("Location", "")

    async def one_ticket(self) -> int:
        await self.kit.unresolved_contact(Category.TECHNICAL_FAULT)
        await self.kit.desk.adopt()
        [row] = await self.kit.desk.queue(actor=PEOPLE["smirnova"], source="test")
        return row.id


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with office(f"sqlite+aiosqlite:///{tmp_path / 'bo.sqlite3'}", tmp_path) as kit:
        app = web.Application(middlewares=[access_middleware(lookup)])
        add_backoffice_routes(app, kit.desk)
        assert routes_without_policy(app) == []
        async with TestClient(TestServer(app)) as client:
            yield Site(client, kit)


async def test_the_queue_lists_by_due_time_and_highlights_overdue(site: Site) -> None:
    first = await site.one_ticket()
    site.kit.clock.advance(HOUR)
    await site.kit.unresolved_contact(Category.REGISTRATION_LOGIN, phone="79160000002")
    await site.kit.desk.adopt()
    site.kit.clock.advance(47 * HOUR + 1)  # the first is past its 48 hours, the second not
    await site.kit.desk.escalate()
    status, html = await site.page("sidorov", "/backoffice")
    assert status == 200
    rows = re.findall(r'<tr class="([a-z]*)" data-href="/backoffice/tickets/(\d+)"', html)
    assert rows[0] == ("overdue", str(first))  # soonest due first, highlighted
    assert rows[1][0] == "near"
    assert "Просрочено: 1" in html and "Скоро срок: 1" in html


async def test_a_back_office_person_comments_assigns_and_resolves(site: Site) -> None:
    ticket = await site.one_ticket()
    path = f"/backoffice/tickets/{ticket}"
    status, html = await site.page("sidorov", path)
    assert status == 200 and "Иванов Иван" in html and "не работает вход" in html
    status, _, location = await site.post("sidorov", f"{path}/comment", {"comment": "Смотрим"})
    assert (status, location) == (303, path)
    await site.post("sidorov", f"{path}/assign", {"assignee": "kuznetsova"})
    await site.post("sidorov", f"{path}/email", {"email": "citizen@example.org"})
    await site.post("sidorov", f"{path}/state", {"state": "resolved"})
    status, html = await site.page("sidorov", path)
    assert "Смотрим" in html and "kuznetsova" in html
    assert '<dd id="ticket-state">Решена</dd>' in html
    [letter] = site.kit.mailbox.messages
    assert letter["To"] == "citizen@example.org"
    # a refused change says why and keeps the page
    status, html, _ = await site.post("sidorov", f"{path}/state", {"state": "new"})
    assert status == 400 and "переход состояния заявки невозможен" in html


async def test_a_hostile_comment_is_shown_as_text(site: Site) -> None:
    ticket = await site.one_ticket()
    path = f"/backoffice/tickets/{ticket}"
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await site.post("sidorov", f"{path}/comment", {"comment": hostile})
    _, html = await site.page("smirnova", path)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    )


async def test_another_groups_ticket_answers_as_a_missing_one(site: Site) -> None:
    ticket = await site.one_ticket()
    path = f"/backoffice/tickets/{ticket}"
    assert (await site.page("orlova", path))[0] == 404
    assert (await site.page("orlova", "/backoffice/tickets/999999"))[0] == 404
    assert (await site.page("ivanova", path))[0] == 404  # an operator outside the group
    assert (await site.page("smirnova", path))[0] == 200  # supervisors see all
    status, html = await site.page("orlova", "/backoffice")
    assert status == 200 and f"/backoffice/tickets/{ticket}" not in html
    status, _, _ = await site.post("orlova", f"{path}/comment", {"comment": "чужое"})
    assert status == 404
    assert (await site.page("kozlova", "/backoffice"))[0] == 403  # not a role of the queue
    async with site.client.get("/backoffice") as anonymous:
        assert anonymous.status == 401
    # a form without the session's token is refused before it reaches the ticket
    async with site.client.post(
        f"{path}/comment", data={"comment": "x"}, headers=as_("sidorov")
    ) as forged:
        assert forged.status == 403
    view = await site.kit.desk.view(ticket, actor=PEOPLE["smirnova"], source="test")
    assert view is not None and [c.text for c in view.ticket.comments] == []
    denied = [
        (r.user_id, r.action)
        for r in await site.kit.audit_rows()
        if r.outcome in ("denied", "not_found")
    ]
    assert ("orlova", "ticket.view") in denied and ("ivanova", "ticket.view") in denied
    assert ("orlova", "ticket.comment") in denied
