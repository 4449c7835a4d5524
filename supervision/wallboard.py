"""The wallboard's push: every ACD event rebuilds the board once and sends the same frame to
every open wallboard; a tick re-sends it while waits grow (only when something changed).

`changed()` is what the root plugs into the ACD's listeners (operator moves, offers,
answers): it must not block, so it only schedules one rebuild on the event loop; the events
of one ACD operation (an offer moves an operator and tells the offer) coalesce into one push.
A wallboard that connects gets the current board at once. A wallboard that stops reading
loses its oldest frames (`hotline.push`), never the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Final

from hotline.push import put_dropping_oldest, sse_frame
from supervision.board import Board

log = logging.getLogger(__name__)

__all__ = ["Wallboard"]

_QUEUE_LIMIT: Final = 8  # frames: each one is the whole board, the newest is all that matters
EVENT: Final = "board"


class Wallboard:
    def __init__(self, board: Board, *, tick_seconds: float = 1.0) -> None:
        self.board = board
        self.tick_seconds = tick_seconds
        self._streams: set[asyncio.Queue[bytes]] = set()
        self._pending = False
        self._last: dict[str, Any] | None = None
        self._frame: bytes | None = None
        self._pushed: bytes | None = None  # the last frame sent to every open wallboard
        self._task: asyncio.Task[None] | None = None
        self.pushes = 0  # frames built and sent (tests, the benchmark)

    @property
    def connected(self) -> int:
        return len(self._streams)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[bytes]]:
        """The frames of one open wallboard, starting with the board as it is now."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_LIMIT)
        queue.put_nowait(self._current())
        self._streams.add(queue)
        try:
            yield queue
        finally:
            self._streams.discard(queue)

    def _current(self) -> bytes:
        data = self.board.build()
        if data != self._last or self._frame is None:
            self._last, self._frame = data, sse_frame(EVENT, data)
        return self._frame

    def changed(self, *_: object) -> None:
        """Something moved on the floor (any listener's arguments are ignored)."""
        if self._pending or not self._streams:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # told outside the event loop (a simulator): nobody to push to
            return
        self._pending = True
        loop.call_soon(self.push)

    def push(self, *, only_if_changed: bool = False) -> None:
        """Build the board and send it to every open wallboard."""
        self._pending = False
        if not self._streams:
            return
        try:
            frame = self._current()
        except Exception:  # a board that cannot be built must not stop the ACD's listeners
            log.exception("wallboard not built")
            return
        if only_if_changed and frame is self._pushed:
            return
        self._pushed = frame
        self.pushes += 1
        for queue in self._streams:
            put_dropping_oldest(queue, frame)

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            self.push(only_if_changed=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._ticking())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
