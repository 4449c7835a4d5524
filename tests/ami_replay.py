"""A fake Asterisk for AMI client tests: it replays a real transcript over a real socket.

`ReplayServer` listens on 127.0.0.1, port 0. Each connection gets the transcript's opening
``asterisk->client`` blocks (the greeting); then, each time the client sends the action the
transcript sent next, the server writes the ``asterisk->client`` blocks that followed it, one
write per block (or ``chunk_size`` bytes per write), with the transcript's ActionIDs replaced by
the client's. An ``EOF`` block closes the connection. Actions the script does not expect are
recorded and left unanswered, except ``Ping``, answered while ``answer_pings`` is set, and
``Logoff``, answered with a goodbye and a hang-up as Asterisk does.

Tests can also `drop` the current connection or `send_raw` bytes into it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from transcripts import Block

from hotline.ami.protocol import AmiMessage, AmiParser, encode_message

TO_CLIENT = "asterisk->client"
TO_ASTERISK = "client->asterisk"
_ACTION_ID = re.compile(rb"(?im)^(ActionID: )[^\r\n]*")


def mask_action_ids(data: bytes) -> bytes:
    """Bytes with every ActionID value replaced, to compare what two clients sent."""
    return _ACTION_ID.sub(rb"\1*", data)


# Only keeps a broken test from hanging; no test asserts how long anything took.
HANG_GUARD = 10.0


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition on state spread over client and server, which no single event
    covers, by polling it."""
    async with asyncio.timeout(HANG_GUARD):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def login_only(blocks: list[Block]) -> list[Block]:
    """The transcript cut after the Login exchange: the link then stays up and idle."""
    client_blocks = [i for i, block in enumerate(blocks) if block.direction == TO_ASTERISK]
    return blocks[: client_blocks[1]] if len(client_blocks) > 1 else blocks


@dataclass
class Exchange:
    """One action the transcript's client sent and what Asterisk wrote until the next one."""

    action: AmiMessage
    replies: list[Block]


@dataclass(eq=False)
class Session:
    """One accepted connection, as the server saw it."""

    writer: asyncio.StreamWriter
    raw: bytearray = field(default_factory=bytearray)
    received: list[AmiMessage] = field(default_factory=list)
    client_closed: bool = False

    def actions(self) -> list[str]:
        return [message.name for message in self.received]


def _script(blocks: list[Block]) -> tuple[list[Block], list[Exchange]]:
    opening: list[Block] = []
    exchanges: list[Exchange] = []
    for block in blocks:
        if block.direction == TO_ASTERISK:
            for message in AmiParser(expect_greeting=False).feed(block.data):
                assert isinstance(message, AmiMessage)
                exchanges.append(Exchange(message, []))
        elif block.direction == TO_CLIENT:
            (exchanges[-1].replies if exchanges else opening).append(block)
    return opening, exchanges


class ReplayServer:
    def __init__(self, blocks: list[Block], *, chunk_size: int | None = None) -> None:
        self.opening, self.exchanges = _script(blocks)
        self.chunk_size = chunk_size
        self.answer_pings = True
        self.sessions: list[Session] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> ReplayServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for session in self.sessions:
            session.writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    # --- controls for tests --------------------------------------------------------------

    def drop(self, *, reset: bool = False) -> None:
        """Close the newest connection: a FIN, or a RST with ``reset``."""
        writer = self.sessions[-1].writer
        if reset:
            writer.transport.abort()
        else:
            writer.close()

    def send_raw(self, data: bytes) -> None:
        self.sessions[-1].writer.write(data)

    def received(self, action: str, session: int = -1) -> bool:
        """Has that session received that action yet?"""
        return len(self.sessions) > 0 and action in self.sessions[session].actions()

    # --- serving -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = Session(writer)
        self.sessions.append(session)
        try:
            await self._converse(reader, session)
        except (ConnectionError, OSError):
            pass  # the client went away; that is what several tests do
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, session: Session) -> None:
        ids: dict[str, str] = {}
        if not await self._play(session, self.opening, ids):
            return
        script = iter(self.exchanges)
        expected = next(script, None)
        parser = AmiParser(expect_greeting=False)
        while chunk := await reader.read(65536):
            session.raw += chunk
            for message in parser.feed(chunk):
                assert isinstance(message, AmiMessage)
                session.received.append(message)
                if expected is not None and message.name == expected.action.name:
                    ids[expected.action.action_id or ""] = message.action_id or ""
                    if not await self._play(session, expected.replies, ids):
                        return
                    expected = next(script, None)
                elif message.name == "Ping" and self.answer_pings:
                    session.writer.write(_pong(message.action_id or ""))
                elif message.name == "Logoff":  # as Asterisk does: say goodbye, hang up
                    session.writer.write(_goodbye(message.action_id or ""))
                    session.writer.close()
                    return
        session.client_closed = True

    async def _play(self, session: Session, blocks: list[Block], ids: dict[str, str]) -> bool:
        """Write the blocks; False once an EOF block has closed the connection."""
        for block in blocks:
            await self._write(session.writer, _rewrite(block.data, ids))
            if block.eof:
                session.writer.close()
                return False
        return True

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        step = self.chunk_size or len(data) or 1
        for start in range(0, len(data), step):
            writer.write(data[start : start + step])
            await writer.drain()
            if self.chunk_size:
                await asyncio.sleep(0)  # let the client read before the next piece is sent


def _rewrite(data: bytes, ids: dict[str, str]) -> bytes:
    for old, new in ids.items():
        data = data.replace(f"ActionID: {old}\r\n".encode(), f"ActionID: {new}\r\n".encode())
    return data


def _goodbye(action_id: str) -> bytes:
    return encode_message(
        [
            ("Response", "Goodbye"),
            ("ActionID", action_id),
            ("Message", "Thanks for all the fish."),
        ]
    )


def _pong(action_id: str) -> bytes:
    return encode_message(
        [
            ("Response", "Success"),
            ("ActionID", action_id),
            ("Ping", "Pong"),
            ("Timestamp", "1795563319.843714"),
        ]
    )
