"""The ACD as a part of the running controller: what the composition root builds, starts and
stops (`AcdService`, `CallbackService`).

`AcdService` is what `controller.node.Controller` holds when ``[routing] enabled``:

* `AcdService.build(settings)` reads the groups and operators files (errors at file:line stop
  start-up, like every admin-edited file) and the opening hours the groups' schedules name;
* `start()` rebuilds operator states from the store and runs the node's timer loop;
  `install(app)` mounts the operator HTTP API; `watch(ami)` follows softphone registration;
* `connect(...)` is the menus' `queue` service (`ivr.menu.model.OperatorQueue`);
  `answered(session)` is the ``acd-answered`` FastAGI script Dial's ``U()`` hook calls;
* `stop()` ends the timer loop and closes the store.

Group schedules: a group's ``schedule: NAME`` names the opening-hours file
``<schedules_dir>/NAME.yaml`` (the IVR's hours format, with ``calendar.yaml`` from the same
directory classifying days); the shipped groups use ``hours`` (the hotline's own hours) and
``round-the-clock``. The ACD refuses new callers of a closed group (the menu's overflow path
runs with outcome ``closed``), and callbacks are placed only within those hours. A name with
no such file leaves the group always open to the ACD; those names are logged at start-up so a
typo does not go unnoticed (`routing.group_hours`).

`CallbackService` is the ACD's callbacks (`routing.callbacks`) in the controller: the
scheduler polling for due callbacks, ``/api/callbacks``, and the menus' ``callbacks`` service
(`ivr.menu.model.CallbackRequests`, the ``callback`` node).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.agi.session import AgiSession, CallerHungUp
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.clock import wall_clock
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.announcements import announcer
from routing.arrival import answered_meanwhile, carried_arrival, carry_arrival, forget_arrival
from routing.callbacks.http import add_callback_routes
from routing.callbacks.model import CallbackRefused
from routing.callbacks.numbers import NumbersFile
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import CallbackStore
from routing.connect import ConnectResult, connect_call, operator_answered
from routing.group_hours import IsOpen, hours_checker, load_group_hours
from routing.groups import Group, load_groups
from routing.metrics import AcdCollector, register
from routing.model import Caller, Offer
from routing.node import AcdNode
from routing.operator_watch import OperatorStatus
from routing.operators import OperatorSpec, load_operators
from routing.settings import RoutingSettings, locate
from routing.snapshot import AcdSnapshots, restore_operators, take
from routing.state import AcdStore, InMemoryAcdStore, RedisAcdStore

if TYPE_CHECKING:
    from hotline.hours import OpenHours

__all__ = ["ANSWERED_SCRIPT", "AcdService", "CallbackService", "queue_status"]

log = logging.getLogger("hotline.routing")

# The FastAGI script name the [hotline-acd-answered] subroutine calls (asterisk-conf).
ANSWERED_SCRIPT = "acd-answered"

# ConnectResult's overflow reasons in Asterisk's QUEUESTATUS words, so menus written for
# Queue() (`otherwise` on anything but answered) branch the same way.
_OVERFLOW_STATUS = {"max_wait": "timeout", "nobody_logged_in": "joinempty", "closed": "closed"}


def queue_status(result: ConnectResult) -> str:
    """The `ivr.menu.model.OperatorQueue` outcome of one `connect_call`."""
    if result.outcome == "overflow":
        return _OVERFLOW_STATUS.get(result.overflow_reason or "", "timeout")
    return result.outcome  # answered | caller_gone


@dataclass
class AcdService:
    """One controller's ACD: node, store, timer task, metrics and hooks."""

    settings: RoutingSettings
    node: AcdNode
    operators: Mapping[str, OperatorSpec]
    collector: AcdCollector | None = None
    # schedule name -> hours; the ACD's is_open reads this very dict, so admin edits
    # (routing.admin) change it in place
    hours: dict[str, OpenHours] = field(default_factory=dict)
    # Told (call id, operator's name) the moment an operator picks up, e.g. the recorder,
    # which names the operator in the recording's metadata.
    answer_listeners: list[Callable[[str, str], None]] = field(default_factory=list)
    # Told each offer with its caller just before the operator's phone rings: the desktop's
    # screen pop. A listener must not block (it runs on the caller's session).
    offer_listeners: list[Callable[[Offer, Caller], None]] = field(default_factory=list)
    # Told each operator's new state the moment this node moves them (ready, pause with its
    # reason, ringing, talking, wrap-up with its countdown, logged out): the desktop's state
    # bar. A listener must not block (it runs inside the ACD's operations).
    operator_listeners: list[Callable[[OperatorStatus], None]] = field(default_factory=list)
    # Told (call id, group, arrival) when a caller joins a group's queue, and (call id,
    # result) when the ACD is done with them (answered, overflow, caller_gone): the reports'
    # call facts. Listeners must not block.
    queue_listeners: list[Callable[[str, str, float], None]] = field(default_factory=list)
    result_listeners: list[Callable[[str, ConnectResult], None]] = field(default_factory=list)
    # Told the operators anew when an admin edits them (the softphone watcher follows).
    operators_changed: list[Callable[[Iterable[OperatorSpec]], None]] = field(default_factory=list)
    # Told the groups anew when an admin edits them (the generated Asterisk files follow).
    groups_changed: list[Callable[[Mapping[str, Group]], None]] = field(default_factory=list)
    # The embedded default's snapshot in the database (routing.snapshot); None with Redis.
    snapshots: AcdSnapshots | None = None
    # Calls the shutdown handed back to the dialplan from the queue: the next run waits for them.
    handed_back: set[str] = field(default_factory=set)
    _stop: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None
    _keeper: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: RoutingSettings, *, is_open: IsOpen | None = None) -> AcdService:
        groups = load_groups(locate(settings.groups_file))
        operators = load_operators(locate(settings.operators_file), set(groups))
        note = settings.compression_note()
        if note:
            log.warning(note)
        hours: dict[str, OpenHours] = {}
        if is_open is None:
            hours = load_group_hours(groups, locate(settings.schedules_dir))
            is_open = hours_checker(hours)
        acd = Acd(
            settings.timed_groups(groups),
            operators.values(),
            clock=wall_clock,
            is_open=is_open,
            settings=settings.acd(),
        )
        node = AcdNode(
            acd,
            _open_store(settings),
            node_id=settings.node_id or socket.gethostname(),
            heartbeat_seconds=settings.heartbeat_seconds,
            node_lost_seconds=settings.node_lost_seconds,
        )
        return cls(settings, node, operators, hours=hours)

    def __post_init__(self) -> None:
        self.node.watch.listeners.append(self._operator_moved)

    def _operator_moved(self, status: OperatorStatus) -> None:
        for listener in self.operator_listeners:
            listener(status)

    def operator_status(self, op_id: str) -> OperatorStatus | None:
        """An operator's state now (a desktop that just connected)."""
        op = self.node.acd.operators.get(op_id)
        return self.node.watch.status(op) if op is not None else None

    def hours_for(self, group: Group) -> OpenHours | None:
        """A group's opening hours (the callbacks' windows); None: round the clock."""
        return self.hours.get(group.schedule)

    async def start(self, *, metrics: bool = True) -> None:
        await self.node.start()
        if self.snapshots is not None:
            await self._resume_last_run(self.snapshots)
        if metrics:
            try:
                self.collector = register(self.node.acd)
            except ValueError:  # another ACD in this process (tests, a second node) has them
                log.warning("ACD metrics already registered in this process; not exported twice")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            self.node.run(
                self._stop,
                resolution=self.settings.timer_resolution_seconds,
                recover_every=self.settings.recover_every_seconds,
            )
        )
        if self.snapshots is not None:
            every = self.settings.snapshot_every_seconds
            keeping = self.snapshots.keep(self.node, self.handed_back, self._stop, every)
            self._keeper = asyncio.create_task(keeping)

    async def _resume_last_run(self, snapshots: AcdSnapshots) -> None:
        """Operators as the last run left them, and the grace window for the callers it held
        (routing.snapshot, routing.grace)."""
        loaded = await snapshots.load()
        if loaded is None:
            return
        taken_at, snapshot = loaded
        age = self.node.acd.clock() - taken_at
        if age <= self.settings.recall_window_seconds:
            restored = await restore_operators(self.node, snapshot)
            log.info("operators restored from the last run", extra={"operators": restored})
        calls = snapshot.get("calls", [])
        if calls and age <= self.settings.handback_budget_seconds:
            self.node.acd.grace.begin(self.settings.restart_grace_seconds, calls)
            log.info("waiting for the callers of the last run", extra={"callers": len(calls)})

    async def connect(
        self,
        channel: Any,
        group: str,
        *,
        number: str,
        priority: int,
        data: Mapping[str, str],
    ) -> str:
        """The menus' queue: the caller waits in `group` and is connected to an operator.
        Their arrival travels on the channel (`routing.arrival`), so a caller handed back by
        a controller that went away keeps their place in the next one."""
        now = self.node.acd.clock()
        oldest = now - self.node.acd.settings.recall_window_seconds
        arrived = await carried_arrival(channel, group, now=now, oldest=oldest)
        if arrived is not None and await answered_meanwhile(channel):
            log.info("ACD call %s in %s: answered while handed back", channel.call_id, group)
            await _forget_arrival(channel)
            return "answered"

        async def queued(at: float) -> None:
            caller = self.node.acd.callers.get(channel.call_id)
            self._tell(self.queue_listeners, channel.call_id, caller.group if caller else group, at)
            await carry_arrival(channel, group, at)

        try:
            result = await connect_call(
                channel,
                self.node,
                group,
                arrived_at=arrived,
                on_queued=queued,
                number=number,
                priority=priority,
                data=dict(data),
                announce=announcer(channel),
                announce_every=self.settings.seconds(self.settings.announce_every_seconds),
                music_class=self.settings.music_class,
                hung_up=CallerHungUp,
                on_offer=self._offered,
            )
        except asyncio.CancelledError:  # the controller stops: the caller is handed back
            self.handed_back.add(channel.call_id)
            raise
        log.info(
            "ACD call %s in %s: %s",
            channel.call_id,
            group,
            result.outcome,
            extra={"operator": result.operator_id, "overflow": result.overflow_reason},
        )
        self._tell(self.result_listeners, channel.call_id, result)
        if result.outcome != "caller_gone":
            await _forget_arrival(channel)
        return queue_status(result)

    @staticmethod
    def _tell(listeners: list[Callable[..., None]], *args: Any) -> None:
        for listener in listeners:
            try:
                listener(*args)
            except Exception:  # the reports' bookkeeping never costs the call
                log.exception("ACD listener failed")

    def _offered(self, offer: Offer) -> None:
        caller = self.node.acd.callers.get(offer.call_id)
        if caller is None:
            return
        for listener in self.offer_listeners:
            try:
                listener(offer, caller)
            except Exception:  # a broken pop must never keep the phone from ringing
                log.exception("offer listener failed", extra={"call": offer.call_id})

    async def answered(self, session: AgiSession) -> None:
        """``acd-answered?call=ID``: the operator picked up (run on the operator's channel)."""
        call_id = session.request.query.get("call", "")
        if not call_id or not await operator_answered(self.node, call_id):
            log.warning("ACD answer hook for an offer that is over", extra={"call": call_id})
            return
        caller = self.node.acd.callers.get(call_id)
        operator_id = caller.operator if caller is not None else None
        if operator_id:
            spec = self.operators.get(operator_id)
            for listener in self.answer_listeners:
                listener(call_id, spec.name if spec is not None else operator_id)

    def health(self) -> str:
        """For /healthz: "ok", or "degraded" while routing on in-process state (Redis down)."""
        return "degraded" if self.node.degraded else "ok"

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._keeper is not None:
            await asyncio.gather(self._keeper, return_exceptions=True)
        if self.snapshots is not None:  # the last word: who was queued or handed back
            await self.snapshots.save(self.node.acd.clock(), take(self.node, self.handed_back))
        if self.collector is not None:
            from prometheus_client import REGISTRY

            REGISTRY.unregister(self.collector)
            self.collector = None
        await self.node.primary.close()


