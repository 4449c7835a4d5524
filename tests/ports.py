"""Ports for tests without races: servers listen on port 0 and say which port they got
(`bound_port`, `served`); a port that must refuse connections is held bound but not listening
(`refusing_port`), so no other process can take it while the test relies on it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiohttp import web


def bound_port(runner: web.AppRunner) -> int:
    """The port an aiohttp runner started on port 0 listens on."""
    return int(runner.addresses[0][1])


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """`app` listening on 127.0.0.1 at a port the OS picks for the block; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens, reserved for as long as the block runs:
    a connection to it is refused at once, as to a service that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: the kernel refuses connections
        yield int(sock.getsockname()[1])


def unused_port() -> int:
    """A port free now, for a program that must be told its port before it starts (Asterisk,
    sipp). Another process could take it meanwhile: only the opt-in real-Asterisk suite
    uses it, where there is no port 0 to ask for."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
