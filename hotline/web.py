"""The operations endpoint: `/healthz` for probes and load balancers, `/metrics` for Prometheus.

It binds to localhost by default (see `HttpSettings`) and serves no call data: health values
are component states and metrics carry no caller numbers or call ids.

Who may call them (`hotline.access`): `/healthz` is public (a load balancer has no key).
`/metrics` needs a service key with scope ``metrics:read``, unless the server is bound to a
loopback or private address (`is_private_address`), where it is public: only hosts inside the
network can reach it then, and Prometheus scrapes without a key as it always has. A server
bound to a public address or to every interface (``0.0.0.0``) keeps the key requirement.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Iterable, Mapping
from typing import Final, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

import hotline.metrics  # noqa: F401  (registers the hotline_* metrics, so /metrics always has them)
from hotline.access import PUBLIC, allow, services

log = logging.getLogger(__name__)

# Component states that count as healthy.  "disabled" is healthy: a component switched off in
# the configuration (AMI, say) must not take the node out of service.  Anything else -- "down",
# "error: ...", "starting" -- answers 503.
# "stale": a hand-edited file was refused and its last good version serves (routing.admin);
# calls flow, so the node stays in service, and the log names the file:line to fix.
HEALTHY_STATES: Final = frozenset({"ok", "up", "listening", "disabled", "stale"})
DEFAULT_HEALTH_TIMEOUT: Final = 5.0


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
    """The aiohttp application; `registry` and `health_timeout` exist for tests.

    `middlewares` run before every route (the controller's `hotline.access.access_middleware`);
    `metrics_public` makes `/metrics` public (see the module's text: a private address).
    """
    app = web.Application(middlewares=tuple(middlewares))
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


async def start_web(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port; the caller stops it with `await runner.cleanup()`.

    Port 0 picks a free port; `runner.addresses` tells which.  Access logging is off: a scrape
    every few seconds would drown the call events.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()  # e.g. port in use: don't leave the runner half set up
        raise
    return runner
