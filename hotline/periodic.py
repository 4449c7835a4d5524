"""A background job that runs one async step every few seconds until closed.

The file watchers (menus, ACD files) poll this way: a failing step is logged and tried again
at the next tick, because a bug in one look must not stop later reloads, nor the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Periodic"]


class Periodic:
    """Runs ``step()`` every `interval` seconds from `start` until `close`; 0 never starts."""

    def __init__(
        self,
        step: Callable[[], Awaitable[object]],
        interval: float,
        *,
        name: str,
        log: logging.Logger,
    ) -> None:
        self._step = step
        self.interval = interval
        self._name = name
        self._log = log
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:  # the next tick tries again
                self._log.exception("%s: step failed", self._name)
            await asyncio.sleep(self.interval)
