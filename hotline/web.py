"""The operations endpoint: `/healthz` for probes and load balancers, `/metrics` for Prometheus.

It binds to localhost by default (see `HttpSettings`) and serves no call data: health values
are component states and metrics carry no caller numbers or call ids.

Who may call them (`hotline.access`): `/healthz` is public (a load balancer has no key).
`/metrics` needs a service key with scope ``metrics:read``, unless the server is bound to a
loopback or private address (`is_private_address`), where it is public: only hosts inside the
network can reach it then, and Prometheus scrapes without a key as it always has. A server
bound to a public address or to every interface (``0.0.0.0``) keeps the key requirement.

Slow and greedy clients (issue 11: ~20,000 half-sent requests starved FastAGI and /healthz).
What aiohttp 3.14 offers, and what `start_web` uses:

* no header or body read timeout as such; but its keep-alive timer (`keepalive_timeout`) starts
  when a connection opens, is not extended by bytes arriving, and closes the connection if no
  complete request head has arrived by then: set to `ConnectionLimits.header_timeout`, it is
  the header deadline (and the idle keep-alive time);
* header sizes are bounded by default (`max_line_size`, `max_field_size` 8190 bytes,
  `max_headers` 128); bodies read with `request.read()/post()` by `client_max_size` (1 MiB);
* a body that trickles in is the handler's to bound: JSON bodies go through
  `hotline.jsonbody.read_json_object` (size, depth, and a deadline); an unread body is
  drained for at most aiohttp's `lingering_time` (10 s) after the response;
* no connection cap at all: `_GatedSite` adds one in all and one per peer address, with the
  public `BaseSite` extension point and a protocol that hands admitted connections to
  aiohttp's own handler unchanged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from time import monotonic
from typing import Final, Protocol, cast

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

import hotline.metrics  # noqa: F401  (registers the hotline_* metrics, so /metrics always has them)
from hotline.access import PUBLIC, allow, services
from hotline.push import end_streams_on_shutdown
from hotline.security import SECURITY_EVENTS, SecurityCategory, security_event

log = logging.getLogger(__name__)

# Component states that count as healthy.  "disabled" is healthy: a component switched off in
# the configuration (AMI, say) must not take the node out of service.  Anything else -- "down",
# "error: ...", "starting" -- answers 503.
# "stale": a hand-edited file was refused and its last good version serves (routing.admin);
# calls flow, so the node stays in service, and the log names the file:line to fix.
HEALTHY_STATES: Final = frozenset({"ok", "up", "listening", "disabled", "stale"})
DEFAULT_HEALTH_TIMEOUT: Final = 5.0

# One year; no includeSubDomains: the hotline's host name may share a parent domain with
# services the project does not run, and HSTS there is theirs to decide.
HSTS_MAX_AGE: Final = 31536000

SECURE_HEADERS: Final = (
    ("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE}"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)


class HealthCheck(Protocol):
    """Reports each component's state.

    For example `{"agi": "listening", "ami": "up", "database": "ok"}`; a plain
    `async def health() -> dict[str, str]` satisfies it.
    """

    def __call__(self) -> Awaitable[Mapping[str, str]]: ...


_HEALTH_KEY: Final[web.AppKey[HealthCheck]] = web.AppKey("health")
_TIMEOUT_KEY: Final = web.AppKey("health_timeout", float)
_REGISTRY_KEY: Final = web.AppKey("registry", CollectorRegistry)
# The scope a service key needs to scrape /metrics when the server is not on a private address.
METRICS_SCOPE: Final = "metrics:read"


def is_healthy(components: Mapping[str, str]) -> bool:
    """True when every component is in one of HEALTHY_STATES (vacuously true when empty)."""
    return all(state in HEALTHY_STATES for state in components.values())


def is_private_address(host: str) -> bool:
    """True when a server bound to `host` is reachable only from this host or a private
    network: ``localhost``, a loopback or a private (RFC 1918, ULA) address. Every interface
    (``0.0.0.0``, ``::``, empty) and any other name are not (a name may resolve to anything)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return not address.is_unspecified and (address.is_loopback or address.is_private)


def build_app(
    health: HealthCheck,
    *,
    registry: CollectorRegistry = REGISTRY,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    middlewares: Iterable[Middleware] = (),
    metrics_public: bool = False,
) -> web.Application:
    """The aiohttp application; `registry` and `health_timeout` exist for tests. Every
    response carries the secure headers (`SECURE_HEADERS`, HSTS among them).

    `middlewares` run before every route (the controller's `hotline.access.access_middleware`);
    `metrics_public` makes `/metrics` public (see the module's text: a private address).
    """
    app = web.Application(middlewares=tuple(middlewares))
    add_secure_headers(app)
    end_streams_on_shutdown(app)  # live pages' streams must not hold up a stop
    app[_HEALTH_KEY] = health
    app[_TIMEOUT_KEY] = health_timeout
    app[_REGISTRY_KEY] = registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _public_metrics if metrics_public else _keyed_metrics)
    return app


@allow(PUBLIC)
async def _healthz(request: web.Request) -> web.Response:
    components = await _components(request.app)
    healthy = is_healthy(components)
    body = {"status": "ok" if healthy else "unhealthy", "components": components}
    return web.json_response(
        body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"}
    )


