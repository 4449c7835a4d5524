"""The simulated PBX's sense of time, and the counters Asterisk derives from it.

Everything the simulator prints that depends on time (``Timestamp``, ``EventTV``, ``Uptime``,
``LoginTime``, ``HoldTime``, uniqueids ``<epoch>.<n>``) and every delay it waits (ring delay,
talk time, queue timeouts) goes through one `Clock`, so that:

* a run against a real controller uses wall time, with delays optionally scaled
  (`SystemClock`, ``time_scale=0`` makes every delay instant);
* a test uses a `VirtualClock`: time stands still until the test moves it, so the bytes the
  simulator sends are reproducible, and a 40-second queue scenario runs in milliseconds.

The uniqueid and Local-channel counters live here too because, like Asterisk's, they are shared
by every channel of the one simulated PBX (both the AGI and the AMI half) and a test must be able
to reproduce them together with the epoch they embed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

_US = 1_000_000


class IdSource(Protocol):
    """Where channel identities come from; every `Clock` is one. Both halves of the simulator
    must draw from the same source, or their uniqueids collide."""

    def uniqueid(self) -> str: ...

    def local_sequence(self) -> str: ...


def seconds_to_us(seconds: float | str | Decimal) -> int:
    """Epoch seconds to integer microseconds, exactly for decimal strings (``"1795563319.843714"``
    has more digits than a float keeps)."""
    return int(Decimal(str(seconds)) * _US)


def format_timestamp(us: int) -> str:
    """``1795563319.843714``: the ``Timestamp`` of a Ping response."""
    return f"{us // _US}.{us % _US:06d}"


def format_event_tv(us: int) -> str:
    """``2026-11-24T23:35:19.342+0000``: security events' ``EventTV``/``SessionTV``. Asterisk
    prints local time; the simulator always runs in UTC so that its bytes do not depend on the
    host's time zone."""
    moment = datetime.fromtimestamp(us // _US, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{us % _US // 1000:03d}+0000"


class Clock(ABC):
    """Wall time, scaled delays and the PBX-wide counters."""

    def __init__(self, boot_us: int) -> None:
        self.boot_us = boot_us
        self.reload_us = boot_us
        self._uniqueids = itertools.count()
        self._local_channels = itertools.count()

    @abstractmethod
    def now_us(self) -> int:
        """Current epoch time in microseconds."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time."""

    def now(self) -> float:
        return self.now_us() / _US

    def epoch(self) -> int:
        """Whole epoch seconds: what Asterisk's ``time(NULL)`` would return."""
        return self.now_us() // _US

    def uptime(self) -> int:
        return (self.now_us() - self.boot_us) // _US

    def since_reload(self) -> int:
        return (self.now_us() - self.reload_us) // _US

    def uniqueid(self) -> str:
        """The next channel uniqueid, ``<epoch>.<n>`` with ``n`` counting from 0 since boot."""
        return f"{self.epoch()}.{next(self._uniqueids)}"

    def local_sequence(self) -> str:
        """The next Local channel number, as in ``Local/s@ctx-0000001f;1``."""
        return f"{next(self._local_channels):08x}"


class SystemClock(Clock):
    """Wall time. ``time_scale`` multiplies every delay: 1 is real time, 0.01 is a hundred times
    faster, 0 makes delays instant (useful to soak a controller; times printed stay real)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        super().__init__(time.time_ns() // 1000)
        self.time_scale = time_scale

    def now_us(self) -> int:
        return time.time_ns() // 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) * self.time_scale)


class VirtualClock(Clock):
    """Time that moves only when told to.

    `sleep` parks the caller on a timer; `advance` / `advance_to` move time forward, waking the
    timers due on the way in order, and let the woken tasks run before moving on, so that a
    scenario's events come out in the order of their simulated times, every run.
    """

    # How many event-loop turns to give woken tasks before time moves again. Simulated work is
    # in-process and short (a few awaits per step), so this is generous.
    SETTLE_TURNS = 50

    def __init__(self, start: float | str | Decimal, *, boot: float | str | Decimal | None = None):
        start_us = seconds_to_us(start)
        super().__init__(start_us if boot is None else seconds_to_us(boot))
        self._now_us = start_us
        self._timers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_us(self) -> int:
        return self._now_us

    def set(self, epoch: float | str | Decimal) -> None:
        """Jump to ``epoch`` without waking timers (for replays with no timers pending)."""
        self._move_to(seconds_to_us(epoch))

    def set_us(self, us: int) -> None:
        self._move_to(us)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        due = self._now_us + round(seconds * _US)
        heapq.heappush(self._timers, (due, next(self._order), wake))
        await wake

    async def advance(self, seconds: float) -> None:
        await self.advance_to_us(self._now_us + round(seconds * _US))

    async def advance_to(self, epoch: float | str | Decimal) -> None:
        await self.advance_to_us(seconds_to_us(epoch))

    async def advance_to_us(self, target_us: int) -> None:
        await self.settle()
        while self._timers and self._timers[0][0] <= target_us:
            due, _, wake = heapq.heappop(self._timers)
            self._move_to(max(due, self._now_us))
            if not wake.done():
                wake.set_result(None)
                await self.settle()
        self._move_to(max(target_us, self._now_us))
        await self.settle()

    async def run_until_complete(self, *tasks: asyncio.Future[Any], limit: float = 3600.0) -> None:
        """Move time from timer to timer until every task is done; fail rather than spin if they
        wait on something time cannot bring, or need more than ``limit`` simulated seconds."""
        end = self._now_us + round(limit * _US)
        await self.settle()
        while not all(task.done() for task in tasks):
            pending = [t for t in self._timers if not t[2].done()]
            if not pending:
                raise RuntimeError("tasks wait for something other than simulated time")
            due = min(pending)[0]
            if due > end:
                raise RuntimeError(f"tasks still running after {limit} simulated seconds")
            await self.advance_to_us(due)

    async def settle(self) -> None:
        """Let every task that can run now run, without moving time."""
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    def _move_to(self, us: int) -> None:
        if us < self._now_us:
            raise ValueError("simulated time never goes back")
        self._now_us = us
