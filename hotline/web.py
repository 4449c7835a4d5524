"""The operations endpoint: `/healthz` for probes and load balancers, `/metrics` for Prometheus.

It binds to localhost by default (see `HttpSettings`) and serves no call data: health values
are component states and metrics carry no caller numbers or call ids.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Mapping
from typing import Final, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

import hotline.metrics  # noqa: F401  (registers the hotline_* metrics, so /metrics always has them)

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


def is_healthy(components: Mapping[str, str]) -> bool:
    """True when every component is in one of HEALTHY_STATES (vacuously true when empty)."""
    return all(state in HEALTHY_STATES for state in components.values())


def build_app(
    health: HealthCheck,
    *,
    registry: CollectorRegistry = REGISTRY,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
) -> web.Application:
    """The aiohttp application; `registry` and `health_timeout` exist for tests. Every
    response carries the secure headers (`SECURE_HEADERS`, HSTS among them)."""
    app = web.Application()
    add_secure_headers(app)
    app[_HEALTH_KEY] = health
    app[_TIMEOUT_KEY] = health_timeout
    app[_REGISTRY_KEY] = registry
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app


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


async def _metrics(request: web.Request) -> web.Response:
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


async def start_web(
    app: web.Application, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve `app` on host:port, HTTPS only when `ssl_context` is given (`hotline.tls`); the
    caller stops it with `await runner.cleanup()`.

    Port 0 picks a free port; `runner.addresses` tells which.  Access logging is off: a scrape
    every few seconds would drown the call events.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()  # e.g. port in use: don't leave the runner half set up
        raise
    return runner
