"""The simulated Asterisk's FastAGI client: ``AGI(agi://host:port/script)`` for one channel.

`run_agi` does what res_agi's launch_netscript + run_agi do for a network script:

1. connect to the controller (a refused or timed-out connection is ``AGISTATUS=FAILURE`` and
   the dialplan goes on, as in ami-agi-server-down.txt);
2. send the ``agi_*`` environment, keys in Asterisk 22's order, then the empty line;
3. read command lines (LF-terminated; like res_agi's 2048-byte fgets buffer, a longer line is
   cut after 2047 bytes and the rest read as the next line), run each through `AgiChannel` and
   write the reply;
4. the moment the channel hangs up, write the unsolicited ``HANGUP`` line (unless the channel
   sets ``AGISIGHUP=no``) and from then on answer as a dead channel, never closing the socket
   itself: the controller must. As a guard against a controller that never does, the session
   gives up after `FastAgiConfig.dead_session_timeout` simulated seconds;
5. when the controller closes, write a last ``HANGUP`` (res_agi's farewell to a FastAGI
   script), close, and set ``AGISTATUS``: ``SUCCESS``, ``HANGUP`` if the caller hung up first,
   ``FAILURE`` if a command failed while the channel was still up or the script sent a line
   starting with ``failure``.

While it waits for the controller the session keeps the caller's timeline going: key presses
land in the channel's queue at their time and a hang-up is announced at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from hotline.agi.protocol import format_env, format_reply
from pbxsim.channel import AgiChannel

AGI_VERSION: Final = "22.10.1"
HANGUP_BYTES: Final = b"HANGUP\n"
# res_agi reads a command with fgets into char buf[AGI_BUF_LEN = 2048].
MAX_COMMAND_BYTES: Final = 2047
# The presentation Asterisk reports with neither a caller number nor a name
# (AST_PRES_NUMBER_NOT_AVAILABLE); with either it is 0, allowed and not screened.
PRES_NOT_AVAILABLE: Final = 67


@dataclass(frozen=True)
class AgiRequestSpec:
    """The ``AGI()`` call the dialplan makes, and what Asterisk knows about its thread."""

    url: str  # AGI()'s first argument, e.g. agi://127.0.0.1:4573/hotline?did=88001000001
    args: tuple[str, ...] = ()
    channel_type: str = "Local"
    threadid: int = 140365331818176
    version: str = AGI_VERSION
    dnid: str | None = None
    rdnis: str | None = None


@dataclass(frozen=True)
class FastAgiConfig:
    """Limits of the simulated FastAGI client."""

    connect_timeout: float = 2.0  # real seconds; res_agi's MAX_AGI_CONNECT
    max_command_bytes: int = MAX_COMMAND_BYTES
    # Simulated seconds a dead session waits for the controller to close; None waits forever,
    # as Asterisk itself does.
    dead_session_timeout: float | None = 30.0


@dataclass(frozen=True)
class AgiSessionResult:
    """How the AGI application ended.

    `ended_by`: ``controller`` (it closed the socket), ``connect_failed``, ``failure_line``,
    ``exit_on_hangup`` (``AGIEXITONHANGUP=yes``) or ``dead_timeout`` (the controller kept a
    dead session open past the guard).
    """

    status: str  # the AGISTATUS value: SUCCESS, FAILURE or HANGUP
    connected: bool
    ended_by: str
    commands: int


def network_script(url: str) -> str | None:
    """What res_agi sends as ``agi_network_script``: everything after the host's ``/``."""
    rest = url.partition("://")[2]
    _, slash, script = rest.partition("/")
    return script if slash and script else None


