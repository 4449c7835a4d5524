"""``lookup``: the stand-in status service over HTTP (aiohttp); found / not found / failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from ports import bound_port, refusing_port

from ivr.menu.status import HttpStatusService
from pbxsim.status_service import load_fixtures, serve

FIXTURES = Path(__file__).resolve().parents[2] / "dialplans" / "status-fixtures.yaml"
LOOKUP = """\
  a: {{kind: set, values: {{application: "{number}"}}, next: b}}
  b:
    kind: lookup
    path: "/applications/${{application}}"
    timeout: {timeout}
    found: found
    not_found: missing
    failure: broken
  found: {{kind: hangup}}
  missing: {{kind: queue, group: missing}}
  broken: {{kind: queue, group: broken}}
"""


@pytest.fixture
async def status_url() -> AsyncIterator[str]:
    runner = await serve(load_fixtures(FIXTURES), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


async def test_found_stores_the_fields(run_menu, status_url: str) -> None:
    nodes = LOOKUP.format(number="1234567897", timeout=3)
    result, _ = await run_menu(nodes, status=HttpStatusService(status_url))
    assert str(result.end) == "hangup"
    assert result.variables["status_status"] == "Заявление принято и передано на рассмотрение"
    assert result.variables["status_updated_at"] == "2026-11-25T10:15:00+03:00"


async def test_unknown_application_is_not_found(run_menu, status_url: str) -> None:
    result, _ = await run_menu(
        LOOKUP.format(number="9999999999", timeout=3), status=HttpStatusService(status_url)
    )
    assert str(result.end) == "queue missing"


async def test_a_5xx_answer_is_a_failure(run_menu, status_url: str) -> None:
    result, _ = await run_menu(
        LOOKUP.format(number="2222222222", timeout=3), status=HttpStatusService(status_url)
    )
    assert str(result.end) == "queue broken"


async def test_a_slow_service_is_a_failure_after_the_timeout(run_menu) -> None:
    # a server that takes the request and never answers
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        result, _ = await run_menu(
            LOOKUP.format(number="1111111116", timeout=0.2),
            status=HttpStatusService(f"http://127.0.0.1:{port}"),
        )
    finally:
        silent.close()
    assert str(result.end) == "queue broken"


async def test_a_service_that_is_down_is_a_failure(run_menu) -> None:
    with refusing_port() as port:
        service = HttpStatusService(f"http://127.0.0.1:{port}")
        result, _ = await run_menu(LOOKUP.format(number="1234567897", timeout=1), status=service)
    assert str(result.end) == "queue broken"


async def test_garbage_from_the_service_is_a_failure(run_menu) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>not json", content_type="application/json")

    app = web.Application()
    app.router.add_get("/applications/{n}", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = bound_port(runner)
    try:
        result, _ = await run_menu(
            LOOKUP.format(number="1", timeout=1),
            status=HttpStatusService(f"http://127.0.0.1:{port}"),
        )
    finally:
        await runner.cleanup()
    assert str(result.end) == "queue broken"


async def test_what_the_caller_typed_cannot_change_the_path(run_menu) -> None:
    seen: list[str] = []

    class Recording:
        async def get(self, path: str, seconds: float):
            from ivr.menu.model import LookupResult

            seen.append(path)
            await asyncio.sleep(0)
            return LookupResult("not_found")

    await run_menu(LOOKUP.format(number="../admin?x=1", timeout=1), status=Recording())
    assert seen == ["/applications/..%2Fadmin%3Fx%3D1"]


async def test_no_status_service_is_a_failure(run_menu) -> None:
    result, _ = await run_menu(LOOKUP.format(number="1234567897", timeout=1))
    assert str(result.end) == "queue broken"
