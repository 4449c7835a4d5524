"""Operations endpoint: /healthz verdicts and the Prometheus exposition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TypeAlias

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ports import bound_port
from prometheus_client import CONTENT_TYPE_LATEST

from hotline.web import (
    DEFAULT_HEALTH_TIMEOUT,
    HEALTHY_STATES,
    HealthCheck,
    build_app,
    is_healthy,
    start_web,
)

Client: TypeAlias = "TestClient[web.Request, web.Application]"


def reporting(components: Mapping[str, str]) -> HealthCheck:
    async def health() -> Mapping[str, str]:
        return components

    return health


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    """Test clients opened by a test, closed afterwards."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


async def client_for(
    opened: list[Client],
    health: HealthCheck,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
) -> Client:
    client = TestClient(TestServer(build_app(health, health_timeout=health_timeout)))
    await client.start_server()
    opened.append(client)
    return client


ALL_GOOD = {"agi": "listening", "ami": "up", "database": "ok", "recorder": "disabled"}


async def test_healthz_200_when_all_healthy(
    clients: list[Client],
) -> None:
    client = await client_for(clients, reporting(ALL_GOOD))
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {"status": "ok", "components": ALL_GOOD}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "bad",
    [{"ami": "down"}, {"database": "error: connection refused"}, {"agi": "starting"}],
)
async def test_healthz_503_when_a_component_is_unhealthy(
    clients: list[Client], bad: dict[str, str]
) -> None:
    components = {**ALL_GOOD, **bad}
    client = await client_for(clients, reporting(components))
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"status": "unhealthy", "components": components}


async def test_healthz_503_when_check_raises(
    clients: list[Client],
) -> None:
    async def broken() -> Mapping[str, str]:
        raise ConnectionRefusedError("db down")

    client = await client_for(clients, broken)
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["components"] == {"healthcheck": "error: ConnectionRefusedError"}


async def test_healthz_503_when_check_hangs(
    clients: list[Client],
) -> None:
    async def hanging() -> Mapping[str, str]:
        await asyncio.Event().wait()
        return {}

    client = await client_for(clients, hanging, health_timeout=0.05)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["components"] == {"healthcheck": "error: timed out"}


def test_healthy_states_are_the_documented_ones() -> None:
    assert {"ok", "up", "listening", "disabled", "stale"} == HEALTHY_STATES
    assert is_healthy({})
    assert not is_healthy({"ami": "down", "agi": "listening"})


async def test_metrics_exposition(
    clients: list[Client],
) -> None:
    client = await client_for(clients, reporting(ALL_GOOD))
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = await response.text()
    assert "hotline_calls_in_progress" in text
    assert "# TYPE hotline_calls_in_progress gauge" in text


async def test_start_web_serves_and_cleans_up() -> None:
    runner = await start_web(build_app(reporting(ALL_GOOD)), "127.0.0.1", 0)
    port = bound_port(runner)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
    finally:
        await runner.cleanup()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/healthz")


async def test_start_web_port_zero_reports_address() -> None:
    runner = await start_web(build_app(reporting(ALL_GOOD)), "127.0.0.1", 0)
    try:
        (address,) = runner.addresses
        assert address[1] != 0
    finally:
        await runner.cleanup()


async def test_start_web_port_in_use_raises() -> None:
    runner = await start_web(build_app(reporting(ALL_GOOD)), "127.0.0.1", 0)
    try:
        port = runner.addresses[0][1]
        with pytest.raises(OSError):
            await start_web(build_app(reporting(ALL_GOOD)), "127.0.0.1", port)
    finally:
        await runner.cleanup()
