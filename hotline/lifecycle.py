"""How the composition root runs the parts of one controller: start, health, stop.

Every part of a running controller (the database, the ACD, the recorder, the AMI link, the
FastAGI server...) is a `Part`: the root builds it from settings and wires its ports, then
`Lifecycle` starts the parts in order, reports their health together and stops them in the
reverse order, like aiohttp's ``cleanup_ctx``. A part that fails to start stops the ones
already started, so a broken file at start-up leaves no socket or task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Final, Protocol

log = logging.getLogger(__name__)


class Part(Protocol):
    """One piece of a running controller, as the composition root drives it."""

    @property
    def name(self) -> str:
        """The key of its line in ``/healthz``."""
        ...

    async def start(self) -> None: ...

    async def health(self) -> str:
        """One word an operator reads: ``ok``, ``down``, ``disabled``, ``stale``..."""
        ...

    async def stop(self) -> None: ...


class Lifecycle:
    """The started parts of one controller, stopped in the reverse order of their start."""

    def __init__(self) -> None:
        self._parts: list[Part] = []
        self._stack = contextlib.AsyncExitStack()

    @property
    def parts(self) -> tuple[Part, ...]:
        return tuple(self._parts)

    async def start(self, part: Part) -> None:
        """Start `part`; it will be stopped before every part started earlier."""
        await part.start()
        self._parts.append(part)
        self._stack.push_async_callback(self._stop_one, part)

    async def health(self) -> dict[str, str]:
        words = await asyncio.gather(*(self._health_of(part) for part in self._parts))
        return {part.name: word for part, word in zip(self._parts, words, strict=True)}

    async def stop(self) -> None:
        """Stop every started part, latest first; one that fails to stop does not keep the
        others running (its error is logged)."""
        self._parts.clear()
        await self._stack.aclose()

    @staticmethod
    async def _health_of(part: Part) -> str:
        try:
            return await part.health()
        except Exception as error:  # a health check must answer, whatever broke
            return f"error: {type(error).__name__}"

    @staticmethod
    async def _stop_one(part: Part) -> None:
        try:
            await part.stop()
        except Exception:
            log.exception("part did not stop cleanly", extra={"part": part.name})


# Net new container objects between two collections of the youngest generation, up from
# CPython's 700. Each such collection walks what the calls in progress hold (coroutines, frames,
# futures) and promotes it, so the old default paid for the same live calls again and again:
# whole menu calls over FastAGI (`bench/ivr.py --instructions`) read 751k instructions a call
# with 700 and 737k with 7,000, the raw handler's 667k and 664k. Cyclic garbage waits that many
# allocations longer at most: a few hundred kilobytes.
YOUNG_COLLECTION_THRESHOLD: Final = 7000


def settle_heap() -> int:
    """Collect once, then move every object still alive into the garbage collector's permanent
    generation (`gc.freeze`), and collect the youngest generation less often
    (`YOUNG_COLLECTION_THRESHOLD`); returns how many objects were frozen. Call once, when a
    long-running process has finished starting.

    Why: a started controller holds some 150,000 objects (modules, menus, routes, the ORM's
    tables) that live as long as it does, and every full collection walked them all, about
    50 ms here during which no call got its next command. Frozen, full collections walk only
    what calls and requests create since. What start-up leaves frozen is never freed: fine for
    objects that live as long as the process, which is why this runs once, after start-up,
    and never in tests that start many controllers in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    return gc.get_freeze_count()
