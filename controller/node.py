"""The running controller: every part of `hotline serve` built from settings, wired through
its ports, and run through one `hotline.lifecycle.Lifecycle`.

Start, in order: the database (migrations), call state, the ACD (when ``[routing] enabled``:
operator states and their API, escalation to agencies, edits of its files), the recorder (when
enabled), the AMI link (when enabled), callbacks, the HTTP server, the menus' file watcher and
last the FastAGI server, so no call arrives before everything it needs is up. Stop (SIGTERM or
Ctrl-C) runs the same list backwards: FastAGI first stops taking calls, hands the callers in
the menu back to the dialplan at once and lets those with an operator finish (up to
``agi.drain_timeout``), then the rest closes.

The ports between parts, wired here and nowhere else:
* the menus' queue port (`ivr.menu.model.OperatorQueue`) is the ACD (`AcdService.connect`);
* the menus' callback port is the callback scheduler (`CallbackService.request`);
* the answer hooks of a call (`hotline.agi.hooks.AnsweredHook`) are the recorder's MixMonitor;
* the ACD's answer listeners tell the recorder which operator took a call;
* AMI events feed the recorder's worker and the ACD's softphone registration;
* edits of the operators and groups rewrite the Asterisk files (`routing.asterisk_sync`);
* the ACD's offers pop the call on the operator's desktop and its answers open the call's
  contact in the registry (`workspace.part.WorkspaceService`);
* every ACD event pushes the supervisors' wallboard (`supervision.part.SupervisionService`,
  its floor and alarms from `controller.supervision_ports`);
* the reports' call facts (`reporting.part.ReportingService.facts`) hear the ACD's queue,
  offers, answers, results and operators' moves, the menus' end of each call, callbacks and
  ratings, the agencies' transfers and the registry's contacts (`controller.report_ports`);
* the staff accounts (`hotline.accounts`): their login pages on the HTTP server, their
  `AccountsLookup` (sessions, service keys, the legacy token file) as `actor_lookup` for the
  access middleware, and their phone PINs as the feature codes' `OperatorPins`.

Every HTTP route is guarded by `hotline.access.access_middleware`: the policy on its handler
says who may call it, the accounts' `AccountsLookup` (`Controller.actor_lookup`) says who is
asking, and every 401/403 is a security event (`hotline.security`, ``access_denied``) with the
method, path and source address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.devices import DeviceWatcher
from agents.escalation import add_escalation_routes, load_agencies
from agents.feature_codes import FEATURE_SCRIPT, FeatureCodes
from agents.http import add_operator_routes
from agents.transfer import add_transfer_routes
from controller.parts import AgiPart, CallStatePart, DatabasePart, PartOf, WebPart
from controller.quality_ports import RecorderSamples
from controller.report_ports import (
    FactsOnCallbacks,
    FactsOnContacts,
    FactsOnTransfers,
    on_finished,
    wire_acd,
    wire_registry,
)
from controller.settings import Settings
from controller.supervision_ports import FileTargets, recorder_alarms, start_supervision
from controller.ticket_ports import LateAgencyTransfers, TicketCallbacks
from controller.voice_messages import MessageIntake, OverdueMessages
from hotline.access import access_middleware
from hotline.accounts.build import AccountsKit, build_accounts
from hotline.accounts.lookup import AccountsLookup
from hotline.accounts.web import install_accounts
from hotline.agi.hooks import AnsweredHook
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog, audit_log_for, ensure_audit_key
from hotline.audit_anchors import anchor_bucket_for
from hotline.audit_watch import AuditWatch, WatchedKey
from hotline.auth import TokenFile
from hotline.keyfiles import MasterKeyStore
from hotline.lifecycle import Lifecycle, settle_heap
from hotline.periodic import Periodic
from hotline.security import SecurityCategory, security_event
from hotline.store.db import CallLog
from hotline.store.state import CallState
from hotline.web import build_app, is_private_address
from ivr.menu.library import menu_files
from ivr.part import ENTRY_SCRIPT, MenuService
from quality.part import QualityService
from recorder.part import RecorderService
from reporting.part import ReportingService
from routing.admin.http import add_admin_routes
from routing.admin.service import AcdAdmin
from routing.asterisk_sync import AsteriskFilesSync
from routing.model import Caller, Offer
from routing.operator_watch import OperatorStatus
from routing.part import ANSWERED_SCRIPT, AcdService, CallbackService
from routing.settings import locate
from routing.snapshot import AcdSnapshots
from supervision.part import SupervisionService
from workspace.desk import StateBar
from workspace.part import WorkspaceService
from workspace.pop import Ring

log = logging.getLogger(__name__)
# How often voice messages' call backs are checked against their group's deadline.
DEADLINE_CHECK_SECONDS = 30.0
# The outside agencies operators may send a caller to (id -> name, number).
AGENCIES_FILE = "dialplans/agencies.yaml"
QUALITY_FILE = "dialplans/quality.yaml"
# How much of a refused request's path a security event shows (ids can be long on purpose).
REFUSED_PATH_SHOWN = 200


def report_refusal(request: web.Request, status: int) -> None:
    """The access middleware's `on_refused`: a 401 or 403 as a security event."""
    security_event(
        SecurityCategory.ACCESS_DENIED,
        "HTTP request refused",
        method=request.method,
        path=request.path[:REFUSED_PATH_SHOWN],
        source=request.remote or "unknown",
        status=status,
    )


