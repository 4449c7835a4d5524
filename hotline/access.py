"""Who may call each HTTP route: every handler declares a policy, one middleware enforces it.

A handler states its policy where it is written::

    @allow(PUBLIC)                                   # /healthz, the login pages, static files
    @allow(people(Role.OPERATOR, Role.SUPERVISOR))   # a staff member's session in those roles
    @allow(services("callbacks:create"))             # a service key with that scope
    @allow(people(Role.SUPERVISOR) | services("callbacks:read"))

`access_middleware(lookup)` runs before every handler. A route without a policy is refused
(500 to the client, an error in the log): forgetting one must never open a route, and
`routes_without_policy(app)` lets a test list them. The `lookup` port turns a request into an
`Actor` (a session cookie, a bearer key); the core does not know where accounts live.

Answers: 401 when nobody could be established, 403 when the actor is known but not allowed,
both with a short Russian text and no detail. The actor is left on the request
(`actor_of(request)`) for the part's own finer checks (an operator acts only as themselves).

CSRF: an actor established from a session cookie carries the session's CSRF token; a request
that changes state (not GET, HEAD or OPTIONS) must echo it in the `X-CSRF-Token` header or a
`csrf_token` form field, else 403. Bearer keys are not sent by browsers on their own, so
requests made with them need no echo.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web

from hotline.auth import Actor, TokenLookup

log = logging.getLogger(__name__)

__all__ = [
    "ACTOR_KEY",
    "PUBLIC",
    "SAFE_METHODS",
    "ActorLookup",
    "BearerTokens",
    "Policy",
    "access_middleware",
    "actor_of",
    "allow",
    "people",
    "policy_of",
    "routes_without_policy",
    "services",
]

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
ACTOR_KEY: Final = web.RequestKey("hotline_actor", Actor)
_POLICY_ATTRIBUTE: Final = "__hotline_policy__"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"


@dataclass(frozen=True)
class Policy:
    """Who may call a route: anyone (`public`), people in `roles`, services with `scopes`."""

    public: bool = False
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()

    def __or__(self, other: Policy) -> Policy:
        return Policy(
            self.public or other.public, self.roles | other.roles, self.scopes | other.scopes
        )

    def admits(self, actor: Actor) -> bool:
        if actor.kind == "service":
            return bool(self.scopes & actor.scopes)
        return actor.role in self.roles

    def describe(self) -> str:
        if self.public:
            return "public"
        parts = [f"role {r}" for r in sorted(self.roles)]
        parts += [f"scope {s}" for s in sorted(self.scopes)]
        return ", ".join(parts) or "nobody"


PUBLIC: Final = Policy(public=True)


def people(*roles: str) -> Policy:
    """Staff members acting in one of `roles` (a session that passed the second factor)."""
    return Policy(roles=frozenset(roles))


def services(*scopes: str) -> Policy:
    """Systems holding a service key with one of `scopes` (say ``callbacks:create``)."""
    return Policy(scopes=frozenset(scopes))


Handler = TypeVar("Handler", bound=Callable[..., Any])


def allow(policy: Policy) -> Callable[[Handler], Handler]:
    """Declare who may call the decorated handler (see the module's text)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, _POLICY_ATTRIBUTE, policy)
        return handler

    return mark


def policy_of(handler: object) -> Policy | None:
    return getattr(handler, _POLICY_ATTRIBUTE, None)


class ActorLookup(Protocol):
    """Who sent a request (None: nobody could be established)."""

    def __call__(self, request: web.Request) -> Awaitable[Actor | None]: ...


class BearerTokens:
    """An `ActorLookup` over bearer tokens (``Authorization: Bearer <token>``): the legacy
    recordings token file (`hotline.auth.TokenFile`) or any `TokenLookup`. Browsers never send
    such a header on their own, so actors found here carry no CSRF token."""

    def __init__(self, tokens: TokenLookup) -> None:
        self.tokens = tokens

    async def __call__(self, request: web.Request) -> Actor | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return self.tokens.lookup(token)


def actor_of(request: web.Request) -> Actor:
    """The actor the middleware established (public routes have none: do not call it there)."""
    actor = request.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        raise RuntimeError("no actor on a request: is the route public or the middleware missing?")
    return actor


def routes_without_policy(app: web.Application) -> list[str]:
    """``METHOD /path`` of every route of `app` whose handler declares no policy."""
    missing = []
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD beside GET with the same handler
            continue
        if policy_of(route.handler) is None:
            info = route.resource.canonical if route.resource is not None else "?"
            missing.append(f"{route.method} {info}")
    return sorted(missing)


def _refusal(status: int, text: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": text}, ensure_ascii=False),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def access_middleware(
    lookup: ActorLookup, *, on_refused: Callable[[web.Request, int], None] | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware enforcing each route's policy; `on_refused(request, status)` is told of
    every 401/403 (metrics, bounded audit)."""

    def refuse(request: web.Request, status: int, text: str) -> web.Response:
        if on_refused is not None:
            on_refused(request, status)
        return _refusal(status, text)

    @web.middleware
    async def check_access(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        policy = _route_policy(request)
        if policy is None:
            log.error(
                "route %s %s declares no access policy: refused",
                request.method,
                request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else request.path,
            )
            return _refusal(500, "Маршрут без политики доступа.")
        if policy.public:
            return await handler(request)
        actor = await lookup(request)
        if actor is None:
            return refuse(request, 401, "Требуется вход в систему.")
        if not policy.admits(actor):
            return refuse(request, 403, "Недостаточно прав.")
        if not await _csrf_echoed(request, actor):
            return refuse(request, 403, "Запрос отклонён: нет проверочного кода формы.")
        request[ACTOR_KEY] = actor
        return await handler(request)

    return check_access


def _route_policy(request: web.Request) -> Policy | None:
    match = request.match_info
    if match.http_exception is not None:  # 404/405: let aiohttp answer as usual
        return PUBLIC
    return policy_of(match.handler)


async def _csrf_echoed(request: web.Request, actor: Actor) -> bool:
    if actor.csrf_token is None or request.method in SAFE_METHODS:
        return True
    echoed = request.headers.get(CSRF_HEADER)
    if echoed is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        echoed = value if isinstance(value, str) else None
    return echoed is not None and hmac.compare_digest(echoed, actor.csrf_token)
