"""What the suite puts on the wire to a real Asterisk, recording every read and write in the
transcript format of tests/data/asterisk/ (``### <direction> +<seconds>s`` then the raw bytes).

* `RecordingAmi`: a bare AMI connection (the test's own eyes, not the controller's client):
  sends actions, collects events, keeps the raw blocks.
* `AgiTap`: listens where ``HOTLINE_CONTROLLER`` points and relays each FastAGI connection to
  the controller under test, keeping each session's blocks; or, in ``hang_up_after_env``
  mode, reads the environment and closes without a command; or runs the test's own `script`
  (a FastAGI server written out command by command, over a recording `AgiScript`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hotline.ami.protocol import AmiMessage, AmiParser, encode_message

GUARD = 20.0


@dataclass
class Recording:
    """Raw blocks of one connection, in the transcript format."""

    started: float = field(default_factory=time.monotonic)
    blocks: list[tuple[str, float, bytes, bool]] = field(default_factory=list)

    def add(self, direction: str, data: bytes, eof: bool = False) -> None:
        self.blocks.append((direction, time.monotonic() - self.started, data, eof))

    def render(self) -> bytes:
        out = bytearray()
        for direction, at, data, eof in self.blocks:
            out += f"### {direction}{' EOF' if eof else ''} +{at:.3f}s\n".encode()
            out += data
            if data and not data.endswith(b"\n"):
                out += b"\n[no trailing newline]\n"
        return bytes(out)


class RecordingAmi:
    """A bare AMI client over one TCP link, recording every read and write."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.recording = Recording()
        self.events: list[AmiMessage] = []
        self.responses: dict[str, list[AmiMessage]] = {}
        self._parser = AmiParser(expect_greeting=True)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._next = 0
        self.closed = False

    async def connect(self, username: str, secret: str) -> AmiMessage:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.create_task(self._read())
        return await self.action("Login", Username=username, Secret=secret)

    async def _read(self) -> None:
        assert self._reader is not None
        while chunk := await self._reader.read(65536):
            self.recording.add("asterisk->client", chunk)
            for message in self._parser.feed(chunk):
                if not isinstance(message, AmiMessage):
                    continue  # the greeting
                if message.get("Event"):
                    self.events.append(message)
                if message.action_id and (message.get("Response") or message.get("Event")):
                    self.responses.setdefault(message.action_id, []).append(message)
            self._changed.set()
        self.recording.add("asterisk->client", b"", eof=True)
        self.closed = True
        self._changed.set()

    async def send(self, action: str, **headers: str) -> str:
        assert self._writer is not None
        self._next += 1
        action_id = f"suite-{self._next}"
        data = encode_message([("Action", action), ("ActionID", action_id), *headers.items()])
        self.recording.add("client->asterisk", data)
        self._writer.write(data)
        await self._writer.drain()
        return action_id

    async def action(self, action: str, **headers: str) -> AmiMessage:
        action_id = await self.send(action, **headers)
        await self.until(lambda: action_id in self.responses or self.closed)
        return self.responses[action_id][0]

    async def listing(self, action: str, **headers: str) -> list[AmiMessage]:
        """An event-list action: every message with its ActionID up to the Complete event."""
        action_id = await self.send(action, **headers)

        def complete() -> bool:
            got = self.responses.get(action_id, [])
            return any(m.get("EventList") == "Complete" for m in got) or any(
                m.get("Response") == "Error" for m in got
            )

        await self.until(complete)
        return self.responses[action_id]

    async def until(self, predicate: Callable[[], bool], within: float = GUARD) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def event(self, name: str, within: float = GUARD, **match: str) -> AmiMessage:
        """The first event (seen so far or to come) named so whose headers match."""

        def found() -> AmiMessage | None:
            for event in self.events:
                if event.name == name and all(matches(event, k, v) for k, v in match.items()):
                    return event
            return None

        await self.until(lambda: found() is not None, within)
        event = found()
        assert event is not None
        return event

    def named(self, name: str) -> list[AmiMessage]:
        return [event for event in self.events if event.name == name]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await self._task


def matches(event: AmiMessage, key: str, value: str) -> bool:
    """``Key=value`` is equality; ``Key_startswith=value`` a prefix."""
    if key.endswith("_startswith"):
        return (event.get(key.removesuffix("_startswith")) or "").startswith(value)
    return event.get(key) == value


class AgiTap:
    """The FastAGI address Asterisk calls: relays to the controller, recording each session."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.target: int | None = None  # the controller's FastAGI port
        self.hang_up_after_env = False
        self.script: Callable[[AgiScript], Awaitable[None]] | None = None
        self.sessions: list[Recording] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recording = Recording()
        self.sessions.append(recording)
        try:
            if self.script is not None:
                await self.script(AgiScript(reader, writer, recording))
                return
            if self.hang_up_after_env or self.target is None:
                await self._read_environment_and_close(reader, writer, recording)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(
                _pump(reader, up_writer, recording, "asterisk->server"),
                _pump(up_reader, writer, recording, "server->asterisk"),
            )
        finally:
            writer.close()

    @staticmethod
    async def _read_environment_and_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recording: Recording
    ) -> None:
        data = bytearray()
        while not data.endswith(b"\n\n"):
            chunk = await reader.read(65536)
            if not chunk:
                break
            recording.add("asterisk->server", chunk)
            data += chunk
        recording.add("server->asterisk", b"", eof=True)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    recording: Recording,
    direction: str,
) -> None:
    try:
        while chunk := await reader.read(65536):
            recording.add(direction, chunk)
            writer.write(chunk)
            await writer.drain()
        recording.add(direction, b"", eof=True)
    except (ConnectionError, OSError):
        recording.add(direction, b"", eof=True)
    finally:
        writer.close()


class AgiScript:
    """The server's side of one FastAGI session, driven line by line by a test; every read
    and write is recorded as it crossed the socket."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, recording: Recording
    ) -> None:
        self.reader, self.writer, self.recording = reader, writer, recording
        self._buffer = b""

    async def _fill(self) -> bool:
        async with asyncio.timeout(GUARD):
            chunk = await self.reader.read(65536)
        self.recording.add("asterisk->server", chunk, eof=not chunk)
        self._buffer += chunk
        return bool(chunk)

    async def environment(self) -> bytes:
        while b"\n\n" not in self._buffer:
            if not await self._fill():
                raise ConnectionError("Asterisk closed before the environment ended")
        env, _, self._buffer = self._buffer.partition(b"\n\n")
        return env + b"\n\n"

    async def line(self) -> bytes:
        """The next line Asterisk sends (a reply or the HANGUP notice)."""
        while b"\n" not in self._buffer:
            if not await self._fill():
                raise ConnectionError("Asterisk closed the FastAGI socket")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    async def command(self, line: str) -> bytes:
        data = line.encode() + b"\n"
        self.recording.add("server->asterisk", data)
        self.writer.write(data)
        await self.writer.drain()
        return await self.line()

    async def close(self) -> bytes:
        """End the session as a server does (our side closes) and keep whatever Asterisk still
        sends until it closes too."""
        self.recording.add("server->asterisk", b"", eof=True)
        self.writer.write_eof()
        rest = self._buffer
        while await self._fill():
            rest = self._buffer
        return rest
