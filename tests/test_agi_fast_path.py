"""The connection's fast path for a read that is one whole "ok" reply line seen before.

`AgiConnection.data_received` hands such a read (``200 result=0\\n``) straight to
`AgiSession._deliver_ok`; everything else goes through the line splitter. These tests feed a
connection read by read, through a transport that records what the server writes, so that
each read is exactly what the test says (a socket may merge or split them), and check that a
reply taken by the fast path is delivered, counted and timed as one taken by the splitter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import monotonic
from typing import Any

import pytest
from agi_peer import FedTransport, Outcomes, env_bytes, eventually, metric

from hotline.agi import session as session_module
from hotline.agi.connection import AgiConnection
from hotline.agi.protocol import AgiProtocolError, AgiReply
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession, AgiUsageError, CallerHungUp

OK = b"200 result=0\n"


class FedCall:
    """One call on `server`, its environment sent; `read` is one read of the connection."""

    def __init__(self, server: FastAgiServer, first_read: bytes | None = None) -> None:
        self.server = server
        self.connection = AgiConnection(server, asyncio.get_running_loop())
        self.transport = FedTransport(self.connection)
        self.connection.connection_made(self.transport)  # type: ignore[arg-type]
        self.connection.data_received(env_bytes() if first_read is None else first_read)

    def read(self, data: bytes) -> None:
        self.connection.data_received(data)

    async def command(self) -> bytes:
        """The next command line the handler writes."""
        count = len(self.transport.written)
        await eventually(lambda: len(self.transport.written) > count or self.transport.closed)
        assert len(self.transport.written) == count + 1, self.transport.written
        return self.transport.written[-1]

    def fast(self) -> bool:
        """The next read that is a known "ok" line goes down the fast path."""
        return self.connection._known_ok is self.server.support.ok_replies

    async def ended(self) -> None:
        """The call is over and counted."""
        await eventually(lambda: self.connection._done)


@asynccontextmanager
async def fed_server(
    handler: Callable[[AgiSession], Awaitable[None]],
) -> AsyncIterator[FastAgiServer]:
    router = Router()
    router.add("hotline", handler)
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()  # listens, unused: its sweep runs
    try:
        yield server
    finally:
        await server.drain(0)


async def caught(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except Exception as exc:
        return exc


def split_replies(monkeypatch: pytest.MonkeyPatch) -> list[AgiReply]:
    """The replies delivered by the line splitter's path from now on (not the fast path)."""
    split: list[AgiReply] = []
    deliver = AgiSession._deliver

    def splitter_deliver(session: AgiSession, reply: AgiReply) -> None:
        split.append(reply)
        deliver(session, reply)

    monkeypatch.setattr(AgiSession, "_deliver", splitter_deliver)
    return split


def counted(command: str, result: str) -> float:
    return metric("hotline_agi_commands_total", command=command, result=result)


async def test_a_fast_reply_is_counted_and_timed_like_a_split_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each reading of the session's clock is a quarter second after the one before, so every
    # command takes exactly 0.25 s, whichever path its reply took.
    start, readings = monotonic(), iter(range(1_000_000))
    monkeypatch.setattr(session_module, "monotonic", lambda: start + 0.25 * next(readings))
    before = counted("NOOP", "ok"), metric("hotline_agi_command_seconds_count")
    before_sum = metric("hotline_agi_command_seconds_sum")
    buckets = ("0.1", "0.5")  # 0.25 s is over the first and under the second

    def in_buckets() -> list[float]:
        return [metric("hotline_agi_command_seconds_bucket", le=bound) for bound in buckets]

    before_buckets = in_buckets()
    results: list[Any] = []
    split = split_replies(monkeypatch)

    async def handler(session: AgiSession) -> None:
        for _ in range(4):
            results.append(await session.noop())

    async with fed_server(handler) as server:
        server.support.ok_replies.clear()  # a line this server has not read yet
        call = FedCall(server)
        paths = []
        for _ in range(4):
            assert await call.command() == b"NOOP\n"
            paths.append(call.fast())
            call.read(OK)
        await call.ended()
        server.support.flush()

    assert paths == [True] * 4  # every read may be taken whole, the call's first one too
    assert len(split) == 1  # but the line was new to the server at first: that one is split
    assert results == [None] * 4
    assert (counted("NOOP", "ok"), metric("hotline_agi_command_seconds_count")) == (
        before[0] + 4,
        before[1] + 4,
    )
    assert metric("hotline_agi_command_seconds_sum") - before_sum == pytest.approx(1.0)
    assert [a - b for a, b in zip(in_buckets(), before_buckets, strict=True)] == [0, 4]


async def test_a_known_line_split_across_reads_or_with_hangup_still_works() -> None:
    results: list[Any] = []

    async def handler(session: AgiSession) -> None:
        for _ in range(4):
            results.append(await caught(session.answer()))

    outcomes = Outcomes()
    async with fed_server(handler) as server:
        call = FedCall(server)
        assert await call.command() == b"ANSWER\n"
        call.read(OK)  # now a known line
        assert await call.command() == b"ANSWER\n"
        call.read(OK[:5])
        assert not call.fast()  # half a line is buffered: the next read is not taken whole
        call.read(OK[5:])
        assert await call.command() == b"ANSWER\n"
        assert call.fast()
        call.read(OK + b"HANGUP\n")  # the reply and the notice in one read
        await call.ended()
    assert results[:3] == [0, 0, 0]
    assert isinstance(results[3], CallerHungUp)  # refused unsent after the notice
    assert outcomes.changed() == {"completed": 1}  # the handler caught it and returned


