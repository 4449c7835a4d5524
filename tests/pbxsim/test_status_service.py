"""The stand-in application-status service: answers, codes, slow and failing entries, fixtures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.validators import VALIDATORS
from pbxsim.status_service import FixtureError, load_fixtures, make_app, serve

Client = TestClient[web.Request, web.Application]
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "dialplans" / "status-fixtures.yaml"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app(load_fixtures(FIXTURES)))) as test_client:
        yield test_client


async def test_known_application(client: Client) -> None:
    response = await client.get("/applications/1234567897")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert body == {
        "number": "1234567897",
        "status": "Заявление принято и передано на рассмотрение",
        "updated_at": "2026-11-25T10:15:00+03:00",
    }
    assert "Заявление" in await response.text()  # Russian sent as UTF-8, not \u escapes


async def test_unknown_and_malformed_numbers(client: Client) -> None:
    missing = await client.get("/applications/9999999999")
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    for bad in ("12345", "12345678901", "abcdefghij", "%D0%B9" * 3):
        response = await client.get(f"/applications/{bad}")
        assert response.status == 400, bad
    assert (await client.get("/applications/")).status == 404
    health = await client.get("/healthz")
    assert (await health.json())["applications"] == len(load_fixtures(FIXTURES))


async def test_failing_entry_returns_5xx(client: Client) -> None:
    response = await client.get("/applications/2222222222")
    assert response.status == 503


async def test_slow_entry_makes_a_client_time_out(tmp_path: Path) -> None:
    fixture = tmp_path / "slow.yaml"
    fixture.write_text(
        'applications:\n  "1234567897":\n    status: Готово\n'
        '    updated_at: "2026-11-27T10:00:00+03:00"\n    delay: 5\n'
    )
    async with TestClient(TestServer(make_app(load_fixtures(fixture)))) as slow:
        with pytest.raises(asyncio.TimeoutError):
            await slow.get("/applications/1234567897", timeout=aiohttp.ClientTimeout(total=0.2))


async def test_service_that_is_down_refuses_connections() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = await serve(load_fixtures(FIXTURES), "127.0.0.1", port)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/applications/1234567897") as response:
            assert response.status == 200
        await runner.cleanup()
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(f"http://127.0.0.1:{port}/applications/1234567897")


def test_fixture_numbers_pass_the_application_check() -> None:
    for number in load_fixtures(FIXTURES):
        assert VALIDATORS["application"](number), number


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            'applications:\n  "123":\n    status: Да\n    updated_at: "2026-11-27T10:00:00"\n',
            3,
            "10 цифр",
        ),
        (
            'applications:\n  "1234567897":\n    updated_at: "2026-11-27T10:00:00"\n',
            3,
            "нет статуса",
        ),
        ('applications:\n  "1234567897":\n    status: Да\n    updated_at: вчера\n', 4, "ISO 8601"),
        (
            'applications:\n  "1234567897":\n    status: Да\n'
            '    updated_at: "2026-11-27"\n    fail: 200\n',
            5,
            "5xx",
        ),
        ("applications:\n  - 1\n", 2, "must be a mapping"),
        ("apps: {}\n", 1, "неизвестный ключ"),
        ("applications: {\n", 2, "not valid YAML"),
    ],
)
def test_broken_fixtures_point_at_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "fixtures.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FixtureError) as raised:
        load_fixtures(path)
    problem = raised.value.problems[0]
    assert (problem.line, fragment in problem.message) == (line, True), problem


async def test_status_service_command_fails_cleanly_on_bad_fixture(tmp_path: Path) -> None:
    import argparse

    from controller.status_cli import add_status_command

    parser = argparse.ArgumentParser()
    add_status_command(parser.add_subparsers())
    bad = tmp_path / "bad.yaml"
    bad.write_text("apps: {}\n")
    args = parser.parse_args(["status-service", "--fixtures", str(bad)])
    assert await args.run(args, None) == 1
