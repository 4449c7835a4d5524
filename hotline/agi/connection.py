"""The bytes of one FastAGI connection: the environment, then the replies to the session.

An `asyncio.Protocol` per connection (buffered on asyncio's own loop, see
`BufferedAgiConnection`): lines are cut on ``b"\\n"`` in `data_received` and replies are
handed straight to the session's waiting future, with no task or stream reader per command.
Distinct reply lines are parsed once per server and remembered (never those that may carry
caller data); the environment is decoded and split in one go, with C-level steps only (see
`hotline.agi.protocol.EnvReader`), remembering only the values of the dialplan's. Whatever
one connection sends (garbage, an endless line, half an environment and then silence) closes
that connection and nothing else.

The server (`hotline.agi.server.FastAgiServer`) admits the connection, runs the call's
handler, sweeps the deadlines and counts how each connection ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Final, TypeGuard

from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    HangupNotice,
    ReplyReader,
)
from hotline.agi.session import AgiSession
from hotline.logs import bind_call
from hotline.security import SecurityCategory, security_event

if TYPE_CHECKING:
    from hotline.agi.server import FastAgiServer

# One logger for the server and its connections: operators filter its lines by this name.
log = logging.getLogger("hotline.agi.server")

# Asterisk sends about 25 variables plus one per AGI argument; far more is not Asterisk.
MAX_ENV_LINES: Final = 512
_NO_CALL_ID: Final = "-"
# Bound of the per-server cache of reply lines.
_CACHE_ENTRIES: Final = 1024
# `AgiConnection._known_ok` when a read may not be taken whole: never written to.
_NONE_KNOWN: Final[dict[bytes, AgiReply]] = {}


class AgiConnection(asyncio.Protocol):
    """The bytes of one FastAGI connection. Kept lean: this runs for every line of every call."""

    __slots__ = (
        "_accepted_at",
        "_buffer",
        "_deliver_known",
        "_done",
        "_env",
        "_in_usage",
        "_known_ok",
        "_limit",
        "_loop",
        "_reader",
        "_replies",
        "_server",
        "_session",
        "_task",
        "_transport",
        "peer",
    )

    def __init__(self, server: FastAgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._limit = server.max_line_bytes
        self._replies = server.reply_cache
        # The server's `SessionSupport.ok_replies` while a read may be taken whole as one of
        # them (a session, nothing buffered, no 520 block open), else an empty dict.
        self._known_ok: dict[bytes, AgiReply] = _NONE_KNOWN
        self._deliver_known: Callable[[AgiReply], None] | None = None  # session._deliver_ok
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._env: dict[str, str] = {}
        self._accepted_at = 0.0
        self._session: AgiSession | None = None
        self._reader: ReplyReader | None = None  # made for the first line not in the cache
        self._in_usage = False  # the reader is inside a 520 block: no cached replies then
        self._task: asyncio.Task[None] | None = None
        self._done = False  # counted in the metrics and gone from the server's set
        self.peer = "unknown"  # the peer's IP address, from connection_made on

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self._transport = transport  # type: ignore[assignment]
        server = self._server
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if isinstance(peername, tuple) and peername else "unknown"
        refusal = server.admit(self, self.peer)
        if refusal is not None:
            self._refuse(refusal)
            return
        self._accepted_at = monotonic()  # for the server's sweep: see `check_deadline`

    def data_received(self, data: bytes) -> None:
        # The usual read: one whole "ok" reply line seen before (``200 result=0\n``). Not
        # after `end`, which empties `_known_ok`.
        known = self._known_ok.get(data)
        if known is not None:
            try:
                self._deliver_known(known)  # type: ignore[misc]  # set with `_known_ok`
            except AgiProtocolError as exc:  # a reply with no command waiting for it
                self._protocol_error(exc)
            return
        if self._done:
            return
        session = self._session
        if session is None:
            self._environment_data(data)
            return
        # One split for every line of the read (nearly always one reply): a find loop pays
        # for argument parsing and a slice per line, twice what a split costs.
        lines = (self._buffer + data if self._buffer else data).split(b"\n")
        rest = lines.pop()  # the unfinished line, b"" when the read ended on a line break
        limit, replies = self._limit, self._replies
        try:
            for line in lines:
                if len(line) > limit:
                    raise AgiProtocolError(f"line longer than {limit} bytes")
                # Replies repeat ("200 result=0"): parse each distinct line once per server.
                item = None if self._in_usage else replies.get(line)
                if item is None:
                    reader = self._reader or self._new_reader()
                    item = reader.feed(line.decode())
                    self._in_usage = reader.in_usage_block
                    if item is None:
                        continue  # inside a 520 usage block
                    if len(replies) < _CACHE_ENTRIES and _cacheable(item):
                        replies[line] = item
                        if _counted_ok(item):
                            self._server.support.ok_replies[line + b"\n"] = item
                if isinstance(item, AgiReply):
                    session._deliver(item)
                else:
                    with bind_call(session.call_id):
                        session._hangup_notice()
        except (AgiProtocolError, ValueError) as exc:  # ValueError: UnicodeDecodeError, int()
            self._protocol_error(exc)
            return
        if len(rest) > limit:
            self._protocol_error(AgiProtocolError(f"line longer than {limit} bytes"))
            return
        self._buffer = rest
        # The next read may take the fast path only if nothing is pending before it.
        self._known_ok = _NONE_KNOWN if rest or self._in_usage else self._server.support.ok_replies
        self._deliver_known = session._deliver_ok

    def _new_reader(self) -> ReplyReader:
        reader = self._reader = ReplyReader()
        return reader

    def connection_lost(self, exc: Exception | None) -> None:
        session = self._session
        if session is not None:
            if self._done:  # the handler has returned and the call is counted: no failure
                session._mark_gone()  # to note, only `gone` to complete (a task of the call's)
            else:
                session._connection_lost()  # the handler's task counts the outcome
        elif not self._done:
            with bind_call(self._env.get("agi_uniqueid") or _NO_CALL_ID):
                log.warning("FastAGI connection closed in the middle of the AGI environment")
            self.end("protocol_error")

    def _refuse(self, why: str) -> None:
        """Close a connection the server will not serve, before reading a byte of it."""
        server = self._server
        self._done = True
        server.count_outcome("rejected")
        if why in ("peer not allowed", "too many calls from this peer"):
            server.peer_refused(self.peer, why)  # not Asterisk, or one client hogging slots
        else:
            log.warning(
                "refusing a FastAGI connection: %s (%d calls in progress, max_sessions %d)",
                why,
                server.in_progress,
                server.max_sessions,
            )
        assert self._transport is not None
        self._transport.close()  # at once: nothing was read or written

    # --- the environment -----------------------------------------------------------------

    def _environment_data(self, data: bytes) -> None:
        """Parse the complete environment lines received so far; start the call at the blank
        line. The whole environment usually comes in one read, so it is split in one go."""
        buffer = self._buffer + data if self._buffer else data
        blank = buffer.find(b"\n\n")
        if blank <= 0 or buffer[0] == 10:  # b"\n": not the whole environment in one read
            self._environment_part(buffer, blank)
            return
        limit = self._limit
        try:
            if blank > limit and max(map(len, buffer[:blank].split(b"\n"))) > limit:
                raise AgiProtocolError(f"line longer than {limit} bytes")
            env = self._env = self._server.env_reader.read(buffer[:blank].decode(), self._env)
            if len(env) > MAX_ENV_LINES:
                raise AgiProtocolError(f"more than {MAX_ENV_LINES} environment variables")
        except (AgiProtocolError, ValueError) as exc:  # ValueError: UnicodeDecodeError
            self._protocol_error(exc)
            return
        self._buffer = b""
        if self._start_call() and len(buffer) > blank + 2:
            self.data_received(buffer[blank + 2 :])  # what came with it (HANGUP, even)

    def _environment_part(self, buffer: bytes, blank: int) -> None:
        """`_environment_data` when the environment ends at once (an empty line first) or
        is not complete yet: add its complete lines, keep the rest."""
        if buffer[:1] == b"\n":
            block, rest, complete = b"", buffer[1:], True
        elif blank >= 0:
            block, rest, complete = buffer[:blank], buffer[blank + 2 :], True
        else:
            last = buffer.rfind(b"\n")
            block, rest, complete = buffer[: max(last, 0)], buffer[last + 1 :], False
        try:
            if not complete and len(rest) > self._limit:
                raise AgiProtocolError(f"line longer than {self._limit} bytes")
            if block:
                self._parse_env(block)
        except (AgiProtocolError, ValueError) as exc:
            self._protocol_error(exc)
            return
        if not complete:
            self._buffer = rest
            return
        self._buffer = b""
        if self._start_call() and rest:
            self.data_received(rest)

    def _parse_env(self, block: bytes) -> None:
        """Add the complete lines of `block` to the environment (`parse_env_block`)."""
        limit = self._limit
        if len(block) > limit and max(map(len, block.split(b"\n"))) > limit:
            raise AgiProtocolError(f"line longer than {limit} bytes")
        env = self._env = self._server.env_reader.read(block.decode(), self._env)
        if len(env) > MAX_ENV_LINES:
            raise AgiProtocolError(f"more than {MAX_ENV_LINES} environment variables")

    def _start_call(self) -> bool:
        """Route the complete environment to a handler; False when the connection is closed."""
        server, env, transport = self._server, self._env, self._transport
        assert transport is not None
        request = server.request_for(env)
        handler = server.router.resolve(request.script)
        if handler is None:
            with bind_call(env.get("agi_uniqueid") or _NO_CALL_ID):
                log.warning(
                    "no handler for AGI script %r: closing, the dialplan goes on", request.script
                )
            self.end("rejected")
            transport.close()
            return False
        session = AgiSession(  # in order, not by keyword: see AgiSession.__init__
            env,
            transport.write,  # write
            transport.abort,  # on_failure
            server.reply_timeout,
            server.support,
            request,
            self._loop,
        )
        self._session = session
        # The first reply may be taken whole too: nothing is buffered after the environment.
        self._known_ok = server.support.ok_replies
        self._deliver_known = session._deliver_ok
        self._task = self._loop.create_task(server.run_call(self, session, handler))
        return True

    def check_deadline(self, now: float) -> None:
        """The server's sweep: the environment must be complete `env_timeout` seconds after
        the connection, and then each reply within `reply_timeout` of its command."""
        if self._session is not None:
            self._session.check_overdue(now)
        elif not self._done and now - self._accepted_at >= self._server.env_timeout:
            with bind_call(self._env.get("agi_uniqueid") or _NO_CALL_ID):
                log.warning(
                    "no complete AGI environment within %s s: closing", self._server.env_timeout
                )
            self.end("idle_timeout")
            assert self._transport is not None
            self._transport.abort()

    # --- ending --------------------------------------------------------------------------

    def _protocol_error(self, exc: Exception) -> None:
        session = self._session
        call_id = session.call_id if session is not None else self._env.get("agi_uniqueid")
        with bind_call(call_id or _NO_CALL_ID):
            security_event(
                SecurityCategory.BAD_INPUT,
                f"closing a FastAGI connection that is not speaking AGI: {exc}",
                peer=self.peer,
            )
        if session is not None:
            error = exc if isinstance(exc, AgiProtocolError) else AgiProtocolError(str(exc))
            session._fail(error, notify=False)  # its task counts the outcome
        else:
            self.end("protocol_error")
        assert self._transport is not None
        self._transport.abort()

    @property
    def bridging(self) -> bool:
        """The call's session waits for Asterisk's Dial or Queue (see `AgiSession.bridging`)."""
        return self._session is not None and self._session.bridging

    def finish(self, outcome: str) -> None:
        """How every call ends: close after what was written is flushed, and `end` (inlined:
        this runs for every call)."""
        if self._transport is not None:
            self._transport.close()
        if not self._done:
            self._done = True
            self._known_ok = _NONE_KNOWN  # see `data_received`
            self._server.finished(self, outcome)

    def cancel(self) -> None:
        """Shutdown: cancel the handler, or drop a connection still sending its environment."""
        if self._task is not None:
            self._task.cancel()
        elif self._transport is not None:
            self.end("cancelled")
            self._transport.close()

    def end(self, outcome: str) -> None:
        """Account for this connection once, however it ended."""
        if not self._done:
            self._done = True
            self._known_ok = _NONE_KNOWN  # see `data_received`
            self._server.finished(self, outcome)


class BufferedAgiConnection(AgiConnection, asyncio.BufferedProtocol):
    """The same, reading into the server's one read buffer: on asyncio's own loop a plain
    Protocol gets a fresh 256 KiB bytes object per read, which glibc often serves with
    mmap/mremap/munmap, three system calls per AGI reply. (uvloop reads into a buffer of its
    own and hands over just the bytes read, so there the plain protocol is the faster one.)"""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server.read_buffer  # filled and consumed before any other read

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._server.read_buffer[:nbytes].tobytes())


def _counted_ok(item: AgiReply | HangupNotice) -> TypeGuard[AgiReply]:
    """A cached reply `AgiSession._deliver_ok` may take: a 200 counted "ok"."""
    return isinstance(item, AgiReply) and item.code == 200 and item.result[:1] != "-"


def _cacheable(item: AgiReply | HangupNotice) -> bool:
    """Replies worth remembering: frequent, and carrying nothing a caller said or typed
    (GET VARIABLE values and GET DATA digits may be personal data)."""
    if isinstance(item, HangupNotice):
        return True
    return item.code != 520 and item.data is None and len(item.result) <= 2
