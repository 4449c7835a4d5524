"""Staff accounts for tests: the real `hotline.accounts` over a migrated database, a clock the
test moves by hand, and argon2id at its cheapest parameters so a test's logins stay quick
(the parameters are the only difference from production; `test_password_rehash` checks that
hashes made with other ones are renewed)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import Morsel
from pathlib import Path

import pyotp
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from databases import migrated_engine

from hotline.access import access_middleware, actor_of, allow, people, services
from hotline.accounts.build import AccountsKit, build_accounts
from hotline.accounts.secrets import Passwords
from hotline.accounts.settings import AccountsSettings
from hotline.accounts.web import install_accounts
from hotline.audit import AuditLog
from hotline.auth import TOKEN_ROLES, Actor, TokenLookup
from hotline.clock import ManualClock

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ADMIN_CLI = Actor("cli:tester", "system", kind="system")
START = 1_800_000_000.0  # a whole TOTP step


@asynccontextmanager
async def staff_kit(
    url: str,
    tmp_path: Path,
    *,
    clock: ManualClock | None = None,
    settings: AccountsSettings | None = None,
    legacy: TokenLookup | None = None,
    http_host: str = "127.0.0.1",
    passwords: Passwords | None = None,
) -> AsyncIterator[AccountsKit]:
    """The accounts over the database at `url` (migrated here)."""
    settings = settings or AccountsSettings(
        totp_key_file=str(tmp_path / "keys" / "totp.key"), trusted_proxies="127.0.0.1"
    )
    async with migrated_engine(url) as engine:
        yield build_accounts(
            settings,
            engine,
            http_host=http_host,
            audit=AuditLog(engine),
            legacy=legacy,
            clock=clock or ManualClock(START),
            passwords=passwords or Passwords(CHEAP_HASHER),
        )


@asynccontextmanager
async def browser_kit(url: str, tmp_path: Path) -> AsyncIterator[tuple[AccountsKit, ManualClock]]:
    """The accounts over the database at `url` (migrated here) that a real browser logs in to
    over plain HTTP on the loopback (so its cookies need no TLS), with the clock they run on."""
    settings = AccountsSettings(
        totp_key_file=str(tmp_path / "keys" / "totp.key"), plain_http_loopback=True
    )
    clock = ManualClock(START)
    async with staff_kit(url, tmp_path, clock=clock, settings=settings) as kit:
        yield kit, clock


def totp_code(secret: str, clock: ManualClock) -> str:
    """The code an authenticator app shows at the clock's time."""
    return pyotp.TOTP(secret).at(clock())


# --- a browser's view of the pages, over aiohttp's test client -----------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@allow(people(*sorted(TOKEN_ROLES)) | services("contacts:read"))
async def whoami(request: web.Request) -> web.Response:
    """An API route as the parts will have: who the middleware says is calling."""
    actor = actor_of(request)
    body = {
        "user_id": actor.user_id,
        "role": actor.role,
        "kind": actor.kind,
        "scopes": sorted(actor.scopes),
    }
    return web.json_response(body)


@allow(services("callbacks:create"))
async def create_callback(request: web.Request) -> web.Response:
    return web.json_response({"by": actor_of(request).user_id})


def accounts_app(kit: AccountsKit) -> web.Application:
    """The pages and two API routes behind the access middleware, as the controller has them."""
    app = web.Application(middlewares=[access_middleware(kit.lookup)])
    install_accounts(app, kit)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_post("/api/whoami", whoami)
    app.router.add_post("/api/callbacks", create_callback)
    return app


@dataclass
class Browser:
    """One browser: keeps the session cookie as the server sets it (manually, so a test can
    plant or steal one) and comes from `address` (X-Forwarded-For, the test's proxy)."""

    client: TestClient[web.Request, web.Application]
    cookie_name: str
    address: str = "10.0.0.1"
    cookie: str | None = None
    last_set_cookie: Morsel[str] | None = None

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"X-Forwarded-For": self.address}
        if self.cookie:
            headers["Cookie"] = f"{self.cookie_name}={self.cookie}"
        return headers | dict(extra or {})

    def _absorb(self, response: ClientResponse) -> None:
        morsel = response.cookies.get(self.cookie_name)
        if morsel is not None:
            self.last_set_cookie = morsel
            self.cookie = morsel.value or None

    async def get(self, path: str) -> tuple[int, str, ClientResponse]:
        async with self.client.get(path, headers=self._headers(), allow_redirects=False) as r:
            self._absorb(r)
            return r.status, await r.text(), r

    async def post(
        self, path: str, data: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> tuple[int, str, ClientResponse]:
        async with self.client.post(
            path, data=dict(data), headers=self._headers(headers), allow_redirects=False
        ) as r:
            self._absorb(r)
            return r.status, await r.text(), r

    async def form_post(self, page: str, path: str, data: Mapping[str, str]) -> tuple[int, str]:
        """Open `page`, then submit its form to `path` with the CSRF token it carried."""
        status, html, _ = await self.get(page)
        assert status == 200, (page, status, html[:300])
        found = CSRF_FIELD.search(html)
        assert found, html[:500]
        status, html, response = await self.post(path, {**data, "csrf_token": found[1]})
        return status, (response.headers.get("Location") or html)

    async def login(self, account: str, password: str) -> str:
        """Submit the password form; returns where the server sends the browser next."""
        status, _, response = await self.post("/login", {"account": account, "password": password})
        assert status == 303, status
        return response.headers["Location"]

    async def api(self) -> tuple[int, dict[str, object]]:
        status, text, _ = await self.get("/api/whoami")
        return status, json.loads(text)


@dataclass
class Site:
    """The accounts' pages and API on a test server, and the clock their accounts read."""

    kit: AccountsKit
    clock: ManualClock
    client: TestClient[web.Request, web.Application]

    def browser(self, address: str = "10.0.0.1") -> Browser:
        return Browser(self.client, self.kit.cookie_name, address)


@dataclass
class Person:
    account: str
    password: str
    secret: str
    recovery_codes: list[str]


NEW_PASSWORD = "корректная лошадь батарея скрепка"
SECRET_SHOWN = re.compile(r'<code id="secret">([A-Z2-7 ]+)</code>')
CODES_SHOWN = re.compile(r"<li><code>([a-z2-9-]+)</code></li>")


async def first_login(
    browser: Browser, kit: AccountsKit, clock: ManualClock, account: str
) -> Person:
    """An account made by `hotline users add`, then its first login through the pages: the
    one-time password, a new password, the TOTP enrolment; the browser ends logged in."""
    one_time = await kit.accounts.add(account, "operator", "Иванова Анна Петровна", by=ADMIN_CLI)
    assert await browser.login(account, one_time) == "/login/password"
    status, where = await browser.form_post(
        "/login/password",
        "/login/password",
        {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
    )
    assert (status, where) == (303, "/login/enrol")
    status, html, _ = await browser.get("/login/enrol")
    found = SECRET_SHOWN.search(html)
    assert status == 200 and found, html[:500]
    secret = found[1].replace(" ", "")
    status, html = await browser.form_post(
        "/login/enrol", "/login/enrol", {"code": totp_code(secret, clock)}
    )
    assert status == 200, html[:500]
    return Person(account, NEW_PASSWORD, secret, CODES_SHOWN.findall(html))
