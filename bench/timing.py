"""What the database benchmarks share: timing one awaited piece of work, run after run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


async def timed(runs: int, work: Callable[[], Awaitable[object]]) -> list[float]:
    """The seconds each of `runs` awaits of `work` took, in order."""
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - began)
    return seconds
