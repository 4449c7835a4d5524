"""What the benchmarks that count instructions share (`bench/agi.py --instructions`,
`bench/ivr.py --instructions`): Asterisk on a loopback transport in the server's own process,
and valgrind's count of user-space instructions per unit of work.

No socket, no kernel, no second process: the count is the server's own work, exact whatever
the machine's load, where wall-clock and CPU-time ratios swing by 30 % on a shared machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypedDict

ROOT = Path(__file__).resolve().parent.parent


class SweepTimeouts(TypedDict, total=False):
    """The FastAGI server's timeouts, as keyword arguments."""

    env_timeout: float
    reply_timeout: float


# The FastAGI server's timeouts in these runs: long enough that its deadline sweep (one tick
# per eighth of the shorter timeout, on the wall clock) never runs. Under valgrind a call takes
# fifty times as long, so each sweep's walk over the connections and metrics flush would land on
# a few calls where production spreads it over thousands, and how many land would follow the
# machine's load (seen: +-400 instructions a command between runs of the same code). The runs
# flush the metrics once at their end instead, so that cost is still counted.
NO_SWEEP_TIMEOUTS: Final[SweepTimeouts] = {"env_timeout": 1e6, "reply_timeout": 1e6}


class LoopbackAsterisk:
    """Asterisk in the server's own process: each command answered by `answer` on the loop's
    next turn, as a transport the server's protocol writes to."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[None],
        answer: Callable[[bytes], bytes],
    ) -> None:
        self.loop, self.done, self.answer = loop, done, answer
        self.protocol: asyncio.Protocol | None = None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.loop.call_soon(self.protocol.data_received, self.answer(data))

    def close(self) -> None:
        if not self.done.done():
            self.loop.call_soon(self._connection_lost)
            self.done.set_result(None)

    abort = close

    def _connection_lost(self) -> None:
        """Lets go of the protocol as it tells it, as uvloop's transports do: otherwise the
        transport and the protocol hold each other past the call, and the cyclic garbage
        collector pays to free every call's objects, which a server on a real transport does
        not (measured on FastAGI alone: 15k instructions a session, 6 % of its count)."""
        protocol, self.protocol = self.protocol, None
        assert protocol is not None
        protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self.done.done()


def valgrind_missing() -> bool:
    """True (and says so) when valgrind is not installed."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return True
    return False


def instructions_per(arguments: Callable[[int], list[str]], base: int, units: int) -> float:
    """Instructions per unit of work: the script run under valgrind with `arguments(base)`
    and `arguments(base + units)`, so that start-up and imports cancel out.

    Both runs hash strings with the same fixed seed: with a random one per process, string
    hashes (and so dict and set collisions) differ between the two runs and between benchmark
    runs, and the same code was seen to read 1,085k to 1,133k instructions a menu call."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    totals = []
    for count in (base, base + units):
        out = subprocess.run(
            [
                *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
                *(sys.executable, *arguments(count)),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=env,
        )
        collected = [line for line in out.stderr.splitlines() if "Collected :" in line]
        totals.append(int(collected[-1].split()[-1]))
    return (totals[1] - totals[0]) / units