def agi_environment(agi: AgiChannel, request: AgiRequestSpec) -> dict[str, str]:
    """The environment block, keys in the order Asterisk 22 writes them (setup_env)."""
    channel = agi.channel
    env = {"agi_network": "yes"}
    script = network_script(request.url)
    if script is not None:
        env["agi_network_script"] = script
    no_caller = agi.caller_num is None and agi.caller_name is None
    env |= {
        "agi_request": request.url,
        "agi_channel": channel.name,
        "agi_language": channel.language,
        "agi_type": request.channel_type,
        "agi_uniqueid": channel.uniqueid,
        "agi_version": request.version,
        "agi_callerid": "unknown" if agi.caller_num is None else agi.caller_num,
        "agi_calleridname": "unknown" if agi.caller_name is None else agi.caller_name,
        "agi_callingpres": str(PRES_NOT_AVAILABLE if no_caller else 0),
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": request.dnid or "unknown",
        "agi_rdnis": request.rdnis or "unknown",
        "agi_context": channel.context,
        "agi_extension": channel.exten,
        "agi_priority": str(channel.priority),
        "agi_enhanced": "0.0",
        "agi_accountcode": channel.account_code,
        "agi_threadid": str(request.threadid),
    }
    env |= {f"agi_arg_{n}": arg for n, arg in enumerate(request.args, start=1)}
    return env


class LineSplitter:
    """Cuts the controller's bytes into command lines as res_agi's fgets loop does.

    A line is returned with its ``\\n`` when it has one; one longer than `max_bytes` comes out
    as a `max_bytes` piece without it, the rest following as the next line. At end of file a
    last unterminated piece still counts as a line.
    """

    def __init__(self, max_bytes: int = MAX_COMMAND_BYTES) -> None:
        self._max = max_bytes
        self._buffer = bytearray()
        self._eof = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def feed_eof(self) -> None:
        self._eof = True

    @property
    def exhausted(self) -> bool:
        """End of file and nothing left to hand out."""
        return self._eof and not self._buffer

    def next_line(self) -> bytes | None:
        end = self._buffer.find(b"\n", 0, self._max)
        if end >= 0:
            return self._take(end + 1)
        if len(self._buffer) >= self._max or (self._eof and self._buffer):
            return self._take(min(len(self._buffer), self._max))
        return None

    def _take(self, size: int) -> bytes:
        line = bytes(self._buffer[:size])
        del self._buffer[:size]
        return line


class _Signal(Enum):
    EOF = "eof"
    TIMEOUT = "timeout"
    HANGUP_DUE = "hangup"
    DEAD_TIMEOUT = "dead_timeout"


