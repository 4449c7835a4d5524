"""The FastAGI server: Asterisk opens one TCP connection per call, we run one handler per call.

A connection goes through three stages:

1. the ``agi_*`` environment, which must be complete within `env_timeout`;
2. routing: the script of ``agi://host/script?query`` (query string split off) picks a handler
   registered on a `Router` (`hotline.agi.router`); an unknown script closes the connection at
   once, so Asterisk's dialplan goes on with ``AGISTATUS=FAILURE`` (the fallback the dialplan
   already has for a controller outage);
3. the handler, ``async def handler(session: AgiSession) -> None``, after which the server closes
   the socket itself: Asterisk never closes it, not even after the caller hung up.

The bytes of each connection are `hotline.agi.connection`'s job. This module owns what spans
connections: admission (`max_sessions`), the parse caches and read buffer they share, one run
per call with its outcome counted, and the deadlines, enforced by one periodic sweep per server
rather than a timer per call, so they fire up to 1/8 of the timeout late.

Shutdown: `drain` stops accepting and hands the calls in progress back to the dialplan at once
(their handlers are cancelled, the socket closed: the session ends without the handler saying
it finished, and the dialplan retries the AGI, on this controller restarted or another). Only
calls whose caller is in Asterisk's Dial or Queue (with an operator, or waiting for one) are
left to finish, up to a timeout: closing the socket would not end the conversation (res_agi
reads nothing while EXEC runs), but the handler would miss its end; `install_signal_handlers`
wires SIGTERM/SIGINT to it for the CLI:

    server = FastAgiServer(router, host=settings.host, port=settings.port, ...)
    await server.start()
    install_signal_handlers(server, drain_timeout=settings.drain_timeout)
    await server.serve_forever()  # returns once drained
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
import weakref
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from time import monotonic
from typing import Final

from hotline import metrics
from hotline.agi.connection import AgiConnection, BufferedAgiConnection
from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    EnvReader,
    HangupNotice,
)
from hotline.agi.router import Handler, Router
from hotline.agi.session import AgiReplyTimeout, AgiSession, CallerHungUp, SessionSupport
from hotline.logs import set_call_id
from hotline.security import SECURITY_EVENTS, SecurityCategory, security_event
from hotline.settings import parse_networks

log = logging.getLogger(__name__)

# How often, per the shorter timeout, the sweep checks deadlines: a deadline is enforced at
# most 1/SWEEPS_PER_TIMEOUT of the timeout late.
SWEEPS_PER_TIMEOUT: Final = 8
# Every server's connections make up ``hotline_calls_in_progress``, counted when scraped rather
# than by an inc() and a dec() per call.
_SERVERS: weakref.WeakSet[FastAgiServer] = weakref.WeakSet()
metrics.CALLS_IN_PROGRESS.set_function(
    lambda: float(sum(server.in_progress for server in list(_SERVERS)))
)
# Bound of the per-server cache of peer addresses allowed or not.
_PEER_VERDICTS: Final = 1024
# Bound of the per-server cache of routed requests: past it, the cache starts afresh.
_REQUESTS: Final = 1024
# The server's read buffer: lines are short; a longer read just takes two turns.
READ_BUFFER_BYTES: Final = 65536


class FastAgiServer:
    """Accepts Asterisk's FastAGI connections and runs one handler per call.

    Limits: `max_line_bytes` per line (longer closes the connection), `env_timeout` seconds to
    receive the environment, `reply_timeout` seconds for Asterisk to answer one command (long
    enough for RECORD FILE), `max_sessions` connections at once (more are closed at once, and
    Asterisk falls back in the dialplan). Port 0 picks a free port (see `port`).

    Peers: only addresses in `allowed_peers` (comma-separated addresses or networks; default
    loopback) may open a session, and one address holds at most `max_sessions_per_peer` of
    them (default `max_sessions`), so a flood from one client cannot take the slots of the
    real PBX. Others are closed at once and counted as ``PEER_REFUSED`` security events.
    """

    CANCEL_GRACE: Final = 5.0
    """Seconds `drain` gives cancelled handlers to unwind before giving up on them."""
    REFUSED_RECENTLY: Final = 10.0
    """Seconds `health` keeps saying ``refusing`` after a call was refused at the cap."""

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
        allowed_peers: str = "127.0.0.0/8, ::1",
        max_sessions_per_peer: int | None = None,
    ) -> None:
        per_peer = max_sessions if max_sessions_per_peer is None else max_sessions_per_peer
        for name, value in [
            ("max_line_bytes", max_line_bytes),
            ("env_timeout", env_timeout),
            ("reply_timeout", reply_timeout),
            ("max_sessions", max_sessions),
            ("backlog", backlog),
            ("max_sessions_per_peer", per_peer),
        ]:
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0, got {value}")
        self.router = router
        self.host = host
        self.max_line_bytes = max_line_bytes
        self.env_timeout = env_timeout
        self.reply_timeout = reply_timeout
        self.max_sessions = max_sessions
        self.max_sessions_per_peer = per_peer
        self.allowed_peers = parse_networks(allowed_peers)
        # Whether each peer address seen is allowed, for `allowed_peers` as it was then: the
        # same few PBX addresses connect all day, and parsing one costs more than the rest of
        # the admission. Bounded: past it, addresses are checked afresh each time.
        self._peer_verdicts: dict[str, bool] = {}
        self._verdicts_for = self.allowed_peers
        self._per_peer: dict[str, int] = {}  # sessions in progress by peer address
        self._refused_full_at = -math.inf  # when a call was last refused at max_sessions
        self._peer_refusal_logged: dict[str, float] = {}  # reason -> when last logged
        self._requested_port = port
        self._backlog = backlog
        self._listener: asyncio.Server | None = None
        # Kept, not looked up per call: Python 3.11's get_running_loop() costs a getpid().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[AgiConnection] = set()
        _SERVERS.add(self)  # counted in ``hotline_calls_in_progress`` while it exists
        self.support = SessionSupport(immediate=False)  # flushed by `_sweep`
        # Requests by their ``agi_network_script``, immutable and so shared by calls: the
        # dialplan sends the same few scripts all day, and parsing one costs as much as
        # the rest of the call's routing.
        self._requests: dict[str, AgiRequest] = {}
        # Reads the environments, learning the layouts of the dialplan's (`EnvReader`).
        self.env_reader = EnvReader()
        # Parsed reply lines by their bytes; values are immutable, so connections share them.
        self.reply_cache: dict[bytes, AgiReply | HangupNotice] = {}
        # Every connection reads into this, one read at a time (see `BufferedAgiConnection`).
        self.read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))
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
        connection = BufferedAgiConnection if buffered else AgiConnection
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
        """Stop accepting, hand back at once every call not in Asterisk's Dial or Queue (cancel
        its handler), let those finish for up to `timeout` seconds, then cancel those still
        running and wait for them to end."""
        self._stop_listening()
        if self._connections:
            bridged = [conn for conn in self._connections if conn.bridging]
            log.info(
                "handing %d calls back to the dialplan, draining %d with an operator (up to %s s)",
                len(self._connections) - len(bridged),
                len(bridged),
                timeout,
            )
            for conn in list(self._connections):
                if not conn.bridging:
                    conn.cancel()
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
        self.support.flush()
        now = monotonic()
        for conn in list(self._connections):  # a copy: a check may end the connection
            conn.check_deadline(now)
        if not self._stopped.is_set():
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self._tick, self._sweep)

    def _stop_sweeping(self) -> None:
        self.support.flush()
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
        return self._listener is not None and not self._draining and self._listener.is_serving()

    def health(self) -> str:
        """``listening`` when the next call from Asterisk would be taken; otherwise why not:
        ``down: ...`` when not listening, ``refusing: ...`` at `max_sessions` or when a call
        was refused for it within the last `REFUSED_RECENTLY` seconds (a probe between two
        refusals must not read healthy)."""
        if not self.is_serving():
            return "down: not listening" if not self._draining else "down: shutting down"
        if len(self._connections) >= self.max_sessions:
            return f"refusing: at max_sessions ({self.max_sessions} calls)"
        if monotonic() - self._refused_full_at < self.REFUSED_RECENTLY:
            return f"refusing: calls refused at max_sessions ({self.max_sessions})"
        return "listening"

    # --- what connections call (see `hotline.agi.connection`) ----------------------------

    def admit(self, conn: AgiConnection, peer: str) -> str | None:
        """Count `conn`, from `peer` (an IP address), in; or say why it is refused."""
        # The verdict remembered for `peer`, unless `allowed_peers` changed since: inlined,
        # as nearly every call comes from a PBX already seen.
        verdict = self._peer_verdicts.get(peer)
        if verdict is None or self._verdicts_for is not self.allowed_peers:
            verdict = self._peer_allowed(peer)
        if not verdict:
            return "peer not allowed"
        if self._draining:
            return "shutting down"
        if len(self._connections) >= self.max_sessions:
            self._refused_full_at = monotonic()
            return "too many calls"
        from_peer = self._per_peer.get(peer, 0)
        if from_peer >= self.max_sessions_per_peer:
            return "too many calls from this peer"
        self._connections.add(conn)
        self._per_peer[peer] = from_peer + 1
        return None

    def request_for(self, env: Mapping[str, str]) -> AgiRequest:
        """`AgiRequest.from_env`, remembered by the script string for calls with no
        ``agi_arg_N`` arguments (those vary per call)."""
        script = env.get("agi_network_script")
        if script is None or "agi_arg_1" in env:
            return AgiRequest.from_env(env)
        requests = self._requests
        request = requests.get(script)
        if request is None:
            if len(requests) >= _REQUESTS:
                requests.clear()  # per-call scripts (``acd-answered?call=...``) filled it
            request = requests[script] = AgiRequest.from_env(env)
        return request

    def _peer_allowed(self, peer: str) -> bool:
        verdicts = self._peer_verdicts
        if self._verdicts_for is not self.allowed_peers:  # reconfigured: forget every verdict
            verdicts.clear()
            self._verdicts_for = self.allowed_peers
        verdict = verdicts.get(peer)
        if verdict is None:
            verdict = _allowed(peer, self.allowed_peers)
            if len(verdicts) < _PEER_VERDICTS:
                verdicts[peer] = verdict
        return verdict

    def peer_refused(self, peer: str, why: str) -> None:
        """Count a connection refused for its peer as a ``PEER_REFUSED`` security event; log
        it once per `REFUSED_RECENTLY` seconds and reason (a flood from a stranger must not
        become a flood of log lines)."""
        now = monotonic()
        if now - self._peer_refusal_logged.get(why, -math.inf) < self.REFUSED_RECENTLY:
            SECURITY_EVENTS.labels(category=SecurityCategory.PEER_REFUSED.value).inc()
            return
        self._peer_refusal_logged[why] = now
        security_event(
            SecurityCategory.PEER_REFUSED,
            f"refusing FastAGI connections: {why} (further refusals counted, logged every "
            f"{self.REFUSED_RECENTLY:g} s)",
            peer=peer,
            service="fastagi",
        )

    def finished(self, conn: AgiConnection, outcome: str) -> None:
        if conn in self._connections:
            left = self._per_peer.pop(conn.peer, 1) - 1
            if left:
                self._per_peer[conn.peer] = left
        self._connections.discard(conn)
        self.support.session_ended(outcome)  # what `count_outcome` does, one call less
        if self._draining and not self._connections:
            self._all_done.set()
        if self._sweeper is None:
            self.support.flush()  # stopped: no sweep left to push this call's counts

    def count_outcome(self, outcome: str) -> None:
        """Count one session's end in ``hotline_agi_sessions_total`` (on the next sweep)."""
        self.support.session_ended(outcome)

    async def run_call(self, conn: AgiConnection, session: AgiSession, handler: Handler) -> None:
        """One call, from the routed environment to the server closing the socket; every log
        line of it carries the call id."""
        # bind_call's token form: the task runs in its own copy of the context, so the id
        # is set for exactly this call and there is nothing to reset when it ends.
        set_call_id(session.call_id)
        outcome = "cancelled"  # unless the handler gets further than a shutdown cancellation
        try:
            if log.isEnabledFor(logging.DEBUG):  # one call, not two, when it is off
                log.debug("call started: script=%s", session.request.script)
            await handler(session)
            if session._failure is None:  # how nearly every call ends; else see the function
                log.info("call completed")
                outcome = "completed"
            else:
                outcome = _finished_outcome(session)
        except CallerHungUp as exc:
            log.info("call ended: %s", exc)  # how calls normally end: no traceback
            outcome = "hangup"
        except AgiReplyTimeout as exc:
            log.warning("call ended: %s", exc)
            outcome = "idle_timeout"
        except AgiProtocolError as exc:
            if session.failure is None:  # a reply that parsed but holds no usable value
                security_event(
                    SecurityCategory.BAD_INPUT,
                    f"call ended: Asterisk sent a reply that is not AGI ({exc})",
                    level=logging.INFO,
                    peer=conn.peer,
                )
            else:  # the connection already reported the bytes it could not parse
                log.info("call ended: Asterisk sent bytes that are not AGI (%s)", exc)
            outcome = "protocol_error"
        except asyncio.CancelledError:
            why = ": the server is shutting down, the call goes back to the dialplan"
            log.info("call cancelled%s", why if self._draining else "")
            raise
        except Exception:
            log.exception("AGI handler for script %r failed", session.request.script)
            outcome = "handler_error"
        finally:
            conn.finish(outcome)


def _allowed(peer: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        address = ip_address(peer)
    except ValueError:  # no address (a Unix socket, a closed transport): not a known PBX
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener sees IPv4 PBXs as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def _finished_outcome(session: AgiSession) -> str:
    """How a call whose handler returned ended: the handler may have caught the session's
    failure itself, so count what really happened."""
    failure = session._failure  # not the property: one call less for every call
    if isinstance(failure, AgiReplyTimeout):
        return "idle_timeout"
    if isinstance(failure, AgiProtocolError):
        return "protocol_error"
    log.info("call completed")
    return "completed"


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
