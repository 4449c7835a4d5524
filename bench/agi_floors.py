"""The floors `bench/agi.py` measures ours against: FastAGI servers that each do less than a
real one, so that the gap between two of them says what one piece of machinery costs.

- raw: an asyncio.Protocol writing the command lines, the limit the goals are set against;
- coroutine: a coroutine per call, resumed by `data_received` itself with each reply (no
  task, no future), the least any server whose handlers are coroutines can cost;
- coroutine-env: the same, reading the environment into a dict as every real server must
  (routing needs the script, logs the unique id, the menus the caller), in plain Python;
- floor: one asyncio task per call and one future per command, the machinery the handler API
  of this project (``await session.answer()``) runs on.

None checks limits, deadlines or replies; none logs or counts anything. Each cuts the lines of a
read with one `bytes.split` (the cheapest way, as ours does): a loop on ``b"\n" in buffer``
would cost raw a third more a command (bytes' `in` first tries its needle as an integer and
builds the TypeError it throws away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, cast


class RawAgiProtocol(asyncio.Protocol):
    """The least a correct-enough FastAGI server can do: the raw limit to compare against."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.buffer = b""
        self.sent = 0
        self.env_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.env_done:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 2 :]
            self.env_done = True
            self.next()
        lines = self.buffer.split(b"\n")  # one split a read (module docstring)
        self.buffer = lines.pop()
        for _ in lines:
            self.next()

    def next(self) -> None:
        if self.sent == len(self.lines):
            self.transport.close()
            return
        self.transport.write(self.lines[self.sent])
        self.sent += 1


class TaskFloorProtocol(asyncio.Protocol):
    """The least a server with a coroutine per call can do (the API every handler of this
    project is written against): one task per connection, one future per command, resolved
    by `data_received`. No environment parsing, routing, limits, deadlines, metrics or logs.
    What separates it from `RawAgiProtocol` is asyncio's own task and future machinery; what
    separates ours from it is what the product adds."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.buffer = b""
        self.waiter: asyncio.Future[bytes] | None = None
        self.env_done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.env_done:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 2 :]
            self.env_done = True
            asyncio.get_running_loop().create_task(self.call())
        lines = self.buffer.split(b"\n")  # one split a read (module docstring)
        self.buffer = lines.pop()
        for line in lines:
            waiter, self.waiter = self.waiter, None
            if waiter is not None:
                waiter.set_result(line)

    async def command(self, line: bytes) -> bytes:
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        assert self.transport is not None
        self.transport.write(line)
        return await waiter

    async def call(self) -> None:
        for line in self.lines:
            await self.command(line)
        assert self.transport is not None
        self.transport.close()


class CommandLine:
    """What a `CoroutineFloorProtocol` call awaits: the line to send; the reply comes back as
    the value of the await."""

    __slots__ = ("line",)

    def __init__(self, line: bytes) -> None:
        self.line = line

    def __await__(self) -> Generator[CommandLine, bytes, bytes]:
        reply = yield self
        return reply


class CoroutineFloorProtocol(asyncio.Protocol):
    """A coroutine per call, stepped by `data_received` with each reply: no task, no future,
    no loop turn between a reply and the next command. With `read_env`, the environment is
    also read into a dict, line by line, as cheaply as plain Python allows (measured against
    `split` with `dict()`, `map`, a regex and `zip`: all within 6 % of this)."""

    def __init__(self, lines: list[bytes], read_env: bool = False) -> None:
        self.lines = lines
        self.read_env = read_env
        self.env: dict[str, str] = {}
        self.buffer = b""
        self.call: Coroutine[CommandLine, bytes, None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.call is None:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                return
            block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if self.read_env:
                env = self.env
                for line in block.decode().split("\n"):
                    key, _, value = line.partition(": ")
                    env[key] = value
            self.call = self.run_call()
            self.step(cast(Any, None))  # starts the coroutine: the first send must be None
        lines = self.buffer.split(b"\n")  # one split a read (module docstring)
        self.buffer = lines.pop()
        for reply in lines:
            self.step(reply)

    def step(self, reply: bytes) -> None:
        assert self.call is not None and self.transport is not None
        try:
            command = self.call.send(reply)
        except StopIteration:
            self.transport.close()
            return
        self.transport.write(command.line)

    async def run_call(self) -> None:
        for line in self.lines:
            await CommandLine(line)
