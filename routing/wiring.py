"""The ACD put into a running controller: built from its files, started, stopped.

`AcdService` is what `hotline.controller.Controller` holds when ``[routing] enabled``:

* `AcdService.build(settings)` reads the groups and operators files (errors at file:line stop
  start-up, like every admin-edited file) and the opening hours the groups' schedules name;
* `start()` rebuilds operator states from the store and runs the node's timer loop;
  `install(app)` mounts the operator HTTP API; `watch(ami)` follows softphone registration;
* `connect(...)` is the menus' `queue` service (`ivr.menu.model.OperatorQueue`);
  `answered(session)` is the ``acd-answered`` FastAGI script Dial's ``U()`` hook calls;
* `stop()` ends the timer loop and closes the store.

Group schedules: a group's ``schedule: NAME`` names the opening-hours file
``<schedules_dir>/NAME.yaml`` (the IVR's hours format, with ``calendar.yaml`` from the same
directory classifying days). The ACD refuses new callers of a closed group (the menu's
overflow path runs with outcome ``closed``). A name with no such file (``round-the-clock``,
or a schedule kept only in the menus' own ``hours``) leaves the group always open to the ACD;
those names are logged at start-up so a typo does not go unnoticed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from agents.devices import DeviceWatcher
from agents.http import add_operator_routes
from agents.operators import OperatorSpec, load_operators
from hotline.agi.session import AgiSession, CallerHungUp
from hotline.ami.client import AmiClient
from hotline.store.state import redis_client
from routing.acd import Acd
from routing.connect import ConnectResult, connect_call, operator_answered
from routing.groups import Group, load_groups
from routing.metrics import AcdCollector, register
from routing.node import AcdNode, wall_clock
from routing.settings import RoutingSettings
from routing.state import AcdStore, InMemoryAcdStore, RedisAcdStore

__all__ = ["ANSWERED_SCRIPT", "AcdService", "queue_status", "schedule_checker"]

log = logging.getLogger("hotline.routing")

# The FastAGI script name the [hotline-acd-answered] subroutine calls (asterisk-conf).
ANSWERED_SCRIPT = "acd-answered"

# ConnectResult's overflow reasons in Asterisk's QUEUESTATUS words, so menus written for
# Queue() (`otherwise` on anything but answered) branch the same way.
_OVERFLOW_STATUS = {"max_wait": "timeout", "nobody_logged_in": "joinempty", "closed": "closed"}

_REPOSITORY = Path(__file__).resolve().parents[1]
IsOpen = Callable[[Group, float], bool]


def queue_status(result: ConnectResult) -> str:
    """The `ivr.menu.model.OperatorQueue` outcome of one `connect_call`."""
    if result.outcome == "overflow":
        return _OVERFLOW_STATUS.get(result.overflow_reason or "", "timeout")
    return result.outcome  # answered | caller_gone


def schedule_checker(groups: Mapping[str, Group], directory: Path) -> IsOpen:
    """`Acd`'s ``is_open``: each group's schedule file through `ivr.schedule`. Broken hours or
    calendar files raise `ivr.schedule.ScheduleError` (every problem at file:line)."""
    from ivr.schedule import load_calendar, load_hours

    hours: dict[str, Any] = {}
    unnamed: set[str] = set()
    for group in groups.values():
        path = directory / f"{group.schedule}.yaml"
        if group.schedule in hours or group.schedule in unnamed:
            continue
        if path.is_file():
            hours[group.schedule] = load_hours(path, load_calendar(directory / "calendar.yaml"))
        else:
            unnamed.add(group.schedule)
    if unnamed:
        log.warning(
            "ACD schedules with no hours file are always open: %s (looked in %s)",
            ", ".join(sorted(unnamed)),
            directory,
        )

    def is_open(group: Group, now: float) -> bool:
        schedule = hours.get(group.schedule)
        return schedule is None or bool(schedule.status(datetime.fromtimestamp(now, UTC)).open)

    return is_open


@dataclass
class AcdService:
    """One controller's ACD: node, store, timer task, metrics and hooks."""

    settings: RoutingSettings
    node: AcdNode
    operators: Mapping[str, OperatorSpec]
    collector: AcdCollector | None = None
    _stop: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: RoutingSettings, *, is_open: IsOpen | None = None) -> AcdService:
        groups = load_groups(locate(settings.groups_file))
        operators = load_operators(locate(settings.operators_file), set(groups))
        if is_open is None:
            is_open = schedule_checker(groups, locate(settings.schedules_dir))
        acd = Acd(
            groups,
            operators.values(),
            clock=wall_clock,
            is_open=is_open,
            settings=settings.acd(),
        )
        node = AcdNode(acd, _open_store(settings), node_id=settings.node_id or socket.gethostname())
        return cls(settings, node, operators)

    async def start(self, *, metrics: bool = True) -> None:
        await self.node.start()
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

    def install(self, app: web.Application) -> None:
        add_operator_routes(app, self.node)

    def watch(self, ami: AmiClient) -> None:
        DeviceWatcher(self.node, self.operators.values()).attach(ami)

    async def connect(
        self,
        channel: Any,
        group: str,
        *,
        number: str,
        priority: int,
        data: Mapping[str, str],
    ) -> str:
        result = await connect_call(
            channel,
            self.node,
            group,
            number=number,
            priority=priority,
            data=dict(data),
            announce_every=self.settings.announce_every_seconds,
            music_class=self.settings.music_class,
            hung_up=CallerHungUp,
        )
        log.info(
            "ACD call %s in %s: %s",
            channel.call_id,
            group,
            result.outcome,
            extra={"operator": result.operator_id, "overflow": result.overflow_reason},
        )
        return queue_status(result)

    async def answered(self, session: AgiSession) -> None:
        """``acd-answered?call=ID``: the operator picked up (run on the operator's channel)."""
        call_id = session.request.query.get("call", "")
        if not call_id or not await operator_answered(self.node, call_id):
            log.warning("ACD answer hook for an offer that is over", extra={"call": call_id})

    def health(self) -> str:
        """For /healthz: "ok", or "degraded" while routing on in-process state (Redis down)."""
        return "degraded" if self.node.degraded else "ok"

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.collector is not None:
            from prometheus_client import REGISTRY

            REGISTRY.unregister(self.collector)
            self.collector = None
        await self.node.primary.close()


def locate(path: str) -> Path:
    """A settings path: absolute as given; relative from the working directory when it is
    there, else from the repository (where the shipped dialplans/ lives, as the IVR's
    default), so `hotline serve` started from another directory still finds the files."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    return _REPOSITORY / given


def _open_store(settings: RoutingSettings) -> AcdStore:
    if settings.state_backend == "memory":
        return InMemoryAcdStore()
    if settings.state_backend == "redis":
        return RedisAcdStore(redis_client(settings.redis_url), settings.redis_prefix)
    raise ValueError(f"[routing] state_backend: {settings.state_backend!r} (memory or redis)")