async def _components(app: web.Application) -> dict[str, str]:
    """Run the health check; a check that hangs or fails is itself an unhealthy answer."""
    try:
        async with asyncio.timeout(app[_TIMEOUT_KEY]):
            result = await app[_HEALTH_KEY]()
        return {str(name): str(state) for name, state in result.items()}
    except TimeoutError:
        log.warning("health check timed out")
        return {"healthcheck": "error: timed out"}
    except Exception as exc:  # a probe must get an answer, not a 500 with a traceback
        log.exception("health check failed")
        return {"healthcheck": f"error: {type(exc).__name__}"}


@allow(PUBLIC)
async def _public_metrics(request: web.Request) -> web.Response:
    return _exposition(request)


@allow(services(METRICS_SCOPE))
async def _keyed_metrics(request: web.Request) -> web.Response:
    return _exposition(request)


def _exposition(request: web.Request) -> web.Response:
    # aiohttp refuses a charset inside `content_type=`, so the header is set verbatim.
    body = generate_latest(request.app[_REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_secure_headers(app: web.Application) -> None:
    """Every response of `app`, errors included, gets `SECURE_HEADERS` (a handler that set
    its own value of one keeps it)."""
    app.on_response_prepare.append(_secure_headers)


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURE_HEADERS:
        response.headers.setdefault(name, value)


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take and how many connections it may hold (see the module's
    notes on slow clients). The defaults are `HttpSettings`'s."""

    header_timeout: float = 20.0
    max_connections: int = 2048
    max_connections_per_peer: int = 512


async def start_web(
    app: web.Application,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> web.AppRunner:
    """Serve `app` on host:port, HTTPS only when `ssl_context` is given (`hotline.tls`); the
    caller stops it with `await runner.cleanup()`.

    Port 0 picks a free port; `runner.addresses` tells which.  Access logging is off: a scrape
    every few seconds would drown the call events.
    """
    limits = limits if limits is not None else ConnectionLimits()
    # aiohttp's keep-alive timer runs from the moment a connection opens and bytes arriving do
    # not extend it: it is the deadline for a complete request head (and for an idle client).
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.header_timeout)
    await runner.setup()
    try:
        await _GatedSite(runner, host, port, limits, ssl_context).start()
    except BaseException:
        await runner.cleanup()  # e.g. port in use: don't leave the runner half set up
        raise
    return runner


class _GatedSite(web.BaseSite):
    """A TCP site whose connections pass `_Gate` first: over `max_connections` in all or
    `max_connections_per_peer` from one address, a connection gets a 503 and is closed
    before aiohttp sees a byte of it."""

    __slots__ = ("_counts", "_host", "_limits", "_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=1024)
        self._host, self._port, self._limits = host, port, limits
        self._counts = _ConnectionCounts(limits)

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        handlers = self._runner.server
        assert handlers is not None
        counts = self._counts
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Gate(counts, handlers),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )


class _ConnectionCounts:
    """Open connections, in all and by peer address, against the limits."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = 0
        self.by_peer: dict[str, int] = {}
        self._logged_at: dict[str, float] = {}  # refusal reason -> when last logged

    def refusal(self, peer: str) -> str | None:
        if self.total >= self.limits.max_connections:
            return "too many connections"
        if self.by_peer.get(peer, 0) >= self.limits.max_connections_per_peer:
            return "too many connections from this peer"
        return None

    def opened(self, peer: str) -> None:
        self.total += 1
        self.by_peer[peer] = self.by_peer.get(peer, 0) + 1

    def closed(self, peer: str) -> None:
        self.total -= 1
        left = self.by_peer.pop(peer, 1) - 1
        if left:
            self.by_peer[peer] = left

    def refused(self, peer: str, why: str) -> None:
        """Count every refusal; log one line per reason every `_LOG_EVERY` seconds (a flood of
        20,000 connections must not become 20,000 log lines)."""
        now = monotonic()
        if now - self._logged_at.get(why, -math.inf) < _LOG_EVERY:
            SECURITY_EVENTS.labels(category=SecurityCategory.PEER_REFUSED.value).inc()
            return
        self._logged_at[why] = now
        security_event(
            SecurityCategory.PEER_REFUSED,
            f"refusing HTTP connections: {why} (further refusals counted, logged every "
            f"{_LOG_EVERY:g} s)",
            peer=peer,
            service="http",
            open_connections=self.total,
        )


_LOG_EVERY: Final = 10.0
_BUSY_TEXT: Final = "Сервер перегружен, повторите позже.\n".encode()
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_TEXT)}\r\n\r\n".encode()
    + _BUSY_TEXT
)


class _Gate(asyncio.Protocol):
    """Admits a connection to aiohttp's handler, or refuses it, once its peer is known;
    then passes every event through unchanged."""

    __slots__ = ("_counts", "_inner", "_make", "_peer")

    def __init__(self, counts: _ConnectionCounts, make: Callable[[], asyncio.Protocol]) -> None:
        self._counts = counts
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._peer = "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        self._peer = str(peername[0]) if isinstance(peername, tuple) and peername else "unknown"
        why = self._counts.refusal(self._peer)
        if why is not None:
            self._counts.refused(self._peer, why)
            cast(asyncio.Transport, transport).write(_BUSY)
            transport.close()
            return
        self._counts.opened(self._peer)
        self._inner = self._make()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._counts.closed(self._peer)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
