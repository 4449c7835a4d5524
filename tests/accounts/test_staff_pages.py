"""``/me`` links a staff member to the pages of their role: each page's own route policy
decides who sees its link, on a test site and on a started controller with every part."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from controllers import WITHOUT_RECORDER, controller_settings, started
from databases import empty_database
from staff import START, Site, accounts_app, first_login, staff_kit

from hotline.access import allow, people
from hotline.auth import Actor, Role
from hotline.clock import ManualClock
from hotline.web_pages import add_staff_page, staff_pages

LINKS = re.compile(r'<li><a href="([^"]+)">([^<]+)</a></li>')


@allow(people(Role.OPERATOR, Role.SUPERVISOR))
async def desk(request: web.Request) -> web.Response:
    return web.Response(text="desk")


@allow(people(Role.SUPERVISOR))
async def board(request: web.Request) -> web.Response:
    return web.Response(text="board")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = ManualClock(START)
    async with (
        empty_database("sqlite", tmp_path / "accounts.sqlite3", "accounts") as url,
        staff_kit(url, tmp_path, clock=clock) as kit,
    ):
        app = accounts_app(kit)
        app.router.add_get("/desk", desk)
        add_staff_page(app, "/desk", "Рабочее место")
        app.router.add_get("/board", board)
        add_staff_page(app, "/board", "Табло")
        async with TestClient(TestServer(app)) as client:
            yield Site(kit, clock, client)


async def test_me_links_only_the_pages_the_role_may_open(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")  # an operator
    status, html, _ = await browser.get("/me")
    assert status == 200 and "Рабочие страницы" in html
    assert LINKS.findall(html) == [("/desk", "Рабочее место")]
    assert (await browser.get("/board"))[0] == 403  # the link left out is a page refused


async def test_a_started_controller_lists_each_roles_pages(tmp_path: Path) -> None:
    settings = controller_settings(tmp_path, WITHOUT_RECORDER)
    desk, tickets = "/desk", "/backoffice"
    board, report, quality = "/supervisor/wallboard", "/supervisor/reports", "/quality"
    expected = {
        Role.OPERATOR: [desk, tickets],
        Role.BACK_OFFICE: [tickets],
        Role.SUPERVISOR: [desk, tickets, board, report, quality],
        Role.QUALITY_AUDITOR: [report, quality],
        Role.ADMIN: [board],
        Role.SECURITY_OFFICER: [],
    }
    async with started(settings) as controller:
        for role, paths in expected.items():
            listed = staff_pages(controller.app, Actor("someone", role))
            assert sorted(page.path for page in listed) == sorted(paths), role
