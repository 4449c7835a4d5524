"""Keeping the generated Asterisk files (`routing.asterisk_files`) in step with the running
ACD: written at start, rewritten whenever an admin changes the operators or the groups (the
API or a hand edit, `routing.admin`), into ``[routing] asterisk_files_dir``.

After a rewrite the queue members are reloaded over AMI with ``QueueReload`` (``Members:
yes``): app_queue registers that action with no privilege class, so the controller's AMI user
(``call``, ``originate`` only) may send it; it is sent again after every AMI login, in case
Asterisk read older files meanwhile. PJSIP seats are not reloaded from here: ``pjsip reload``
needs the ``system``/``config`` classes the AMI user does not have, and a new seat needs its
password written on the Asterisk host anyway, by the admin, who reloads PJSIP then
(asterisk-conf/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiError
from routing.asterisk_files import SeatTransport, write_asterisk_files
from routing.groups import Group
from routing.operators import OperatorSpec

if TYPE_CHECKING:
    from routing.part import AcdService

log = logging.getLogger("hotline.routing.asterisk")


@dataclass
class AsteriskFilesSync:
    """Rewrites the generated files from the ACD in force and asks Asterisk to reload."""

    folder: Path
    groups: Callable[[], Mapping[str, Group]]
    operators: Callable[[], Iterable[OperatorSpec]]
    ami: Callable[[], AmiClient | None] = lambda: None
    seats_transport: SeatTransport = "udp"
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @classmethod
    def for_service(
        cls,
        service: AcdService,
        folder: Path,
        ami: Callable[[], AmiClient | None],
        seats_transport: SeatTransport = "udp",
    ) -> AsteriskFilesSync:
        """Following `service`: plugged into its `operators_changed` and `groups_changed`."""
        sync = cls(
            folder,
            groups=lambda: service.node.acd.groups,
            operators=lambda: service.operators.values(),
            ami=ami,
            seats_transport=seats_transport,
        )
        service.operators_changed.append(sync.refresh)
        service.groups_changed.append(sync.refresh)
        return sync

    def refresh(self, _changed: object = None) -> None:
        """Rewrite both files now; then reload the queue members if AMI is linked."""
        try:
            written = write_asterisk_files(
                self.folder, self.groups(), self.operators(), self.seats_transport
            )
        except (OSError, ValueError) as error:
            log.error("Asterisk files not written to %s: %s", self.folder, error)
            return
        log.info("Asterisk files written: %s", ", ".join(path.name for path in written))
        self._soon(self.reload_queues())

    def _soon(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a command): nothing to tell Asterisk
            work.close()
            return
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload_queues(self) -> None:
        """``QueueReload Members: yes`` over the AMI link, when it is up."""
        ami = self.ami()
        if ami is None or not ami.connected:
            return
        try:
            await ami.action("QueueReload", Members="yes")
        except AmiError as error:
            log.warning("Asterisk did not reload the queue members: %s", error)
            return
        log.info("Asterisk reloaded the queue members")

    async def start(self) -> None:
        """Write the files from the ACD as it starts (the lifecycle's start)."""
        self.refresh()

    async def close(self) -> None:
        """Wait for a reload under way (the controller's stop)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
