"""The running controller: the parts of `hotline serve` put together, started and stopped in
order.

Start: database migrations, call state, the ACD (when ``[routing] enabled``: operator states,
its timer loop, metrics, the operator API, device state over AMI, the ``acd-answered`` FastAGI
hook and the operators' ``operator-feature`` codes, and its callbacks: the scheduler,
``/api/callbacks`` and the menus' ``callback`` node),
the recorder (when enabled: MixMonitor on answer,
the embedded pipeline worker, the retention purge, the `/recordings` API), the AMI link (when
enabled), the FastAGI server, the operations endpoint. Stop (SIGTERM or Ctrl-C): stop taking
calls, let calls in progress finish up to the drain timeout, then close the rest in reverse
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.escalation import add_escalation_routes, load_agencies
from agents.feature_codes import FEATURE_SCRIPT, FeatureCodes
from controller.settings import Settings
from hotline.agi.hooks import AnsweredHook
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.auth import TokenFile
from hotline.store.db import CallLog, create_engine
from hotline.store.migrate import upgrade
from hotline.store.state import CallState, StateUnavailable, open_call_state
from hotline.web import build_app, start_web
from ivr.entry import CallEntry, base_services
from ivr.menu.library import load_library
from ivr.menu.watch import MenuWatcher
from recorder.part import RecorderService
from routing.admin.http import add_admin_routes
from routing.admin.service import AcdAdmin
from routing.part import ANSWERED_SCRIPT, AcdService, CallbackService
from routing.settings import locate

log = logging.getLogger(__name__)
# The outside agencies operators may send a caller to (id -> name, number).
AGENCIES_FILE = "dialplans/agencies.yaml"


class Controller:
    """Owns every long-lived part of one controller node."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.state: CallState | None = None
        self.ami: AmiClient | None = None
        self.agi: FastAgiServer | None = None
        self.web: web.AppRunner | None = None
        self.recordings: RecorderService | None = None
        self.menus: MenuWatcher | None = None
        self.acd: AcdService | None = None
        self.callbacks: CallbackService | None = None
        self.acd_admin: AcdAdmin | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        store = self.settings.store
        await upgrade(store.database_url)
        self.engine = create_engine(store.database_url)
        self.state = open_call_state(store.state_backend, store.redis_url)
        if not await self.state.ping():
            # Degraded, not dead: calls still flow; shared state comes back with Redis.
            log.error("call state backend is unreachable", extra={"backend": store.state_backend})
        app = build_app(self.health)
        if self.settings.routing.enabled:
            # Broken groups, operators or hours files stop start-up here, with their file:line.
            self.acd = AcdService.build(self.settings.routing)
            await self.acd.start()
            self.acd.install(app)
            # Only agencies on the allow-list can be dialled; a broken file stops start-up.
            add_escalation_routes(
                app, self.acd.node, lambda: self.ami, load_agencies(locate(AGENCIES_FILE))
            )
            self._start_acd_admin(self.acd, self.engine, app)
        if self.settings.recorder.enabled:
            self.recordings = RecorderService(
                self.settings.recorder, self.settings.recorder_access, self.engine
            )
            # Broken retention or token files stop start-up here, with their file:line.
            self.recordings.prepare()
            self.recordings.install(app)
            await self.recordings.start()
            if self.acd is not None:  # recordings name the operator the ACD connected
                self.acd.answer_listeners.append(self.recordings.note_operator)
        if self.settings.ami.enabled:
            self.ami = self._ami_client()
            if self.recordings is not None:
                self.recordings.watch(self.ami)
            if self.acd is not None:
                self.acd.watch(self.ami)
        if self.acd is not None:
            await self._start_callbacks(self.acd, self.engine, app)
        if self.ami is not None:
            self.ami.start()
        self.agi = self._agi_server(CallLog(self.engine))
        await self.agi.start()
        if self.menus is not None:
            self.menus.start()
        http = self.settings.http
        self.web = await start_web(app, http.host, http.port)
        log.info(
            "controller started",
            extra={"agi_port": self.agi.port, "http_port": http.port, "node": self.node},
        )

    def _start_acd_admin(self, acd: AcdService, engine: AsyncEngine, app: web.Application) -> None:
        # /api/groups, /api/operators/{id}, /api/schedules: admins and supervisors of the
        # recordings' token file; hand edits of the files are picked up by the same path.
        routing, ivr = self.settings.routing, self.settings.ivr
        self.acd_admin = AcdAdmin.for_service(
            acd,
            versions_dir=Path(routing.versions_dir)
            if routing.versions_dir
            else ivr.versions_dir / "acd",
            menus_dir=ivr.dialplans_dir,
            audit=AuditLog(engine),
        )
        add_admin_routes(app, self.acd_admin, TokenFile(self.settings.recorder_access.tokens_file))
        self.acd_admin.start()

    async def _start_callbacks(
        self, acd: AcdService, engine: AsyncEngine, app: web.Application
    ) -> None:
        # Without AMI the scheduler gets a client that is never started: requests are kept
        # pending (CallbackService warns) until a controller with AMI places them.
        ami = self.ami or self._ami_client()
        self.callbacks = CallbackService.build(
            acd, engine, ami, self.settings.callbacks, dialling=self.ami is not None
        )
        await self.callbacks.start()
        self.callbacks.install(app)

    @property
    def node(self) -> str:
        return self.settings.node_name

    def _agi_server(self, call_log: CallLog) -> FastAgiServer:
        router = Router()
        hooks: tuple[AnsweredHook, ...] = ()
        if self.recordings is not None:
            hooks = tuple(self.recordings.hooks)
        acd = self.acd
        ivr = self.settings.ivr
        services = replace(base_services(ivr, call_log, acd), callbacks=self.callbacks)
        library, problems = load_library(ivr.dialplans_dir, services, ivr.general_number)
        if problems:
            log.error("some menus were rejected", extra={"rejected": len(problems)})
        entry = CallEntry(
            call_log, self.node, settings=ivr, library=library, on_answered=hooks, queue=acd
        )
        router.add("hotline", entry)
        if acd is not None:
            router.add(ANSWERED_SCRIPT, acd.answered)
            router.add(FEATURE_SCRIPT, FeatureCodes(acd.node))
        # Edited menu files reach new calls without a restart; calls in progress keep theirs.
        self.menus = MenuWatcher.from_settings(entry, self.settings.ivr)
        agi = self.settings.agi
        return FastAgiServer(
            router,
            host=agi.host,
            port=agi.port,
            max_line_bytes=agi.max_line_bytes,
            env_timeout=agi.env_timeout,
            reply_timeout=agi.reply_timeout,
            max_sessions=agi.max_sessions,
        )

    def _ami_client(self) -> AmiClient:
        ami = self.settings.ami
        return AmiClient.from_settings(ami)

    async def health(self) -> dict[str, str]:
        """What /healthz reports: each part and whether it works (``acd_files: stale`` only
        while a hand-edited ACD file is refused and its last good version serves)."""
        stale = {"acd_files": "stale"} if self.acd_admin and self.acd_admin.broken else {}
        return stale | {
            "agi": "listening" if self.agi is not None and self.agi.is_serving() else "down",
            "acd": "disabled" if self.acd is None else self.acd.health(),
            "ami": "disabled" if self.ami is None else ("up" if self.ami.connected else "down"),
            "database": await self._database_health(),
            "state": await self._state_health(),
        }

    async def _database_health(self) -> str:
        if self.engine is None:
            return "down"
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # any driver error means the same to an operator
            return f"error: {type(error).__name__}"
        return "ok"

    async def _state_health(self) -> str:
        if self.state is None:
            return "down"
        try:
            return "ok" if await self.state.ping() else "down"
        except StateUnavailable:
            return "down"

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._stopping.set)

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        """Stop taking calls, drain the ones in progress, then close everything else."""
        log.info("controller stopping", extra={"drain_timeout": self.settings.agi.drain_timeout})
        if self.agi is not None:
            await self.agi.drain(self.settings.agi.drain_timeout)
        if self.menus is not None:
            await self.menus.close()
        if self.acd_admin is not None:
            await self.acd_admin.close()
        if self.web is not None:
            await self.web.cleanup()
        if self.recordings is not None:
            await self.recordings.stop()
        if self.callbacks is not None:
            await self.callbacks.stop()
        if self.acd is not None:
            await self.acd.stop()
        if self.ami is not None:
            await self.ami.close()
        if self.state is not None:
            await self.state.close()
        if self.engine is not None:
            await self.engine.dispose()
        log.info("controller stopped")


async def serve(settings: Settings) -> None:
    """Run one controller until SIGTERM or SIGINT."""
    controller = Controller(settings)
    controller.install_signal_handlers()
    try:
        # A failed start (port taken, broken token file...) still releases what it opened.
        await controller.start()
        await controller.wait_stopped()
    finally:
        await controller.stop()