async def test_a_known_line_inside_a_usage_block_is_usage_text() -> None:
    results: list[Any] = []

    async def handler(session: AgiSession) -> None:
        results.append(await session.answer())
        results.append(await caught(session.command("SAY DIGITS")))
        results.append(await session.answer())

    async with fed_server(handler) as server:
        call = FedCall(server)
        await call.command()
        call.read(OK)
        assert await call.command() == b"SAY DIGITS\n"
        call.read(b"520-Invalid command syntax.  Proper usage follows:\n")
        assert not call.fast()
        call.read(OK)  # a line of the usage text, however it reads
        call.read(b"520 End of proper usage.\n")
        await call.command()
        assert call.fast()
        call.read(OK)
        await call.ended()
    assert results[0] == 0 and results[2] == 0
    assert isinstance(results[1], AgiUsageError)
    assert results[1].usage == "Invalid command syntax.  Proper usage follows:\n200 result=0"


async def test_a_known_line_for_a_cancelled_command_is_dropped_uncounted() -> None:
    results: list[Any] = []
    before = counted("WAIT FOR DIGIT", "ok")

    async def handler(session: AgiSession) -> None:
        await session.answer()
        waiting = asyncio.create_task(session.wait_for_digit(5000))
        await asyncio.sleep(0)
        waiting.cancel()
        results.extend(await asyncio.gather(waiting, return_exceptions=True))
        results.append(await session.channel_status())  # its own reply, not the orphan's

    async with fed_server(handler) as server:
        call = FedCall(server)
        await call.command()
        call.read(OK)
        assert await call.command() == b"WAIT FOR DIGIT 5000\n"
        await eventually(lambda: results)
        assert call.fast()
        call.read(OK)  # the orphan: answers the cancelled command
        assert await call.command() == b"CHANNEL STATUS\n"
        call.read(b"200 result=6\n")
        await call.ended()
        server.support.flush()
    assert isinstance(results[0], asyncio.CancelledError) and results[1] == 6
    assert counted("WAIT FOR DIGIT", "ok") == before


async def test_a_known_line_with_no_command_waiting_ends_the_call() -> None:
    async def handler(session: AgiSession) -> None:
        await session.answer()
        await session.gone()

    outcomes = Outcomes()
    async with fed_server(handler) as server:
        call = FedCall(server)
        await call.command()
        call.read(OK)
        await eventually(lambda: call.connection._session and not call.connection._session._busy)
        assert call.fast()
        call.read(OK)  # nothing was asked
        await call.ended()
        session = call.connection._session
        assert session is not None and isinstance(session.failure, AgiProtocolError)
    assert outcomes.changed() == {"protocol_error": 1}  # `gone` woke the handler


async def test_a_negative_result_is_never_taken_as_ok() -> None:
    before = counted("EXEC", "failure"), counted("EXEC", "ok")

    async def handler(session: AgiSession) -> None:
        for _ in range(3):
            await session.exec("Playback", "x")

    async with fed_server(handler) as server:
        call = FedCall(server)
        for _ in range(3):
            await call.command()
            call.read(b"200 result=-1\n")
        await call.ended()
        server.support.flush()
        assert b"200 result=-1\n" not in server.support.ok_replies
    assert (counted("EXEC", "failure"), counted("EXEC", "ok")) == (before[0] + 3, before[1])


async def test_a_known_line_after_an_unfinished_one_ends_that_line() -> None:
    results: list[Any] = []

    async def handler(session: AgiSession) -> None:
        await session.answer()
        results.append(await caught(session.get_variable("HOTLINE_TOPIC")))

    outcomes = Outcomes()
    async with fed_server(handler) as server:
        call = FedCall(server)
        await call.command()
        call.read(OK)
        await call.command()
        call.read(b"200 result=1 (")  # a value cut short by the read...
        call.read(OK)  # ...so this is the rest of that line, garbage: not a reply
        await call.ended()
    assert [type(result) for result in results] == [AgiProtocolError]
    assert outcomes.changed() == {"protocol_error": 1}


async def test_a_known_line_after_the_call_ended_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(session: AgiSession) -> None:
        await session.answer()

    async with fed_server(handler) as server:
        call = FedCall(server)
        await call.command()
        call.read(OK)
        await call.ended()
        call.read(OK)  # late bytes, read before the close took effect
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_the_first_reply_of_a_call_takes_the_fast_path_once_the_line_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    split = split_replies(monkeypatch)
    answers: list[int] = []

    async def handler(session: AgiSession) -> None:
        answers.append(await session.answer())

    outcomes = Outcomes()
    async with fed_server(handler) as server:
        server.support.ok_replies.clear()
        for _ in range(2):
            call = FedCall(server)
            assert await call.command() == b"ANSWER\n"
            call.read(OK)
            await call.ended()
    assert answers == [0, 0]
    assert len(split) == 1  # the first call's reply taught the server the line
    assert outcomes.changed() == {"completed": 2}


async def test_a_reply_with_the_environment_and_no_command_is_not_taken_as_one() -> None:
    answers: list[Any] = []

    async def handler(session: AgiSession) -> None:
        answers.append(await caught(session.answer()))

    outcomes = Outcomes()
    async with fed_server(handler) as server:
        warm = FedCall(server)  # the line is known to the server from here on
        await warm.command()
        warm.read(OK)
        await warm.ended()
        call = FedCall(server, env_bytes() + OK)  # a "reply" before any command
        await call.ended()
        assert call.transport.written == []
    assert [type(answer) for answer in answers[1:]] == [AgiProtocolError]
    assert outcomes.changed() == {"completed": 1, "protocol_error": 1}
