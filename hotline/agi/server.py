"""The FastAGI server: Asterisk opens one TCP connection per call, we run one handler per call.

A connection goes through three stages:

1. the ``agi_*`` environment, which must be complete within `env_timeout`;
2. routing: the script of ``agi://host/script?query`` (query string split off) picks a handler
   registered on a `Router`; an unknown script closes the connection at once, so Asterisk's
   dialplan goes on with ``AGISTATUS=FAILURE`` (the fallback the dialplan already has for a
   controller outage);
3. the handler, ``async def handler(session: AgiSession) -> None``, after which the server closes
   the socket itself: Asterisk never closes it, not even after the caller hung up.

Whatever one connection sends (garbage, an endless line, half an environment and then silence)
closes that connection and nothing else. The byte path is an `asyncio.Protocol` (buffered on
asyncio's own loop, see `_BufferedConnection`): lines are cut on ``b"\\n"`` in `data_received`
and replies are handed straight to the session's waiting future, with no task or stream reader
per command. Distinct reply and environment lines are parsed once per server and remembered
(never those that may carry caller data). Deadlines are enforced by one periodic sweep per
server rather than a timer per call, so they fire up to 1/8 of the timeout late.

Shutdown: `drain` stops accepting, lets calls in progress finish up to a timeout and cancels the
rest; `install_signal_handlers` wires SIGTERM/SIGINT to it for the CLI:

    server = FastAgiServer(router, host=settings.host, port=settings.port, ...)
    await server.start()
    install_signal_handlers(server, drain_timeout=settings.drain_timeout)
    await server.serve_forever()  # returns once drained
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from time import monotonic
from typing import Final, cast

from prometheus_client import Counter

from hotline import metrics
from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    HangupNotice,
    ReplyReader,
    parse_env_line,
)
from hotline.agi.session import (
    AgiReplyTimeout,
    AgiSession,
    CallerHungUp,
    SessionSupport,
)
from hotline.logs import bind_call, set_call_id

log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]

# Asterisk sends about 25 variables plus one per AGI argument; far more is not Asterisk.
MAX_ENV_LINES: Final = 512
_NO_CALL_ID: Final = "-"
# How often, per the shorter timeout, the sweep checks deadlines: a deadline is enforced at
# most 1/SWEEPS_PER_TIMEOUT of the timeout late.
SWEEPS_PER_TIMEOUT: Final = 8
# The server's read buffer: lines are short; a longer read just takes two turns.
READ_BUFFER_BYTES: Final = 65536
# Bound of each per-server parse cache (environment lines, reply lines).
_CACHE_ENTRIES: Final = 1024
# Environment lines that repeat from call to call and say nothing about the caller: the only
# ones cached (a cache of caller numbers would be personal data kept for no reason). The
# request URL is left out too: a dialplan may put caller data in its query string.
_SHARED_ENV_KEYS: Final = frozenset(
    {
        "agi_network",
        "agi_language",
        "agi_type",
        "agi_version",
        "agi_callingpres",
        "agi_callingani2",
        "agi_callington",
        "agi_callingtns",
        "agi_dnid",
        "agi_context",
        "agi_extension",
        "agi_priority",
        "agi_enhanced",
        "agi_accountcode",
    }
)


class Router:
    """Which handler serves which script: ``router.add("hotline", handler)`` serves
    ``AGI(agi://controller/hotline?did=88001000001)``."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, script: str, handler: Handler) -> None:
        name = script.strip("/")
        if not name or "?" in name:
            raise ValueError(f"not a script name: {script!r}")
        if name in self._handlers:
            raise ValueError(f"script {name!r} already has a handler")
        self._handlers[name] = handler

    def resolve(self, script: str) -> Handler | None:
        return self._handlers.get(script)

    @property
    def scripts(self) -> list[str]:
        return sorted(self._handlers)


class FastAgiServer:
    """Accepts Asterisk's FastAGI connections and runs one handler per call.

    Limits: `max_line_bytes` per line (longer closes the connection), `env_timeout` seconds to
    receive the environment, `reply_timeout` seconds for Asterisk to answer one command (long
    enough for RECORD FILE), `max_sessions` connections at once (more are closed at once, and
    Asterisk falls back in the dialplan). Port 0 picks a free port (see `port`).
    """

    CANCEL_GRACE: Final = 5.0
    """Seconds `drain` gives cancelled handlers to unwind before giving up on them."""

    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        max_line_bytes: int = 8192,
        env_timeout: float = 5.0,
        reply_timeout: float = 300.0,
        max_sessions: int = 10000,
        backlog: int = 4096,
    ) -> None:
        for name, value in [
            ("max_line_bytes", max_line_bytes),
            ("env_timeout", env_timeout),
            ("reply_timeout", reply_timeout),
            ("max_sessions", max_sessions),
            ("backlog", backlog),
        ]:
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0, got {value}")
        self.router = router
        self.host = host
        self.max_line_bytes = max_line_bytes
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout
        self.max_sessions = max_sessions
        self._requested_port = port
        self._backlog = backlog
        self._listener: asyncio.Server | None = None
        # Kept, not looked up per call: Python 3.11's get_running_loop() costs a getpid().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        self._support = SessionSupport(immediate=False)  # flushed by `_sweep`
        self._outcome_counters: dict[str, Counter] = {}
        # Parsed lines by their bytes; values are immutable, so connections share them.
        self._env_cache: dict[bytes, tuple[str, str]] = {}
        self._reply_cache: dict[bytes, AgiReply | HangupNotice] = {}
        # Every connection reads into this, one read at a time (see `_Connection`).
        self._read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))
        self._draining = False
        self._all_done = asyncio.Event()  # set when draining and no connection is left
        # Deadlines (environment, replies) are checked by one periodic sweep over the
        # connections, not one timer per connection or command: the per-call path stays
        # free of timer-heap work. A deadline is therefore met up to one tick late.
        self._tick = min(env_timeout, reply_timeout) / SWEEPS_PER_TIMEOUT
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen. Returns once the socket is bound (so `port` is known)."""
        if self._listener is not None:
            raise RuntimeError("the FastAGI server is already started")
        loop = self._loop = asyncio.get_running_loop()
        buffered = isinstance(loop, asyncio.SelectorEventLoop)  # asyncio's own, not uvloop
        connection = _BufferedConnection if buffered else _Connection
        self._listener = await loop.create_server(
            lambda: connection(self, loop),
            self.host,
            self._requested_port,
            backlog=self._backlog,
        )
        self._sweeper = loop.call_later(self._tick, self._sweep)
        log.info("FastAGI server listening on %s:%d", self.host, self.port)

    async def serve_forever(self) -> None:
        """Start if needed, then return once `drain` or `close` has stopped the server."""
        if self._listener is None:
            await self.start()
        await self._stopped.wait()

    def close(self) -> None:
        """Stop at once: stop listening, cancel every handler, drop every connection."""
        self._stop_listening()
        for conn in list(self._connections):
            conn.cancel()
        self._stop_sweeping()
        self._stopped.set()

    # `timeout` is the grace before cancelling, not a deadline for the whole call.
    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        """Stop accepting, let the calls in progress finish for up to `timeout` seconds, then
        cancel those still running and wait for them to end."""
        self._stop_listening()
        if self._connections:
            log.info("draining %d calls in progress (up to %s s)", len(self._connections), timeout)
            if not await self._wait_all_done(timeout):
                log.warning("cancelling %d calls still in progress", len(self._connections))
                for conn in list(self._connections):
                    conn.cancel()
                if not await self._wait_all_done(self.CANCEL_GRACE):
                    log.error("%d calls ignored cancellation", len(self._connections))
        if self._listener is not None and not self._connections:
            # Python 3.12+ waits here for every connection to close: none is left by now.
            await self._listener.wait_closed()
        self._stop_sweeping()
        self._stopped.set()

    async def _wait_all_done(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._all_done.wait(), seconds)
        except TimeoutError:
            return not self._connections
        return True

    def _sweep(self) -> None:
        self._support.flush()
        now = monotonic()
        for conn in list(self._connections):  # a copy: a check may end the connection
            conn.check_deadline(now)
        if not self._stopped.is_set():
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self._tick, self._sweep)

    def _stop_sweeping(self) -> None:
        self._support.flush()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _stop_listening(self) -> None:
        self._draining = True
        if not self._connections:
            self._all_done.set()
        if self._listener is not None:
            self._listener.close()

    # --- state ---------------------------------------------------------------------------

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before `start`)."""
        if self._listener is None:
            return ()
        return tuple(self._listener.sockets)

    @property
    def port(self) -> int:
        """The port actually bound: the one asked for, or the one the OS picked for 0."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the FastAGI server is not listening")

    @property
    def in_progress(self) -> int:
        """Connections being served: environment being read or handler running."""
        return len(self._connections)

    @property
    def draining(self) -> bool:
        return self._draining

    def is_serving(self) -> bool:
        """True while the server accepts calls (started, not draining or closed)."""
        return self._listener is not None and not self._draining

    # --- what connections call -----------------------------------------------------------

    def _admit(self, conn: _Connection) -> bool:
        if self._draining or len(self._connections) >= self.max_sessions:
            return False
        self._connections.add(conn)
        metrics.CALLS_IN_PROGRESS.inc()
        return True

    def _finished(self, conn: _Connection, outcome: str) -> None:
        self._connections.discard(conn)
        metrics.CALLS_IN_PROGRESS.dec()
        self._count_outcome(outcome)
        if self._draining and not self._connections:
            self._all_done.set()
        if self._sweeper is None:
            self._support.flush()  # stopped: no sweep left to push this call's counts

    def _count_outcome(self, outcome: str) -> None:
        counter = self._outcome_counters.get(outcome)
        if counter is None:
            counter = self._outcome_counters[outcome] = metrics.AGI_SESSIONS.labels(outcome)
        counter.inc()

    async def _run(self, conn: _Connection, session: AgiSession, handler: Handler) -> None:
        """One call, from the routed environment to the server closing the socket; every log
        line of it carries the call id."""
        # bind_call's token form: the task runs in its own copy of the context, so the id
        # is set for exactly this call and there is nothing to reset when it ends.
        set_call_id(session.call_id)
        outcome = "cancelled"  # unless the handler gets further than a shutdown cancellation
        try:
            log.debug("call started: script=%s", session.request.script)
            await handler(session)
            outcome = _finished_outcome(session)
        except CallerHungUp as exc:
            log.info("call ended: %s", exc)  # how calls normally end: no traceback
            outcome = "hangup"
        except AgiReplyTimeout as exc:
            log.warning("call ended: %s", exc)
            outcome = "idle_timeout"
        except AgiProtocolError as exc:
            log.info("call ended: Asterisk sent bytes that are not AGI (%s)", exc)
            outcome = "protocol_error"
        except asyncio.CancelledError:
            log.info("call cancelled%s", ": the server is shutting down" if self._draining else "")
            raise
        except Exception:
            log.exception("AGI handler for script %r failed", session.request.script)
            outcome = "handler_error"
        finally:
            conn.close()
            conn.end(outcome)


def _finished_outcome(session: AgiSession) -> str:
    """How a call whose handler returned ended: the handler may have caught the session's
    failure itself, so count what really happened."""
    failure = session.failure
    if isinstance(failure, AgiReplyTimeout):
        return "idle_timeout"
    if isinstance(failure, AgiProtocolError):
        return "protocol_error"
    log.info("call completed")
    return "completed"


class _Connection(asyncio.Protocol):
    """The bytes of one FastAGI connection. Kept lean: this runs for every line of every call."""

    __slots__ = (
        "_accepted_at",
        "_buffer",
        "_done",
        "_env",
        "_in_usage",
        "_limit",
        "_loop",
        "_reader",
        "_replies",
        "_server",
        "_session",
        "_task",
        "_transport",
    )

    def __init__(self, server: FastAgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._limit = server.max_line_bytes
        self._replies = server._reply_cache
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._env: dict[str, str] = {}
        self._accepted_at = 0.0
        self._session: AgiSession | None = None
        self._reader = ReplyReader()
        self._in_usage = False  # the reader is inside a 520 block: no cached replies then
        self._task: asyncio.Task[None] | None = None
        self._done = False  # counted in the metrics and gone from the server's set

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self._transport = cast(asyncio.Transport, transport)
        server = self._server
        if not server._admit(self):
            self._done = True
            server._count_outcome("rejected")
            log.warning(
                "refusing a FastAGI connection: %s (%d calls in progress, max_sessions %d)",
                "shutting down" if server.draining else "too many calls",
                server.in_progress,
                server.max_sessions,
            )
            transport.close()
            return
        self._accepted_at = monotonic()  # for the server's sweep: see `check_deadline`

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        session = self._session
        if session is None:
            self._environment_data(data)
            return
        buffer = self._buffer + data if self._buffer else data
        find, limit, start = buffer.find, self._limit, 0
        replies, reader = self._replies, self._reader
        try:
            while (end := find(b"\n", start)) >= 0:
                if end - start > limit:
                    raise AgiProtocolError(f"line longer than {limit} bytes")
                line = buffer[start:end]
                start = end + 1
                # Replies repeat ("200 result=0"): parse each distinct line once per server.
                item = None if self._in_usage else replies.get(line)
                if item is None:
                    item = reader.feed(line.decode())
                    self._in_usage = reader.in_usage_block
                    if item is None:
                        continue  # inside a 520 usage block
                    if len(replies) < _CACHE_ENTRIES and _cacheable(item):
                        replies[line] = item
                if isinstance(item, AgiReply):
                    session._deliver(item)
                else:
                    with bind_call(session.call_id):
                        session._hangup_notice()
        except (AgiProtocolError, UnicodeDecodeError) as exc:
            self._protocol_error(exc)
            return
        if len(buffer) - start > limit:
            self._protocol_error(AgiProtocolError(f"line longer than {limit} bytes"))
            return
        self._buffer = buffer[start:] if start else buffer

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session._connection_lost()  # the handler's task counts the outcome
        elif not self._done:
            with bind_call(self._env.get("agi_uniqueid") or _NO_CALL_ID):
                log.warning("FastAGI connection closed in the middle of the AGI environment")
            self.end("protocol_error")

    # --- the environment -----------------------------------------------------------------

    def _environment_data(self, data: bytes) -> None:
        """Parse the complete environment lines received so far; start the call at the blank
        line. The whole environment usually comes in one read, so it is split in one go."""
        buffer = self._buffer + data if self._buffer else data
        if buffer[:1] == b"\n":
            block, rest, complete = b"", buffer[1:], True
        elif (blank := buffer.find(b"\n\n")) >= 0:
            block, rest, complete = buffer[:blank], buffer[blank + 2 :], True
        else:
            last = buffer.rfind(b"\n")
            block, rest, complete = buffer[: max(last, 0)], buffer[last + 1 :], False
        try:
            if not complete and len(rest) > self._limit:
                raise AgiProtocolError(f"line longer than {self._limit} bytes")
            if block:
                self._parse_env(block.split(b"\n"))
        except (AgiProtocolError, UnicodeDecodeError) as exc:
            self._protocol_error(exc)
            return
        if not complete:
            self._buffer = rest
            return
        self._buffer = b""
        if self._start_call() and rest:
            self.data_received(rest)  # what came right after the environment (HANGUP, even)

    def _parse_env(self, lines: list[bytes]) -> None:
        if max(map(len, lines)) > self._limit:
            raise AgiProtocolError(f"line longer than {self._limit} bytes")
        env, cache = self._env, self._server._env_cache
        for line in lines:
            # Most lines are the same on every call (agi_language: ru, agi_type: Local, ...).
            item = cache.get(line)
            if item is None:
                item = parse_env_line(line.decode())
                if item[0] in _SHARED_ENV_KEYS and len(cache) < _CACHE_ENTRIES:
                    cache[line] = item
            env[item[0]] = item[1]
        if len(env) > MAX_ENV_LINES:
            raise AgiProtocolError(f"more than {MAX_ENV_LINES} environment variables")

    def _start_call(self) -> bool:
        """Route the complete environment to a handler; False when the connection is closed."""
        server, env, transport = self._server, self._env, self._transport
        assert transport is not None
        request = AgiRequest.from_env(env)
        handler = server.router.resolve(request.script)
        if handler is None:
            with bind_call(env.get("agi_uniqueid") or _NO_CALL_ID):
                log.warning(
                    "no handler for AGI script %r: closing, the dialplan goes on", request.script
                )
            self.end("rejected")
            transport.close()
            return False
        session = AgiSession(
            env,
            write=transport.write,
            on_failure=transport.abort,
            reply_timeout=server.reply_timeout,
            support=server._support,
            request=request,
            loop=self._loop,
        )
        self._session = session
        self._task = self._loop.create_task(server._run(self, session, handler))
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
            log.warning("closing a FastAGI connection that is not speaking AGI: %s", exc)
        if session is not None:
            error = exc if isinstance(exc, AgiProtocolError) else AgiProtocolError(str(exc))
            session._fail(error, notify=False)  # its task counts the outcome
        else:
            self.end("protocol_error")
        assert self._transport is not None
        self._transport.abort()

    def close(self) -> None:
        """Close after what was written is flushed (how every call ends)."""
        if self._transport is not None:
            self._transport.close()

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
            self._server._finished(self, outcome)


class _BufferedConnection(_Connection, asyncio.BufferedProtocol):
    """The same, reading into the server's one read buffer: on asyncio's own loop a plain
    Protocol gets a fresh 256 KiB bytes object per read, which glibc often serves with
    mmap/mremap/munmap, three system calls per AGI reply. (uvloop reads into a buffer of its
    own and hands over just the bytes read, so there the plain protocol is the faster one.)"""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server._read_buffer  # filled and consumed before any other read

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._server._read_buffer[:nbytes].tobytes())


def _cacheable(item: AgiReply | HangupNotice) -> bool:
    """Replies worth remembering: frequent, and carrying nothing a caller said or typed
    (GET VARIABLE values and GET DATA digits may be personal data)."""
    if isinstance(item, HangupNotice):
        return True
    return item.code != 520 and item.data is None and len(item.result) <= 2


def install_signal_handlers(
    server: FastAgiServer,
    *,
    drain_timeout: float,
    signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """SIGTERM/SIGINT drain the server (calls in progress get `drain_timeout` seconds); a
    second signal closes it at once. Call from inside the running loop (Unix only)."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def on_signal(name: str) -> None:
        if server.draining:
            log.warning("%s again: closing now", name)
            server.close()
            return
        log.info("%s: draining calls for up to %s s", name, drain_timeout)
        task = loop.create_task(server.drain(drain_timeout))
        pending.add(task)
        task.add_done_callback(pending.discard)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig.name)