class Controller:
    """One controller node: its parts, the ports between them, their lifecycle."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.state: CallState | None = None
        self.ami: AmiClient | None = None
        self.agi: FastAgiServer | None = None
        self.recordings: RecorderService | None = None
        self.menus: MenuService | None = None
        self.acd: AcdService | None = None
        self.callbacks: CallbackService | None = None
        self.acd_admin: AcdAdmin | None = None
        self.asterisk_files: AsteriskFilesSync | None = None
        self.audit: AuditLog | None = None
        self.audit_watch: AuditWatch | None = None
        self.workspace: WorkspaceService | None = None
        self.supervision: SupervisionService | None = None
        self.accounts: AccountsKit | None = None
        self.reporting: ReportingService | None = None
        self.quality: QualityService | None = None
        self._lifecycle = Lifecycle()
        self._web: WebPart | None = None
        self._stopping = asyncio.Event()

    @property
    def node(self) -> str:
        return self.settings.node_name

    @property
    def http_port(self) -> int:
        """Where the HTTP server listens (the OS's pick when ``http.port`` is 0)."""
        assert self._web is not None, "the controller is not started"
        return self._web.port

    @property
    def app(self) -> web.Application:
        """The HTTP application, every part's routes on it (the route-policy test reads it)."""
        assert self._web is not None, "the controller is not started"
        return self._web.app

    async def start(self) -> None:
        """Build and start every part; a failure leaves the started ones for `stop`."""
        parts = self._lifecycle
        database = DatabasePart(self.settings.store)
        await parts.start(database)
        self.engine = database.engine
        assert self.engine is not None
        await self._start_audit(self.engine)
        state = CallStatePart(self.settings.store)
        await parts.start(state)
        self.state = state.state
        self.accounts = self._accounts(self.engine)
        guard = access_middleware(self.actor_lookup, on_refused=self._refused)
        app = build_app(
            self.health,
            middlewares=[guard],
            metrics_public=is_private_address(self.settings.http.host),
        )
        install_accounts(app, self.accounts)
        await self._start_reporting(self.engine, app)
        if self.settings.routing.enabled:
            await self._start_acd(self.engine, app)
        if self.acd is not None:
            await self._start_workspace(self.acd, self.engine, app)
            # the wallboard, pushed on every ACD event; listening through the AMI link
            ami_on = self.settings.ami.enabled
            targets = FileTargets(locate(self.settings.reporting.targets_file))
            board = start_supervision(
                self.acd, self._audit_log(), app, self._ami, ami_enabled=ami_on, targets=targets
            )
            self.supervision = board
            await parts.start(PartOf("supervision", board.start, board.stop))
        if self.settings.recorder.enabled:
            await self._start_recorder(self.engine, app)
        self._start_quality(self.engine, app)
        if self.settings.ami.enabled:
            self.ami = AmiClient.from_settings(self.settings.ami)
            self._watch_ami(self.ami)
            link = self.ami  # it reconnects by itself: "down", not failed
            await parts.start(
                PartOf("ami", link.start, link.close, lambda: "up" if link.connected else "down")
            )
        if self.acd is not None:
            await self._start_callbacks(self.acd, self.engine, app)
        self._web = WebPart(app, self.settings.http)
        await parts.start(self._web)
        self.menus = self._menus(CallLog(self.engine))
        await parts.start(PartOf("menus", self.menus.start, self.menus.stop))
        self.agi = self._agi_server(self.menus)
        await parts.start(AgiPart(self.agi, self.settings.agi.drain_timeout))
        log.info(
            "controller started",
            extra={
                "agi_port": self.agi.port,
                "http_port": self.http_port,
                "node": self.node,
            },
        )

    async def _start_audit(self, engine: AsyncEngine) -> None:
        """The one audit log every part writes to (keyed from the first start on), and its
        watch: anchors to the object-locked bucket, periodic verification, key ages."""
        settings = self.settings.audit
        self.audit = audit_log_for(engine, settings)
        await ensure_audit_key(self.audit)
        watched = [WatchedKey("audit", MasterKeyStore(settings.keys_dir), settings.key_id)]
        if self.settings.recorder.enabled:
            recorder = self.settings.recorder
            store = MasterKeyStore(recorder.keys_dir)
            watched.append(WatchedKey("recorder_master", store, recorder.master_key_id))
        # a broken chain is an alert (hotline_audit_chain_ok), not a reason to refuse calls
        watch = AuditWatch(self.audit, settings, anchor_bucket_for(settings), watched)
        self.audit_watch = watch
        await self._lifecycle.start(PartOf("audit", watch.start, watch.close))

    async def _start_reporting(self, engine: AsyncEngine, app: web.Application) -> None:
        """The call facts' recorder and retention, and the report's page; broken targets or
        retention files stop start-up here, with their file:line."""

        def serves(operator_id: str, group: str) -> bool:
            op = self.acd.node.acd.operators.get(operator_id) if self.acd else None
            return op is None or group in op.spec.skills

        reporting = ReportingService.build(
            engine, self.settings.reporting, self._audit_log(), serves=serves
        )
        reporting.groups = lambda: sorted(self.acd.node.acd.groups) if self.acd else []
        reporting.install(app)
        self.reporting = reporting
        await self._lifecycle.start(PartOf("reporting", reporting.start, reporting.stop))

    def _start_quality(self, engine: AsyncEngine, app: web.Application) -> None:
        """/quality: the recorder's sample scored by the criteria file (a broken one stops
        start-up here, with its file:line); audio and clips are the recorder's audited URLs."""
        samples = RecorderSamples(engine, self._audit_log())
        zone = self.settings.reporting.zone
        self.quality = QualityService.build(
            engine, self._audit_log(), locate(QUALITY_FILE), samples, zone
        )
        self.quality.install(app)

    def _facts(self) -> ReportingService:
        assert self.reporting is not None, "reporting starts before the parts it hears"
        return self.reporting

    def _refused(self, request: web.Request, status: int) -> None:
        """A 401/403: a security event, and a bounded audit row (aggregated per source and
        minute, fields capped: a flood cannot grow the chain)."""
        report_refusal(request, status)
        if self.audit is not None:
            self.audit.refused_soon(
                None,
                "http.refused",
                source=request.remote or "unknown",
                outcome=str(status),
                detail={"method": request.method, "path": request.path[:REFUSED_PATH_SHOWN]},
            )

    def _audit_log(self) -> AuditLog:
        assert self.audit is not None, "the audit log starts before the parts"
        return self.audit

    async def _start_acd(self, engine: AsyncEngine, app: web.Application) -> None:
        # Broken groups, operators or hours files stop start-up here, with their file:line.
        self.acd = AcdService.build(self.settings.routing)
        acd = self.acd
        if self.settings.routing.state_backend == "memory":  # Redis keeps its own state
            acd.snapshots = AcdSnapshots(engine, acd.node.node_id)
        await self._lifecycle.start(PartOf("acd", acd.start, acd.stop, acd.health))
        audit = self._audit_log()  # operators' actions and escalations, the admin API's edits
        add_operator_routes(app, acd.node, audit)
        # Only agencies on the allow-list can be dialled; a broken file stops start-up.
        agencies = load_agencies(locate(AGENCIES_FILE))
        facts = self._facts().facts
        wire_acd(facts, acd)  # queue, offers, answers, results, operators' moves
        transfers = FactsOnTransfers(  # the workspace is built after the ACD
            LateAgencyTransfers(lambda: self.workspace.agency_letters if self.workspace else None),
            facts,
        )
        add_escalation_routes(app, self.acd.node, lambda: self.ami, agencies, audit, transfers)
        add_transfer_routes(app, self.acd.node, lambda: self.ami, agencies, audit)
        # /api/groups, /api/operators/{id}, /api/schedules: admins and supervisors; hand
        # edits of the files are picked up by the same path.
        routing, ivr = self.settings.routing, self.settings.ivr
        versions = Path(routing.versions_dir) if routing.versions_dir else ivr.versions_dir / "acd"
        self.acd_admin = AcdAdmin.for_service(
            self.acd,
            versions_dir=versions,
            menu_files=lambda: menu_files(ivr.dialplans_dir),
            audit=audit,
        )
        add_admin_routes(app, self.acd_admin)
        if routing.asterisk_files_dir:  # the fallback queues' members and the PJSIP seats
            folder = Path(routing.asterisk_files_dir)
            sync = AsteriskFilesSync.for_service(acd, folder, self._ami, routing.seats_transport)
            self.asterisk_files = sync
            await self._lifecycle.start(PartOf("asterisk_files", sync.start, sync.close))
        # ``stale`` while a hand-edited file is refused and its last good version serves
        admin = self.acd_admin
        files = PartOf("acd_files", admin.start, admin.close, admin.health)
        await self._lifecycle.start(files)

    async def _start_workspace(
        self, acd: AcdService, engine: AsyncEngine, app: web.Application
    ) -> None:
        """The desktop and the contact registry: offers pop, answers open contacts."""
        settings = self.settings.workspace
        # A broken back-office file stops the start here, with its file:line.
        workspace = WorkspaceService.build(
            engine,
            settings,
            backoffice_file=locate(settings.backoffice_file),
            audit=self._audit_log(),
            retention_file=str(self.settings.recorder_access.retention_file),
        )
        workspace.known_group = lambda group: group in acd.node.acd.groups
        wire_registry(self._facts().facts, workspace.registry)
        self.workspace = workspace
        await self._lifecycle.start(PartOf("workspace", workspace.start, workspace.stop))
        workspace.install(app)
        clock = acd.node.acd.clock
        acd.offer_listeners.append(lambda o, c: workspace.ring_soon(_ring_of(o, c, clock())))
        acd.answer_listeners.append(lambda call_id, _name: workspace.answered_soon(call_id))
        acd.operator_listeners.append(lambda status: workspace.operator_state(state_bar_of(status)))
        acd.node.watch.check()  # every operator's state as it is now: desktops start right

    async def _start_recorder(self, engine: AsyncEngine, app: web.Application) -> None:
        self.recordings = RecorderService(
            self.settings.recorder, self.settings.recorder_access, engine, self._audit_log()
        )
        # Broken retention or token files stop start-up here, with their file:line.
        self.recordings.prepare()
        self.recordings.install(app)
        recorder = self.recordings
        await self._lifecycle.start(PartOf("recorder", recorder.start, recorder.stop))
        if self.acd is not None:  # recordings name the operator the ACD connected
            self.acd.answer_listeners.append(self.recordings.note_operator)
        if self.supervision is not None:  # the storage and spool alarms on the wallboard
            self.supervision.alarms.append(recorder_alarms(self.recordings))

    def _accounts(self, engine: AsyncEngine) -> AccountsKit:
        """Staff accounts and service keys; bearer tokens of the legacy token file still work
        (with a deprecation warning) while a deployment moves to them."""
        tokens_file = Path(self.settings.recorder_access.tokens_file)
        legacy = TokenFile(tokens_file, optional=True)  # picked up when created later
        return build_accounts(
            self.settings.accounts,
            engine,
            http_host=self.settings.http.host,
            audit=self._audit_log(),
            legacy=legacy,
        )

    @property
    def actor_lookup(self) -> AccountsLookup:
        """Who sent a request (for `hotline.access.access_middleware`)."""
        assert self.accounts is not None, "the controller is not started"
        return self.accounts.lookup

    def _ami(self) -> AmiClient | None:
        return self.ami

    def _watch_ami(self, ami: AmiClient) -> None:
        """Subscribe the parts to AMI events before the link starts, so none is missed."""
        if self.recordings is not None:
            self.recordings.watch(ami)
        if self.acd is not None:  # softphone registration, following the operators' edits
            devices = DeviceWatcher(self.acd.node, self.acd.operators.values())
            devices.attach(ami)
            self.acd.operators_changed.append(devices.follow)
            if self.asterisk_files is not None:  # Asterisk may have read older files
                ami.on_connected(self.asterisk_files.reload_queues)

    async def _start_callbacks(
        self, acd: AcdService, engine: AsyncEngine, app: web.Application
    ) -> None:
        # Without AMI the scheduler gets a client that is never started: requests are kept
        # pending (CallbackService warns) until a controller with AMI places them.
        ami = self.ami or AmiClient.from_settings(self.settings.ami)
        self.callbacks = CallbackService.build(
            acd,
            engine,
            ami,
            self.settings.callbacks,
            dialling=self.ami is not None,
            audit=self._audit_log(),
        )
        callbacks = self.callbacks  # without AMI: accepted and kept pending, none dialled
        dialling = "ok" if callbacks.dialling else "disabled"
        await self._lifecycle.start(
            PartOf("callbacks", callbacks.start, callbacks.stop, lambda: dialling)
        )
        self.callbacks.install(app)
        # voice messages whose call back waits past the group's deadline: the alarm metric
        overdue = OverdueMessages(engine, lambda: acd.node.acd.groups)
        watch = Periodic(overdue.check, DEADLINE_CHECK_SECONDS, name="message-deadline", log=log)
        await self._lifecycle.start(PartOf("message-deadline", watch.start, watch.close))
        if self.workspace is not None and self.workspace.tickets is not None:
            # a resolved ticket calls the citizen back through the callback scheduler
            self.workspace.tickets.callbacks = TicketCallbacks(callbacks.scheduler)

    def _menus(self, call_log: CallLog) -> MenuService:
        """The menus, with the ACD as their queue port, callbacks, and the recorder's answer
        hook (without the ACD a menu's queue is Asterisk's Queue())."""
        hooks: tuple[AnsweredHook, ...] = ()
        spool: str | None = None  # voice messages go into the recorder's spool when it is on
        if self.recordings is not None:
            hooks = tuple(self.recordings.hooks)
            spool = str(Path(self.settings.recorder.spool_dir).resolve())
        recorder = self.recordings.recorder if self.recordings is not None else None
        takers = recorder is not None or self.callbacks is not None
        facts = self._facts().facts
        return MenuService.build(
            self.settings.ivr,
            call_log,
            self.node,
            queue=self.acd,
            callbacks=FactsOnCallbacks(self.callbacks, facts) if self.callbacks else None,
            on_answered=hooks,
            contacts=FactsOnContacts(self.workspace, facts) if self.workspace else None,
            messages=MessageIntake(recorder, self.callbacks, self.workspace) if takers else None,
            recordings_dir=spool,
            intents=self.workspace,
            on_finished=[on_finished(facts)],
        )

    def _agi_server(self, menus: MenuService) -> FastAgiServer:
        """The FastAGI scripts: the menus' entry, the ACD's answer hook and the phones'
        feature codes."""
        router = Router()
        router.add(ENTRY_SCRIPT, menus.entry)
        if self.acd is not None:
            router.add(ANSWERED_SCRIPT, self.acd.answered)
            assert self.accounts is not None and self.engine is not None
            features = FeatureCodes(self.acd.node, self.accounts.accounts, self._audit_log())
            router.add(FEATURE_SCRIPT, features)
        agi = self.settings.agi
        return FastAgiServer(
            router,
            host=agi.host,
            port=agi.port,
            max_line_bytes=agi.max_line_bytes,
            env_timeout=agi.env_timeout,
            reply_timeout=agi.reply_timeout,
            max_sessions=agi.max_sessions,
            allowed_peers=agi.allowed_peers,
            max_sessions_per_peer=agi.max_sessions_per_peer,
        )

    async def health(self) -> dict[str, str]:
        """What /healthz reports: every started part, and the parts switched off."""
        switched_off = {
            "acd": not self.settings.routing.enabled,
            "recorder": not self.settings.recorder.enabled,
            "ami": not self.settings.ami.enabled,
        }
        return {name: "disabled" for name, off in switched_off.items() if off} | (
            await self._lifecycle.health()
        )

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._stopping.set)

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        """Stop every started part, the FastAGI server (which drains) first."""
        await self._lifecycle.stop()
        log.info("controller stopped")


def _ring_of(offer: Offer, caller: Caller, now: float) -> Ring:
    """The ACD's offer as the desktop's pop needs it."""
    return Ring(
        call_id=offer.call_id,
        operator_id=offer.operator_id,
        group=offer.group,
        caller_phone=caller.number,
        entries=dict(caller.data),
        waited_seconds=max(0.0, now - caller.first_arrival),
    )


def state_bar_of(status: OperatorStatus) -> StateBar:
    """The ACD's operator state as the desktop's state bar needs it."""
    return StateBar(
        operator_id=status.operator_id,
        state=status.state.value,
        pause_reason=status.pause_reason,
        seconds_left=status.seconds_left,
    )


async def serve(settings: Settings) -> None:
    """Run one controller until SIGTERM or SIGINT."""
    controller = Controller(settings)
    controller.install_signal_handlers()
    try:
        # A failed start (port taken, broken token file...) still releases what it opened.
        await controller.start()
        # Full garbage collections skip what start-up built (hotline.lifecycle.settle_heap).
        log.info("start-up heap settled", extra={"frozen_objects": settle_heap()})
        await controller.wait_stopped()
    finally:
        await controller.stop()
