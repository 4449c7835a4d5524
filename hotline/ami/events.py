"""Event dispatch: the callbacks registered for AMI events by name, and for each (re)login.

A failing callback is the caller's bug, not the link's: it is logged and counted, and the
link goes on. Callbacks that return an awaitable run as tasks, which `cancel_tasks` stops
when the client closes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from hotline.ami.protocol import AmiMessage
from hotline.metrics import ERRORS

# One logger for the whole client: operators filter its lines by this name.
log = logging.getLogger("hotline.ami.client")

EventCallback = Callable[[AmiMessage], object]
"""Called with each matching event; may return an awaitable, which is run as a task."""
ConnectedCallback = Callable[[], object]
"""Called after every successful (re)login; may return an awaitable, run as a task."""


class EventDispatcher:
    """Who wants which events, and who wants to know about each login."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[EventCallback]] = {}
        self._connected_callbacks: list[ConnectedCallback] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()

    def on(self, event_name: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for each event of that name (case-insensitive), or for
        every event with ``"*"``. Sync callbacks run in arrival order; async ones as tasks."""
        self._handlers.setdefault(event_name.lower(), []).append(callback)

    def off(self, event_name: str, callback: EventCallback) -> None:
        """Undo one `on`; unknown callbacks are ignored."""
        callbacks = self._handlers.get(event_name.lower(), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def on_connected(self, callback: ConnectedCallback) -> None:
        """Call ``callback()`` after every login, to resynchronise state the link lost."""
        self._connected_callbacks.append(callback)

    def dispatch(self, event: AmiMessage) -> None:
        """Run the callbacks for this event's name, then the ``"*"`` ones."""
        callbacks = [*self._handlers.get(event.name.lower(), ()), *self._handlers.get("*", ())]
        for callback in callbacks:
            self._run_callback(callback, (event,), f"AMI {event.name} handler")

    def connected(self) -> None:
        """A login succeeded: run every `on_connected` callback."""
        for callback in list(self._connected_callbacks):
            self._run_callback(callback, (), "AMI on_connected callback")

    async def cancel_tasks(self) -> None:
        """Stop the callbacks still running as tasks (but not the caller's own task)."""
        current = asyncio.current_task()
        tasks = [task for task in self._callback_tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run_callback(
        self, callback: Callable[..., object], args: tuple[Any, ...], what: str
    ) -> None:
        try:
            result = callback(*args)
        except Exception:
            _callback_failed(what)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._callback_tasks.add(task)
            task.add_done_callback(lambda done: self._callback_done(done, what))

    def _callback_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _callback_failed(what, task.exception())


def _callback_failed(what: str, exc: BaseException | None = None) -> None:
    ERRORS.labels(component="ami", kind="callback_error").inc()
    log.error("%s failed", what, exc_info=exc or True)
