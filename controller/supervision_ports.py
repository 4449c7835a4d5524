"""The supervision part's ports, as the composition root fills them from the other parts.

* `AcdFloor`: the ACD (`routing.part.AcdService`) as `supervision.floor.Floor`: per group its
  queue, expected wait, opening and counters; per operator their state and call.
* `ami_alarm`: the AMI link down (when AMI is enabled), `recorder_alarms`: the recorder's
  storage and spool alarms (`recorder.alarms`), as wallboard alarms.
* `start_supervision`: builds the part, plugs it into the ACD's listeners and starts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.yamldoc import YamlFileError
from recorder.part import RecorderService
from reporting.targets import Targets, load_targets
from routing.operators import OperatorState
from routing.part import AcdService
from supervision.floor import AlarmSource, FloorAlarm, OperatorNow, QueueNow
from supervision.part import SupervisionService
from supervision.targets import FloorTargets, TargetsSource, seed_targets

log = logging.getLogger("controller.supervision")

__all__ = ["AcdFloor", "ami_alarm", "recorder_alarms", "start_supervision"]


@dataclass
class AcdFloor:
    acd: AcdService

    def queues(self) -> Sequence[QueueNow]:
        core = self.acd.node.acd
        now = core.clock()
        rows = []
        for group_id in sorted(core.groups):
            group = core.groups[group_id]
            stats = core.stats[group_id]
            rows.append(
                QueueNow(
                    group=group_id,
                    name=group.name,
                    open=core.is_open(group, now),
                    waiting=core.waiting(group_id),
                    longest_wait=core.longest_wait(group_id),
                    expected_wait=core.expected_wait(group_id),
                    logged_in=sum(
                        n
                        for s, n in core.operators_by_state(group_id).items()
                        if s is not OperatorState.LOGGED_OUT
                    ),
                    offered=stats.offered,
                    answered=stats.answered,
                    abandoned=stats.abandoned,
                    answered_within_sl=stats.answered_within_sl,
                    answer_wait_total=stats.answer_wait_total,
                )
            )
        return rows

    def operators(self) -> Sequence[OperatorNow]:
        watch = self.acd.node.watch
        rows = []
        for op in sorted(self.acd.node.acd.operators.values(), key=lambda o: o.id):
            status = watch.status(op)
            rows.append(
                OperatorNow(
                    id=op.id,
                    name=op.spec.name,
                    state=status.state.value,
                    pause_reason=status.pause_reason,
                    call_id=status.call_id,
                    groups=tuple(sorted(op.spec.skills)),
                    seconds_left=status.seconds_left,
                )
            )
        return rows

    def device(self, op_id: str) -> str | None:
        """An operator's seat; also a supervisor's, when the operators file lists them."""
        op = self.acd.node.acd.operators.get(op_id)
        return op.spec.device if op is not None else None


def ami_alarm(link: Callable[[], AmiClient | None]) -> AlarmSource:
    def alarms() -> list[FloorAlarm]:
        ami = link()
        if ami is not None and ami.connected:
            return []
        return [FloorAlarm("ami_down", "Нет связи с АТС (AMI): перезвоны и переводы недоступны.")]

    return alarms


def recorder_alarms(recordings: RecorderService) -> AlarmSource:
    def alarms() -> list[FloorAlarm]:
        worker = recordings.recorder
        if worker is None:  # a separate recorder process: its alarms are on its /metrics
            return []
        found = []
        if worker.storage_alarm.active:
            found.append(FloorAlarm("recorder_storage", "Хранилище записей недоступно."))
        if worker.spool_alarm.active:
            found.append(FloorAlarm("recorder_spool", "Мало места для записей разговоров."))
        return found

    return alarms


@dataclass
class FileTargets:
    """The wallboard's targets from the reports' targets file (dialplans/targets.yaml), so the
    floor and the month's report judge by the same figures. Read again when the file changes;
    a file broken while running keeps the last good targets (the report page names its line).
    A target the file removes (null) shows the seed's value on the board."""

    path: Path
    _stamp: int | None = None
    _last: FloorTargets = field(default_factory=FloorTargets)

    def __call__(self) -> FloorTargets:
        try:
            stamp: int | None = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or self._stamp is None:
            self._stamp = stamp
            try:
                self._last = floor_targets(load_targets(self.path))
            except YamlFileError as error:
                log.error("targets file broken: the wallboard keeps the last good: %s", error)
        return self._last


def floor_targets(targets: Targets) -> FloorTargets:
    """The reports' targets in the wallboard's terms (percent -> share)."""
    seed = FloorTargets()

    def share(percent: float | None, default: float) -> float:
        return default if percent is None else percent / 100

    return FloorTargets(
        asa_seconds=seed.asa_seconds if targets.asa_seconds is None else targets.asa_seconds,
        service_level=share(targets.service_level_percent, seed.service_level),
        service_level_seconds=targets.service_level_seconds,
        abandon_rate=share(targets.abandon_percent, seed.abandon_rate),
        first_contact_resolution=share(targets.fcr_percent, seed.first_contact_resolution),
        csat=seed.csat if targets.csat_average is None else targets.csat_average,
        repeat_rate=share(targets.repeat_percent, seed.repeat_rate),
    )


def start_supervision(
    acd: AcdService,
    audit: AuditLog,
    app: web.Application,
    ami: Callable[[], AmiClient | None],
    *,
    ami_enabled: bool,
    targets: TargetsSource = seed_targets,
) -> SupervisionService:
    """The wallboard and listening, pushed on every ACD event (the caller starts it).
    `targets`: the seed's until an admins' targets file is plugged in here."""
    floor = AcdFloor(acd)
    supervision = SupervisionService.build(
        floor,
        audit,
        devices=floor.device,
        operator_device=floor.device,
        ami=ami,
        alarms=[ami_alarm(ami)] if ami_enabled else [],
        targets=targets,
    )
    supervision.install(app)
    acd.operator_listeners.append(supervision.changed)
    acd.offer_listeners.append(supervision.changed)
    acd.answer_listeners.append(supervision.changed)
    return supervision
