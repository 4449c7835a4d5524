"""Hand edits of the ACD files, picked up while the ACD runs (polled like the menus' live
reload, `ivr.menu.watch`).

`HandEditWatcher` looks at the groups, operators and schedule files every ``interval``
seconds; a file whose bytes differ from the version in force goes through the admin's edit
path (`AcdAdmin.apply_groups_file` and its siblings: the same validators and checks as an API
edit). A file that fails is refused and the last good version stays in force: each problem is
logged at ERROR as ``file:line: sentence``, ``hotline_acd_config_rejected_total{file}`` counts
it, and ``hotline_acd_config_broken{file}`` stays 1 until a good file arrives (`mark_good`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from hotline.periodic import Periodic
from hotline.versions import digest
from routing.admin.errors import EditRefused

if TYPE_CHECKING:
    from routing.admin.service import AcdAdmin

__all__ = ["CONFIG_BROKEN", "CONFIG_REJECTED", "HandEditWatcher", "mark_good"]

log = logging.getLogger("hotline.routing.admin")

CONFIG_REJECTED = Counter(
    "hotline_acd_config_rejected_total",
    "Hand edits of ACD files refused (the last good version stays in force)",
    ["file"],
)
CONFIG_BROKEN = Gauge(
    "hotline_acd_config_broken", "1 while the ACD file on disk is refused", ["file"]
)

Apply = Callable[[Path, str], Awaitable[None]]


class HandEditWatcher:
    """Applies the ACD files changed on disk through one `AcdAdmin`'s edit path."""

    def __init__(self, admin: AcdAdmin, interval: float) -> None:
        self._admin = admin
        self._interval = interval
        self._poll: Periodic | None = None

    def start(self) -> None:
        if self._poll is None:
            self._poll = Periodic(self.check, self._interval, name="acd-file-watcher", log=log)
        self._poll.start()

    async def close(self) -> None:
        if self._poll is not None:
            await self._poll.close()

    async def check(self) -> list[str]:
        """Look once at the files; apply the ones changed by hand. Returns the files applied."""
        admin = self._admin
        applied: list[str] = []
        async with admin.lock:
            files: list[tuple[Path, Apply]] = [
                (admin.groups_file, admin.apply_groups_file),
                (admin.operators_file, admin.apply_operators_file),
            ]
            files += [(path, admin.apply_hours_file) for path in admin.schedule_files()]
            for path, load in files:
                if await self._reload(path, load):
                    applied.append(str(path))
        return applied

    async def _reload(self, path: Path, load: Apply) -> bool:
        try:
            data = path.read_bytes()  # noqa: ASYNC240 - a few kilobytes, as the menu watcher
        except OSError:
            return False
        if self._admin.applied.get(path) == digest(data):
            return False
        try:
            await load(path, data.decode("utf-8"))
        except UnicodeDecodeError:
            self._refuse(path, f"{path}:1: not UTF-8 text")
            return False
        except EditRefused as refused:
            self._refuse(path, refused.detail or f"{refused.where}: {refused.message}")
            return False
        return True

    def _refuse(self, path: Path, problem: str) -> None:
        broken = self._admin.broken
        if broken.get(str(path)) == problem:
            return  # logged once per distinct problem, not every look
        broken[str(path)] = problem
        CONFIG_REJECTED.labels(path.name).inc()
        CONFIG_BROKEN.labels(path.name).set(1)
        log.error("ACD file refused, the last good version stays in force: %s", problem)


def mark_good(broken: dict[str, str], path: Path) -> None:
    """A version of `path` is in force again: clear its refusal (and the alarm)."""
    if broken.pop(str(path), None) is not None:
        CONFIG_BROKEN.labels(path.name).set(0)