@dataclass
class CallbackService:
    """The ACD's callbacks in a running controller: the scheduler, its polling task, the
    ``/api/callbacks`` routes and the menus' ``callbacks`` service
    (`ivr.menu.model.CallbackRequests`).

    Without AMI (``[ami] enabled = false``) nothing can be dialled: requests from the menus
    and the API are still accepted and kept pending (with a WARNING), and are placed once the
    controller runs with AMI."""

    scheduler: CallbackScheduler
    dialling: bool
    audit: AuditLog
    _stop: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        acd: AcdService,
        engine: AsyncEngine,
        ami: AmiClient,
        settings: CallbackSettings,
        *,
        dialling: bool,
        audit: AuditLog | None = None,
    ) -> CallbackService:
        """`ami` places the calls when `dialling`; otherwise it is a client never started.
        `audit` is the controller's one (keyed) audit log; an unkeyed one on `engine` if None.
        Reads the numbers file (`routing.callbacks.numbers`): a broken one raises
        `YamlFileError` with its file:line, which stops the start like every admin file."""
        numbers = NumbersFile(locate(settings.numbers_file))
        scheduler = CallbackScheduler(
            CallbackStore(engine),
            acd.node,
            ami,
            settings=settings,
            hours_for=acd.hours_for,
            numbers=lambda: numbers.rules,
        )
        return cls(scheduler, dialling, audit or AuditLog(engine))

    async def start(self) -> None:
        """Take back this node's callbacks from before a restart, then poll for due ones
        (without dialling, only count the backlog, which then can only grow)."""
        released = await self.scheduler.start()
        if released:
            log.info("callbacks taken back after a restart", extra={"callbacks": released})
        await self.scheduler.count_backlog()  # the gauges exist from the first scrape
        if not self.dialling:
            log.warning(_NO_DIALLING)
        self._stop = asyncio.Event()
        run = self.scheduler.run(self._stop, place_calls=self.dialling)
        self._task = asyncio.create_task(run)

    def install(self, app: web.Application) -> None:
        add_callback_routes(app, self.scheduler, self.audit)

    async def request(
        self,
        call_id: str,
        *,
        phone: str,
        group: str,
        number: str,
        data: Mapping[str, str],
    ) -> bool:
        """The menu's ``callback`` node: book a callback keeping the caller's place."""
        try:
            callback = await self.scheduler.request_from_call(
                call_id, phone=phone, group=group, data=data, caller_number=number
            )
        except CallbackRefused as refused:
            log.info("callback refused: %s", refused, extra={"call": call_id, "group": group})
            return False
        except Exception:  # the database is away: the menu says so, the call goes on
            log.exception("callback request failed", extra={"call": call_id, "group": group})
            return False
        log.info("callback booked", extra={"call": call_id, "callback": callback.id})
        if not self.dialling:
            log.warning(_NO_DIALLING, extra={"callback": callback.id})
        return True

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.scheduler.close()


async def _forget_arrival(channel: Any) -> None:
    """Done with the queue; a caller who hung up (e.g. ending the conversation) has no channel
    left to clear, and their call is still answered."""
    try:
        await forget_arrival(channel)
    except CallerHungUp:
        pass


_NO_DIALLING = (
    "AMI is disabled: callbacks are accepted and kept pending, but nothing can be dialled "
    "until [ami] is enabled"
)


def _open_store(settings: RoutingSettings) -> AcdStore:
    if settings.state_backend == "memory":
        return InMemoryAcdStore()
    if settings.state_backend == "redis":
        return RedisAcdStore(redis_client(settings.redis_url), settings.redis_prefix)
    raise ValueError(f"[routing] state_backend: {settings.state_backend!r} (memory or redis)")
