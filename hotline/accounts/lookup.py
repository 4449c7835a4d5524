"""`AccountsLookup`: who sent a request, for `hotline.access.access_middleware`.

In order:
1. ``Authorization: Bearer hlk_...``: a service key (`ServiceKeys.check`) -> a service actor;
2. ``Authorization: Bearer <other>``: the legacy recordings token file (`hotline.auth`), so
   deployments that hand such tokens out keep working while they move to accounts and service
   keys; the first use logs a deprecation warning (once per process);
3. the session cookie of a session that passed the second factor -> the person, in their role,
   with the session's CSRF token (state changes must echo it).
A session still in the middle of its login counts for nothing here.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from hotline.accounts.keys import KEY_PREFIX, ServiceKeys
from hotline.accounts.records import Stage
from hotline.accounts.sessions import SessionStore
from hotline.auth import Actor, TokenLookup

__all__ = ["AccountsLookup", "client_address", "session_cookie_name"]

log = logging.getLogger(__name__)

_LEGACY_WARNING: Final = (
    "a request used a token of the legacy token file (recorder_access.tokens_file): give the "
    "person an account (`hotline users add`) or the system a service key "
    "(`hotline apikeys add`); the token file will be removed"
)


def session_cookie_name(secure: bool) -> str:
    """``__Host-`` tells browsers the cookie is Secure, host-only and Path=/ (it cannot be set
    by a sibling domain); a plain-HTTP loopback server cannot use that prefix."""
    return "__Host-hotline-session" if secure else "hotline-session"


def client_address(request: web.Request, trusted_proxies: frozenset[str] = frozenset()) -> str:
    """The client's address: the peer's, or from a trusted reverse proxy the last address of
    ``X-Forwarded-For`` (the one the proxy itself saw; earlier ones are the client's claims)."""
    peer = request.remote or "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
    return forwarded[:64] or peer


class AccountsLookup:
    """Implements `hotline.access.ActorLookup` over sessions, service keys and legacy tokens."""

    def __init__(
        self,
        sessions: SessionStore,
        keys: ServiceKeys,
        *,
        legacy: TokenLookup | None = None,
        cookie_name: str = session_cookie_name(True),
        trusted_proxies: frozenset[str] = frozenset(),
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._legacy = legacy
        self.cookie_name = cookie_name
        self.trusted_proxies = trusted_proxies
        self._warned = False

    async def __call__(self, request: web.Request) -> Actor | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            return await self._bearer(token, self.address_of(request))
        cookie = request.cookies.get(self.cookie_name)
        if not cookie:
            return None
        view = await self._sessions.get(cookie)
        if view is None or view.stage is not Stage.FULL:
            return None
        return Actor(view.account.id, view.account.role, csrf_token=view.csrf_token)

    def address_of(self, request: web.Request) -> str:
        return client_address(request, self.trusted_proxies)

    async def _bearer(self, token: str, address: str) -> Actor | None:
        if token.startswith(KEY_PREFIX):
            return await self._keys.check(token, address)
        if self._legacy is None:
            return None
        actor = self._legacy.lookup(token)
        if actor is not None and not self._warned:
            self._warned = True
            log.warning(_LEGACY_WARNING, extra={"user": actor.user_id})
        return actor
