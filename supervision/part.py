"""Supervision inside `hotline serve`: the wallboard, its push and the supervisors' listening.

`SupervisionService` is what the composition root builds, wires and stops. Its ports:

* `floor` (`supervision.floor.Floor`): the ACD's queues and operators in the wallboard's words
  (the root adapts the ACD: `controller.supervision_ports.AcdFloor`);
* `changed(...)`: the root plugs it into the ACD's operator, offer and answer listeners; each
  event pushes the board (coalesced), and a tick while waits grow;
* `targets` (`supervision.targets.TargetsSource`): the seed's targets until the root plugs
  in the admins' file;
* `alarms`: callables the root adds (the AMI link, the recorder's storage and spool); the
  unstaffed open groups the board finds itself;
* `devices(user_id)`, `operator_device(op_id)`, `ami()`: the supervisor's and the operator's
  softphones and the AMI link, for listen, whisper and barge (`supervision.spy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from supervision.board import Board
from supervision.floor import AlarmSource, Floor
from supervision.http import add_supervision_routes
from supervision.spy import Spying, SupervisorDevices
from supervision.targets import TargetsSource, seed_targets
from supervision.wallboard import Wallboard

__all__ = ["SupervisionService"]


@dataclass
class SupervisionService:
    wallboard: Wallboard
    spying: Spying

    @classmethod
    def build(
        cls,
        floor: Floor,
        audit: AuditLog,
        *,
        devices: SupervisorDevices,
        operator_device: Callable[[str], str | None],
        ami: Callable[[], AmiClient | None],
        alarms: list[AlarmSource] | None = None,
        targets: TargetsSource = seed_targets,
        tick_seconds: float = 1.0,
    ) -> SupervisionService:
        board = Board(floor, targets, alarms or [])
        wallboard = Wallboard(board, tick_seconds=tick_seconds)
        return cls(wallboard, Spying(floor, devices, ami, audit, operator_device))

    @property
    def alarms(self) -> list[AlarmSource]:
        """Add alarm sources here (the root, as it starts the parts that raise them)."""
        return self.wallboard.board.alarms

    def changed(self, *_: object) -> None:
        self.wallboard.changed()

    def install(self, app: web.Application) -> None:
        add_supervision_routes(app, self.wallboard, self.spying)

    def start(self) -> None:
        self.wallboard.start()

    async def stop(self) -> None:
        await self.wallboard.stop()
