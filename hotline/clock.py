"""The one clock module: every notion of "now" and "wait" the product and its simulator use.

Three families, for three jobs (stdlib only, so the simulator and the core share it):

* Plain float clocks for code that only reads the time: `wall_clock` (what live nodes give
  their core; wall time, comparable across nodes) and `ManualClock` (a test moves it by hand).
* Epoch clocks (`EpochClock`): epoch microseconds, awaitable delays, and the process-wide
  counters stamped with that epoch (``<epoch>.<n>`` uniqueids, Local channel numbers), shared
  by everything one simulated PBX prints. `SystemClock` is wall time with delays optionally
  scaled (``time_scale=0`` makes every delay instant); `SteppedClock` stands still until a
  test steps it forward, waking timers in order, so bytes are reproducible and a 40-second
  scenario runs in milliseconds.
* Per-call clocks (`CallClock`): simulated seconds since one call arrived.
  `InstantCallClock` (``time_scale`` 0) jumps straight to the next thing that happens;
  `ScaledCallClock` sleeps ``time_scale`` real seconds per simulated second.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

_US = 1_000_000


def wall_clock() -> float:
    """The clock live nodes give their core: wall time, comparable across nodes (NTP)."""
    return time.time()


@dataclass
class ManualClock:
    """A float clock that only moves when told to: pass it as `Acd(clock=...)`."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def seconds_to_us(seconds: float | str | Decimal) -> int:
    """Epoch seconds to integer microseconds, exactly for decimal strings (``"1795563319.843714"``
    has more digits than a float keeps)."""
    return int(Decimal(str(seconds)) * _US)


class EpochClock(ABC):
    """Epoch time in microseconds, awaitable delays, and the counters stamped with the epoch."""

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


class SystemClock(EpochClock):
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


class SteppedClock(EpochClock):
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


class CallClock(Protocol):
    """Simulated seconds since the call arrived, and how to wait for them."""

    @property
    def instant(self) -> bool: ...

    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...

    def real_wait(self, until: float) -> float:
        """Real seconds to wait for the controller before treating the silence as lasting
        until `until`."""
        ...


class InstantCallClock:
    """``time_scale`` 0: simulated time only moves when the simulation waits, and then jumps.

    The controller's thinking time counts as zero. When the controller stays silent for
    `idle_grace` real seconds, the silence is taken to last until the next thing the
    simulation expects (the caller's next key press or hang-up, a dead-session timeout).
    """

    def __init__(self, *, idle_grace: float = 0.5) -> None:
        self.idle_grace = idle_grace
        self._now = 0.0

    @property
    def instant(self) -> bool:
        return True

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        self._now = max(self._now, when)
        await asyncio.sleep(0)  # still let other calls run, as a real wait would

    def real_wait(self, until: float) -> float:
        return self.idle_grace


class ScaledCallClock:
    """``time_scale`` > 0: one simulated second takes `time_scale` real seconds (1 = live)."""

    def __init__(self, time_scale: float, *, time: Callable[[], float] | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be greater than 0; use InstantCallClock for 0")
        self.time_scale = time_scale
        self._time = time or asyncio.get_running_loop().time
        self._origin = self._time()

    @property
    def instant(self) -> bool:
        return False

    def now(self) -> float:
        return (self._time() - self._origin) / self.time_scale

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, (when - self.now()) * self.time_scale))

    def real_wait(self, until: float) -> float:
        return max(0.0, (until - self.now()) * self.time_scale)


def make_call_clock(time_scale: float, *, idle_grace: float = 0.5) -> CallClock:
    """A clock for one call: virtual for ``time_scale`` 0, scaled real time otherwise."""
    if time_scale == 0:
        return InstantCallClock(idle_grace=idle_grace)
    return ScaledCallClock(time_scale)