class _Link:
    """The socket to the controller: lines in (with timeouts that lose nothing), bytes out."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_bytes: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._lines = LineSplitter(max_bytes)
        self._pending: asyncio.Task[bytes] | None = None
        self.broken = False

    async def read_line(self, wait: float | None) -> bytes | _Signal:
        """The next line, `_Signal.EOF`, or `_Signal.TIMEOUT` after `wait` real seconds."""
        while True:
            line = self._lines.next_line()
            if line is not None:
                return line
            if self._lines.exhausted:
                return _Signal.EOF
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._reader.read(65536))
            done, _ = await asyncio.wait({self._pending}, timeout=wait)
            if not done:
                return _Signal.TIMEOUT
            self._absorb(self._pending)
            self._pending = None

    def _absorb(self, task: asyncio.Task[bytes]) -> None:
        try:
            data = task.result()
        except (ConnectionError, OSError):
            data = b""
        if data:
            self._lines.feed(data)
        else:
            self._lines.feed_eof()

    async def write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            self.broken = True  # the controller went away; its EOF will end the session

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await self._pending
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def _connect(host: str, port: int, config: FastAgiConfig) -> _Link | None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), config.connect_timeout
        )
    except (OSError, TimeoutError):
        return None
    return _Link(reader, writer, config.max_command_bytes)


class _Session:
    """One run_agi loop over a connected socket."""

    def __init__(self, agi: AgiChannel, link: _Link, config: FastAgiConfig) -> None:
        self.agi = agi
        self.link = link
        self.config = config
        self.status = "SUCCESS"
        self.ended_by = "controller"
        self._dead_since = 0.0
        self._sighup = not _is_false(agi.variable("AGISIGHUP"))
        self._exit_on_hangup = _is_true(agi.variable("AGIEXITONHANGUP"))

    async def run(self, env: Mapping[str, str]) -> None:
        if self.agi.hung_up:  # AGI on a channel already gone runs dead, with no notice
            self.agi.mark_dead()
        await self.link.write(format_env(env))
        try:
            await self._loop()
        finally:
            if self._sighup:
                await self.link.write(HANGUP_BYTES)
            await self.link.close()

    async def _loop(self) -> None:
        while True:
            self.agi.poll()
            if self.agi.hangup_pending and await self._announce_hangup():
                return
            got = await self._next_line()
            if got is _Signal.HANGUP_DUE:
                continue
            if got is _Signal.EOF:
                return
            if got is _Signal.DEAD_TIMEOUT:
                self.ended_by = "dead_timeout"
                return
            assert isinstance(got, bytes)
            if not await self._command(got):
                return

    async def _announce_hangup(self) -> bool:
        """Tell the controller the channel is gone; True if the session ends here."""
        if self.status == "SUCCESS":
            self.status = "HANGUP"
        self.agi.notify_hangup()
        self._dead_since = self.agi.clock.now()
        if self._sighup:
            await self.link.write(HANGUP_BYTES)
        if self._exit_on_hangup:
            self.ended_by = "exit_on_hangup"
        return self._exit_on_hangup

    async def _command(self, raw: bytes) -> bool:
        """Run one line; False when it ends the session."""
        line = raw.removesuffix(b"\n").split(b"\0", 1)[0]  # C strings stop at NUL
        if not raw.split(b"\0", 1)[0]:
            return False  # fgets gave an empty string: res_agi takes it as the script's end
        if line[:7].lower() == b"failure":
            self.status, self.ended_by = "FAILURE", "failure_line"
            return False
        execution = await self.agi.execute(line.decode("utf-8", errors="replace"))
        await self.link.write(format_reply(execution.reply))
        if execution.failed and (self.agi.dead or not self.agi.hung_up):
            self.status = "FAILURE"  # not a hang-up: the command itself failed
        return True

    async def _next_line(self) -> bytes | _Signal:
        """Wait for the controller's next line while the caller's timeline runs on."""
        clock = self.agi.clock
        while True:
            deadline = self._deadline()
            timeout = None if deadline is None else clock.real_wait(deadline)
            got = await self.link.read_line(timeout)
            if got is not _Signal.TIMEOUT:
                return got
            assert deadline is not None
            await clock.sleep_until(deadline)
            if self.agi.dead:
                return _Signal.DEAD_TIMEOUT
            self.agi.poll()
            if self.agi.hangup_pending:
                return _Signal.HANGUP_DUE

    def _deadline(self) -> float | None:
        if not self.agi.dead:
            return self.agi.next_event_time()
        limit = self.config.dead_session_timeout
        return None if limit is None else self._dead_since + limit


async def run_agi(
    agi: AgiChannel,
    request: AgiRequestSpec,
    host: str,
    port: int,
    config: FastAgiConfig | None = None,
) -> AgiSessionResult:
    """Run ``AGI(request.url)`` on `agi`'s channel against the controller at host:port and
    leave ``AGISTATUS`` on the channel (reported as a ``VarSet``)."""
    config = config or FastAgiConfig()
    agi.threadid = request.threadid  # Dial's U() runs its own AGI() on this thread
    link = await _connect(host, port, config)
    if link is None:
        agi.set_variable("AGISTATUS", "FAILURE")
        return AgiSessionResult("FAILURE", connected=False, ended_by="connect_failed", commands=0)
    session = _Session(agi, link, config)
    await session.run(agi_environment(agi, request))
    agi.set_variable("AGISTATUS", session.status)
    return AgiSessionResult(session.status, True, session.ended_by, agi.stats.commands)


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _is_false(value: str | None) -> bool:
    return (value or "").strip().lower() in ("no", "false", "n", "f", "0", "off")
