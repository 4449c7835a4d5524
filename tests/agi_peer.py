"""Asterisk's side of a FastAGI connection over a real socket, played from scripted bytes.

`AsteriskPeer` connects to the server under test like a channel running ``AGI(agi://...)``:
it sends bytes (the environment, replies, the ``HANGUP`` notice) and checks the command lines
the server writes. `AsteriskPeer.replay` plays a transcript from tests/data/asterisk: each
``asterisk->server`` block is sent as one write, each ``server->asterisk`` block must arrive
byte for byte. `serving` runs a `FastAgiServer` on an ephemeral port for the length of a test.

Reads give up after `PEER_TIMEOUT` seconds so that a broken server fails the test instead of
hanging it; no test relies on that time otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY
from transcripts import Block, load

from hotline.agi.connection import AgiConnection
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession

PEER_TIMEOUT = 5.0
TRANSCRIPT = "agi-ivr-session.txt"


def transcript_env() -> bytes:
    """The environment block a real Asterisk 22 sent (Cyrillic caller name, query string)."""
    return next(block.data for block in load(TRANSCRIPT) if block.note == "environment")


def env_bytes(**overrides: str) -> bytes:
    """The transcript's environment with some variables changed (``uniqueid="42"`` sets
    ``agi_uniqueid``), or removed with the value ``"<drop>"``."""
    env = dict(_parse_env(transcript_env()))
    for key, value in overrides.items():
        if value == "<drop>":
            env.pop(f"agi_{key}", None)
        else:
            env[f"agi_{key}"] = value
    # Written by hand, not with format_env: a hostile far end does not sanitise its values.
    return "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"


def _parse_env(data: bytes) -> Iterable[tuple[str, str]]:
    for line in data.decode().split("\n"):
        if line:
            key, _, value = line.partition(": ")
            yield key, value


class AsteriskPeer:
    """One simulated Asterisk channel connected to the FastAGI server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, env: bytes | None = None) -> AsteriskPeer:
        """Connect and, unless `env` is ``b""``, send an environment (the transcript's)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        env = transcript_env() if env is None else env
        if env:
            await peer.send(env)
        return peer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, line: str) -> None:
        await self.send(line.encode() + b"\n")

    async def read_line(self) -> bytes:
        """The next line the server wrote, with its LF; ``b""`` once the server closed."""
        async with asyncio.timeout(PEER_TIMEOUT):
            return await self.reader.readline()

    async def expect(self, expected: bytes) -> None:
        """Read as many lines as `expected` holds and require exactly those bytes."""
        got = b""
        for _ in range(expected.count(b"\n")):
            line = await self.read_line()
            got += line
            if not line:
                break
        assert got == expected, f"server wrote {got!r}, transcript says {expected!r}"

    async def command(self) -> str:
        """The next command line, decoded, without its LF (fails if the server closed)."""
        line = await self.read_line()
        assert line.endswith(b"\n"), f"expected a command, got {line!r} (closed?)"
        return line[:-1].decode()

    async def expect_eof(self) -> None:
        """The server closed the connection without writing anything more."""
        async with asyncio.timeout(PEER_TIMEOUT):
            rest = await self.reader.read()
        assert rest == b"", f"expected the server to close, it wrote {rest!r}"

    async def expect_closed(self) -> None:
        """The server closed the connection, writing nothing: an orderly close, or a reset
        when it closed with bytes of ours still unread (which one depends on timing)."""
        try:
            await self.expect_eof()
        except ConnectionResetError:
            pass

    async def replay(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            if block.direction == "asterisk->server":
                await self.send(block.data)
            elif block.direction == "server->asterisk":
                await self.expect(block.data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


Handler = Callable[[AgiSession], Awaitable[None]]


async def eventually(condition: Callable[[], object]) -> None:
    """Wait (yielding to the loop) until `condition()` is true; fail after PEER_TIMEOUT."""
    async with asyncio.timeout(PEER_TIMEOUT):
        # Polling on purpose: the conditions are arbitrary state, with no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def serving(handlers: Mapping[str, Handler], **limits: Any) -> AsyncIterator[FastAgiServer]:
    """A started server on 127.0.0.1 and an ephemeral port; drained (at once) afterwards."""
    router = Router()
    for script, handler in handlers.items():
        router.add(script, handler)
    server = FastAgiServer(router, host="127.0.0.1", port=0, **limits)
    await server.start()
    try:
        yield server
    finally:
        await server.drain(0)


def metric(name: str, **labels: str) -> float:
    """The current value of one sample of the default registry (0 when not yet created)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Outcomes:
    """``hotline_agi_sessions_total`` by outcome, counted from when this object was made."""

    NAMES = (
        "completed",
        "hangup",
        "protocol_error",
        "idle_timeout",
        "rejected",
        "handler_error",
        "cancelled",
    )

    def __init__(self) -> None:
        self._before = {name: self._now(name) for name in self.NAMES}

    @staticmethod
    def _now(outcome: str) -> float:
        return metric("hotline_agi_sessions_total", outcome=outcome)

    def changed(self) -> dict[str, float]:
        """The outcomes counted since, e.g. ``{"hangup": 1.0}``."""
        deltas = {name: self._now(name) - before for name, before in self._before.items()}
        return {name: delta for name, delta in deltas.items() if delta}


class FedTransport:
    """The server's side of a socket whose reads the test makes one by one."""

    def __init__(self, protocol: AgiConnection) -> None:
        self.protocol = protocol
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    abort = close

    def is_closing(self) -> bool:
        return self.closed
