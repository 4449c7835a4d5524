"""The callback HTTP API as the controller serves it, for tests: a migrated SQLite database,
the simulator's AMI server playing Asterisk, an ACD node, the scheduler, and the routes behind
`hotline.access.access_middleware` with a test lookup (``Authorization: Bearer <name>`` names
one of `ACTORS`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from hotline.access import access_middleware
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.auth import Actor, Role
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
from routing.node import AcdNode
from routing.operators import OperatorSpec
from routing.testing import group, memory_node, op
from tests.routing.test_callbacks import WorkingHours

T0: Final = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # inside WorkingHours
ALL_SCOPES: Final = frozenset({"callbacks:create", "callbacks:read", "callbacks:cancel"})
ACTORS: Final[Mapping[str, Actor]] = {
    "app": Actor("mobile-app", "", kind="service", scopes=ALL_SCOPES),
    "crm": Actor("crm", "", kind="service", scopes=ALL_SCOPES),
    "reader": Actor("status-board", "", kind="service", scopes=frozenset({"callbacks:read"})),
    "creator": Actor("portal", "", kind="service", scopes=frozenset({"callbacks:create"})),
    "operator": Actor("petrova", Role.OPERATOR),
    "supervisor": Actor("sidorov", Role.SUPERVISOR),
    "auditor": Actor("kuznetsova", Role.QUALITY_AUDITOR),
}


async def bearer_lookup(request: web.Request) -> Actor | None:
    scheme, _, name = request.headers.get("Authorization", "").partition(" ")
    return ACTORS.get(name) if scheme == "Bearer" else None


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    scheduler: CallbackScheduler
    originator: ScriptedOriginator
    node: AcdNode
    audit: AuditLog

    async def call(
        self, method: str, path: str, who: str | None = "app", **kwargs: Any
    ) -> ClientResponse:
        """A request as `who` (a name in ACTORS; None: no credentials)."""
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {who}"
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def order(self, who: str = "app", **body: Any) -> ClientResponse:
        return await self.call("POST", "/api/callbacks", who, json=body)


@asynccontextmanager
async def callback_api(
    tmp_path: Path,
    *,
    settings: CallbackSettings | None = None,
    groups: tuple[str, ...] = ("general", "payments"),
    operators: tuple[OperatorSpec, ...] = (op("anna", general=5),),
) -> AsyncIterator[Api]:
    """The API on a fresh database; the `operators` (by default ``anna``, general) are logged
    in and ready."""
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
    node = memory_node({g: group(g) for g in groups}, operators)
    await node.start()
    for operator in operators:
        await node.login(operator.id)
    scheduler = CallbackScheduler(
        CallbackStore(engine),
        node,
        ami,
        settings=settings or CallbackSettings(caller_ring_seconds=5.0),
        hours_for=lambda g: WorkingHours(),
        now=lambda: T0,
    )
    audit = AuditLog(engine)
    app = web.Application(middlewares=[access_middleware(bearer_lookup)])
    add_callback_routes(app, scheduler, audit)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Api(client, scheduler, originator, node, audit)
    finally:
        await scheduler.close()
        await ami.close()
        await server.close()
        await engine.dispose()
