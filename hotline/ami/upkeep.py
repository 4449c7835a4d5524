"""Keeping the AMI link up: keepalive pings that must be answered, and reconnection with
back-off that gives up only on a login Asterisk keeps refusing.

Every keepalive Ping must be answered within the action timeout, else the link is dead: a
silent peer is as dead as a closed one. After a drop the next login is tried after an
exponential, capped, jittered delay.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final

from hotline.ami.actions import AmiResponse
from hotline.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionError,
    AmiLinkLost,
    AmiTimeout,
)
from hotline.ami.link import AmiLink
from hotline.metrics import ERRORS

# One logger for the whole client: operators filter its lines by this name.
log = logging.getLogger("hotline.ami.client")

# Refusals in a row before `start` gives up: one may be Asterisk closing sockets mid-restart,
# three in a row is a wrong secret that retrying will not fix.
AUTH_ATTEMPTS: Final = 3
_MAX_BACKOFF_DOUBLINGS: Final = 30

Ping = Callable[[AmiLink], Awaitable[AmiResponse]]
"""Sends one Ping on the given link and returns its reply."""


async def keep_alive(link: AmiLink, ping: Ping, interval: float, reply_timeout: float) -> None:
    """Ping every ``interval`` seconds; ``ping`` insists on the answer within ``reply_timeout``."""
    while not link.lost.is_set():
        await asyncio.sleep(interval)
        try:
            await ping(link)
        except AmiTimeout:
            ERRORS.labels(component="ami", kind="ping_timeout").inc()
            link.drop(f"Ping not answered within {reply_timeout} s")
        except AmiActionError as exc:
            log.warning("AMI Ping answered with an error: %s", exc)
        except AmiLinkLost:
            return


class Reconnector:
    """Logs in, waits for the link to drop, waits out the back-off, logs in again; forever,
    unless Asterisk refuses the login `AUTH_ATTEMPTS` times in a row."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AmiLink]],
        give_up: Callable[[AmiAuthError], None],
        *,
        where: str,
        reconnect_min: float,
        reconnect_max: float,
    ) -> None:
        self._connect = connect
        self._give_up = give_up
        self._where = where
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._random = random.Random()

    async def run(self) -> None:
        failures = 0
        refusals = 0
        while True:
            try:
                link = await self._connect()
            except AmiAuthError as exc:
                refusals += 1
                if refusals >= AUTH_ATTEMPTS:
                    self._refused_for_good(exc)
                    return
                log.error("%s (attempt %d of %d)", exc, refusals, AUTH_ATTEMPTS)
            except AmiConnectionError as exc:
                log.warning("%s; retrying", exc)
            except Exception:
                log.exception("unexpected failure connecting AMI to %s; retrying", self._where)
            else:
                refusals = 0
                failures = await self._hold(link, failures)
            await asyncio.sleep(self.backoff(failures))
            failures += 1

    async def _hold(self, link: AmiLink, failures: int) -> int:
        """Wait for the link to drop; the failure count to carry on with."""
        loop = asyncio.get_running_loop()
        up_at = loop.time()
        await link.lost.wait()
        # Only a link that stayed up a while resets the back-off: one that logs in and drops
        # at once (garbage, instant reset) must not turn into a tight reconnect loop.
        return 0 if loop.time() - up_at >= self.reconnect_max else failures

    def backoff(self, failures: int) -> float:
        """Exponential, capped, with jitter so many clients do not reconnect in step."""
        doublings = min(failures, _MAX_BACKOFF_DOUBLINGS)
        ceiling = min(self.reconnect_max, self.reconnect_min * 2**doublings)
        return self._random.uniform(max(self.reconnect_min, ceiling / 2), ceiling)

    def _refused_for_good(self, exc: AmiAuthError) -> None:
        log.error("%s; giving up after %d refusals", exc, AUTH_ATTEMPTS)
        ERRORS.labels(component="ami", kind="auth_refused").inc()
        self._give_up(exc)
