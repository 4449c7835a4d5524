"""Each long-lived piece of a controller as a `hotline.lifecycle.Part`: a name for
``/healthz``, start, health, stop.

The pieces keep their own interfaces (the ACD's `AcdService`, the recorder's
`RecorderService`, the core's `FastAgiServer`...); these adapters only say how the
composition root starts, checks and stops each, so `controller.node` can run them all through
one `Lifecycle` in order. Most need no more than `PartOf`, which names their own methods.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.agi.server import FastAgiServer
from hotline.settings import HttpSettings, StoreSettings
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from hotline.store.state import CallState, StateUnavailable, open_call_state
from hotline.tls import server_context
from hotline.web import ConnectionLimits, start_web

log = logging.getLogger("controller.node")


@dataclass
class DatabasePart:
    """The database: migrations applied once at start, then one engine for every part."""

    settings: StoreSettings
    name: str = "database"
    engine: AsyncEngine | None = None

    async def start(self) -> None:
        await upgrade(self.settings.database_url)
        self.engine = create_engine(self.settings.database_url)
        # SQLAlchemy runs its first-connect hooks once, on the first connection; two parts
        # opening the first two connections at once raced there ("deque mutated during
        # iteration"). One connection now, before any part starts, settles it.
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def health(self) -> str:
        if self.engine is None:
            return "down"
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # any driver error means the same to an operator
            return f"error: {type(error).__name__}"
        return "ok"

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


@dataclass
class CallStatePart:
    """Shared per-call state, in process or in Redis."""

    settings: StoreSettings
    name: str = "state"
    state: CallState | None = None

    async def start(self) -> None:
        self.state = open_call_state(self.settings.state_backend, self.settings.redis_url)
        if not await self.state.ping():
            # Degraded, not dead: calls still flow; shared state comes back with Redis.
            backend = self.settings.state_backend
            log.error("call state backend is unreachable", extra={"backend": backend})

    async def health(self) -> str:
        if self.state is None:
            return "down"
        try:
            return "ok" if await self.state.ping() else "down"
        except StateUnavailable:
            return "down"

    async def stop(self) -> None:
        if self.state is not None:
            await self.state.close()


@dataclass
class PartOf:
    """A part whose own methods already start and stop it (the ACD, its files' watcher, the
    recorder, the AMI link, callbacks, the menus' watcher): the adapter only names them.
    `start` and `stop` may be plain functions or coroutines; `health` answers in one word."""

    name: str
    start_with: Callable[[], object]
    stop_with: Callable[[], object]
    health_of: Callable[[], str] = field(default=lambda: "ok")

    async def start(self) -> None:
        await _finished(self.start_with())

    async def health(self) -> str:
        return self.health_of()

    async def stop(self) -> None:
        await _finished(self.stop_with())


async def _finished(result: object) -> None:
    if inspect.isawaitable(result):
        await result


@dataclass
class WebPart:
    """The HTTP server: ``/healthz``, ``/metrics`` and every part's routes."""

    app: web.Application
    settings: HttpSettings
    name: str = "http"
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start serving; a TLS key other users can read stops start-up (`ConfigError`)."""
        settings = self.settings
        context = None
        if settings.tls:
            context = server_context(Path(settings.tls_cert_file), Path(settings.tls_key_file))
        elif settings.allow_plain_http:
            log.warning(
                "HTTP server is plain HTTP (allow_plain_http): a TLS proxy must encrypt it",
                extra={"host": settings.host},
            )
        else:
            log.info(
                "HTTP server is plain HTTP, on loopback only: set [http] tls_cert_file and "
                "tls_key_file to serve HTTPS to other machines",
                extra={"host": settings.host},
            )
        limits = ConnectionLimits(
            header_timeout=settings.header_timeout,
            max_connections=settings.max_connections,
            max_connections_per_peer=settings.max_connections_per_peer,
        )
        self.runner = await start_web(
            self.app, settings.host, settings.port, limits, ssl_context=context
        )

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS picked when the settings say 0)."""
        assert self.runner is not None, "not started"
        return int(self.runner.addresses[0][1])

    async def health(self) -> str:
        return "ok"  # it is answering this very request

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class AgiPart:
    """The FastAGI server; on stop it stops taking calls, hands the callers in the menu back
    to the dialplan at once and lets those with an operator finish up to the drain timeout."""

    server: FastAgiServer
    drain_timeout: float
    name: str = "agi"

    async def start(self) -> None:
        await self.server.start()

    async def health(self) -> str:
        return self.server.health()  # "listening", or "refusing: ..." / "down: ..." (503)

    async def stop(self) -> None:
        log.info("controller stopping", extra={"drain_timeout": self.drain_timeout})
        await self.server.drain(self.drain_timeout)
