"""Each long-lived piece of a controller as a `hotline.lifecycle.Part`: a name for
``/healthz``, start, health, stop.

The pieces keep their own interfaces (the ACD's `AcdService`, the recorder's
`RecorderService`, the core's `FastAgiServer`...); these adapters only say how the
composition root starts, checks and stops each, so `controller.node` can run them all through
one `Lifecycle` in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.agi.server import FastAgiServer
from hotline.ami.client import AmiClient
from hotline.settings import HttpSettings, StoreSettings
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from hotline.store.state import CallState, StateUnavailable, open_call_state
from hotline.web import start_web
from ivr.menu.watch import MenuWatcher
from recorder.part import RecorderService
from routing.admin.service import AcdAdmin
from routing.part import AcdService, CallbackService

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
class AcdPart:
    """The ACD: operator states, its timer loop, the operator API."""

    service: AcdService
    name: str = "acd"

    async def start(self) -> None:
        await self.service.start()

    async def health(self) -> str:
        return self.service.health()

    async def stop(self) -> None:
        await self.service.stop()


@dataclass
class AcdFilesPart:
    """Edits of the ACD's files through the API and by hand; ``stale`` in ``/healthz`` while
    a hand-edited file is refused and its last good version serves."""

    admin: AcdAdmin
    name: str = "acd_files"

    async def start(self) -> None:
        self.admin.start()

    async def health(self) -> str:
        return "stale" if self.admin.broken else "ok"

    async def stop(self) -> None:
        await self.admin.close()


@dataclass
class RecorderPart:
    """Recording: MixMonitor on answer, the embedded worker, the retention purge."""

    service: RecorderService
    name: str = "recorder"

    async def start(self) -> None:
        await self.service.start()

    async def health(self) -> str:
        return "ok"

    async def stop(self) -> None:
        await self.service.stop()


@dataclass
class AmiPart:
    """The AMI link: it reconnects by itself, so it is ``down`` rather than failed."""

    client: AmiClient
    name: str = "ami"

    async def start(self) -> None:
        self.client.start()

    async def health(self) -> str:
        return "up" if self.client.connected else "down"

    async def stop(self) -> None:
        await self.client.close()


@dataclass
class CallbacksPart:
    """The callback scheduler."""

    service: CallbackService
    name: str = "callbacks"

    async def start(self) -> None:
        await self.service.start()

    async def health(self) -> str:
        return "ok" if self.service.dialling else "disabled"

    async def stop(self) -> None:
        await self.service.stop()


@dataclass
class WebPart:
    """The HTTP server: ``/healthz``, ``/metrics`` and every part's routes."""

    app: web.Application
    settings: HttpSettings
    name: str = "http"
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.runner = await start_web(self.app, self.settings.host, self.settings.port)

    async def health(self) -> str:
        return "ok"  # it is answering this very request

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class MenusPart:
    """Edited menu files reach new calls without a restart."""

    watcher: MenuWatcher
    name: str = "menus"

    async def start(self) -> None:
        self.watcher.start()

    async def health(self) -> str:
        return "ok"

    async def stop(self) -> None:
        await self.watcher.close()


@dataclass
class AgiPart:
    """The FastAGI server; on stop it stops taking calls and lets those in progress finish
    up to the drain timeout."""

    server: FastAgiServer
    drain_timeout: float
    name: str = "agi"

    async def start(self) -> None:
        await self.server.start()

    async def health(self) -> str:
        return "listening" if self.server.is_serving() else "down"

    async def stop(self) -> None:
        log.info("controller stopping", extra={"drain_timeout": self.drain_timeout})
        await self.server.drain(self.drain_timeout)
