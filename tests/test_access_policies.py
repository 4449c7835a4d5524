"""The access middleware itself (`hotline.access`): public routes, roles, scopes, the CSRF echo
of cookie sessions, routes without a policy, and what it leaves alone (404, 405); the bearer
token lookup; /metrics by key or on a private address (`hotline.web`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.access import (
    PUBLIC,
    BearerTokens,
    access_middleware,
    actor_of,
    allow,
    people,
    routes_without_policy,
    services,
)
from hotline.auth import Actor, Role, TokenBook
from hotline.web import build_app, is_private_address

SESSION_CSRF = "csrf-of-the-session"
ACTORS = {
    "operator": Actor("ivanova", Role.OPERATOR),
    "supervisor": Actor("orlova", Role.SUPERVISOR),
    "portal": Actor("portal", "", kind="service", scopes=frozenset({"callbacks:create"})),
    "scraper": Actor("prom", "", kind="service", scopes=frozenset({"metrics:read"})),
    "cookie": Actor("orlova", Role.SUPERVISOR, csrf_token=SESSION_CSRF),
}


@dataclass
class Gate:
    """What the middleware told and asked: refusals (status) and how often it looked up."""

    refused: list[int] = field(default_factory=list)
    lookups: int = 0
    ran: list[str] = field(default_factory=list)


def lookup_for(gate: Gate) -> Callable[[web.Request], object]:
    async def lookup(request: web.Request) -> Actor | None:
        gate.lookups += 1
        return ACTORS.get(request.headers.get("X-Test-Actor", ""))

    return lookup


@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Gate]]:
    gate = Gate()

    def handler(name: str) -> Callable[[web.Request], object]:
        async def handle(request: web.Request) -> web.Response:
            gate.ran.append(name)
            who = actor_of(request).user_id if name != "public" else ""
            return web.json_response({"ran": name, "who": who})

        return handle

    middleware = access_middleware(
        lookup_for(gate),  # type: ignore[arg-type]
        on_refused=lambda request, status: gate.refused.append(status),
    )
    app = web.Application(middlewares=[middleware])
    app.router.add_get("/public", allow(PUBLIC)(handler("public")))
    app.router.add_post("/supervise", allow(people(Role.SUPERVISOR))(handler("supervise")))
    app.router.add_get("/supervise", allow(people(Role.SUPERVISOR))(handler("supervise")))
    app.router.add_post("/book", allow(services("callbacks:create"))(handler("book")))
    either = people(Role.OPERATOR) | services("callbacks:create")
    app.router.add_get("/either", allow(either)(handler("either")))
    app.router.add_get("/forgotten", handler("forgotten"))
    async with TestClient(TestServer(app)) as client:
        yield client, gate


def who(name: str, **extra: str) -> dict[str, str]:
    return {"X-Test-Actor": name, **extra}


async def test_public_routes_need_nobody_and_look_nobody_up(api: tuple[TestClient, Gate]) -> None:
    client, gate = api
    reply = await client.get("/public")
    assert reply.status == 200 and (await reply.json())["ran"] == "public"
    assert gate.lookups == 0 and gate.refused == []


async def test_roles_decide_and_nobody_is_401(api: tuple[TestClient, Gate]) -> None:
    client, gate = api
    reply = await client.get("/supervise")
    assert reply.status == 401 and "вход" in (await reply.json())["error"]
    assert reply.headers["Cache-Control"] == "no-store"
    assert (await client.get("/supervise", headers=who("operator"))).status == 403
    assert (await client.get("/supervise", headers=who("portal"))).status == 403
    reply = await client.get("/supervise", headers=who("supervisor"))
    assert reply.status == 200 and (await reply.json())["who"] == "orlova"
    assert gate.refused == [401, 403, 403] and gate.ran == ["supervise"]


async def test_services_need_the_scope_and_people_never_pass_as_services(
    api: tuple[TestClient, Gate],
) -> None:
    client, gate = api
    assert (await client.post("/book", headers=who("portal"))).status == 200
    assert (await client.post("/book", headers=who("scraper"))).status == 403
    assert (await client.post("/book", headers=who("supervisor"))).status == 403
    assert (await client.get("/either", headers=who("portal"))).status == 200
    assert (await client.get("/either", headers=who("operator"))).status == 200
    assert (await client.get("/either", headers=who("supervisor"))).status == 403
    assert gate.ran == ["book", "either", "either"]


async def test_a_cookie_session_must_echo_its_csrf_token_to_change_state(
    api: tuple[TestClient, Gate],
) -> None:
    client, gate = api
    # reading needs no echo
    assert (await client.get("/supervise", headers=who("cookie"))).status == 200
    # a state change without it, or with a wrong one, is refused before the handler runs
    for extra in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": ""}):
        reply = await client.post("/supervise", headers=who("cookie", **extra))
        assert reply.status == 403 and "проверочного кода" in (await reply.json())["error"]
    reply = await client.post(
        "/supervise", headers=who("cookie"), data={"csrf_token": "guess", "x": "1"}
    )
    assert reply.status == 403
    # the header or the form field carrying it lets the request through
    headers = who("cookie", **{"X-CSRF-Token": SESSION_CSRF})
    assert (await client.post("/supervise", headers=headers)).status == 200
    form = {"csrf_token": SESSION_CSRF, "x": "1"}
    assert (await client.post("/supervise", headers=who("cookie"), data=form)).status == 200
    # a text/plain body (what a cross-site form can send) carries no form field to echo
    reply = await client.post(
        "/supervise",
        headers=who("cookie", **{"Content-Type": "text/plain"}),
        data=f"csrf_token={SESSION_CSRF}",
    )
    assert reply.status == 403
    assert gate.ran == ["supervise", "supervise", "supervise"]
    assert gate.refused == [403] * 5


async def test_a_route_without_a_policy_is_refused_not_opened(
    api: tuple[TestClient, Gate], caplog: pytest.LogCaptureFixture
) -> None:
    client, gate = api
    reply = await client.get("/forgotten", headers=who("supervisor"))
    assert reply.status == 500 and "без политики" in (await reply.json())["error"]
    assert gate.ran == [] and gate.lookups == 0
    assert "GET /forgotten declares no access policy" in caplog.text
    assert routes_without_policy(client.server.app) == ["GET /forgotten"]


async def test_404_and_405_are_aiohttp_s_own_answers(api: tuple[TestClient, Gate]) -> None:
    client, gate = api
    assert (await client.get("/nowhere")).status == 404
    assert (await client.delete("/supervise")).status == 405
    assert (await client.post("/public")).status == 405
    assert gate.lookups == 0 and gate.refused == []


async def test_bearer_tokens_come_only_from_a_bearer_header() -> None:
    tokens = BearerTokens(TokenBook.of({"s3cret": Actor("orlova", Role.SUPERVISOR)}))
    app = web.Application(middlewares=[access_middleware(tokens)])

    @allow(people(Role.SUPERVISOR))
    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=actor_of(request).user_id)

    app.router.add_get("/", handle)
    async with TestClient(TestServer(app)) as client:
        for header, status in (
            ("Bearer s3cret", 200),
            ("bearer  s3cret ", 200),
            ("Bearer wrong", 401),
            ("Basic czNjcmV0", 401),
            ("s3cret", 401),
            ("Bearer", 401),
        ):
            reply = await client.get("/", headers={"Authorization": header})
            assert reply.status == status, header


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("10.20.0.5", True),
        ("192.168.1.10", True),
        ("172.16.0.1", True),
        ("fd00::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("95.173.128.1", False),
        ("8.8.8.8", False),
        ("hotline.example.ru", False),
    ],
)
def test_which_addresses_count_as_private(host: str, private: bool) -> None:
    assert is_private_address(host) is private


@pytest.mark.parametrize("public", [True, False])
async def test_metrics_by_key_unless_bound_to_a_private_address(public: bool) -> None:
    async def health() -> dict[str, str]:
        return {}

    gate = Gate()
    middleware = access_middleware(lookup_for(gate))  # type: ignore[arg-type]
    app = build_app(health, middlewares=[middleware], metrics_public=public)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == (200 if public else 401)
        keyed = await client.get("/metrics", headers=who("scraper"))
        assert keyed.status == 200 and "hotline_errors_total" in await keyed.text()
        staff = await client.get("/metrics", headers=who("supervisor"))
        assert staff.status == (200 if public else 403)
