"""The login pages and ``/me``, server-rendered in Russian (Jinja2), with no outside resource.

``GET/POST /login``            name and password
``GET/POST /login/password``   a one-time password replaced by the person's own
``GET/POST /login/enrol``      the TOTP QR code (inline SVG) and secret, one code, then the
                               recovery codes, shown once
``GET/POST /login/totp``       the six-digit code
``GET/POST /login/recovery``   a recovery code instead
``POST /logout``               ends the session (the form carries the CSRF token)
``GET /me``, ``POST /me/pin``  who is logged in; a new phone PIN, shown once
``GET /accounts/static/accounts.css``

The login pages are public (`hotline.access.PUBLIC`) and check the session's stage themselves:
each POST needs the stage it moves on from and that session's CSRF token, and is refused when
the browser says it comes from another site (``Origin``). Every step that lets a session do
more issues a new cookie. Pages are never cached and cannot be framed.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
import segno
from aiohttp import web

from hotline.access import PUBLIC, actor_of, allow, people
from hotline.accounts.build import AccountsKit
from hotline.accounts.records import LoginRefused, SessionView, Stage
from hotline.accounts.service import Accounts
from hotline.auth import TOKEN_ROLES
from hotline.security import SecurityCategory, security_event
from hotline.web_pages import staff_pages

__all__ = ["ROLE_NAMES", "install_accounts"]

_KIT: Final = web.AppKey("hotline.accounts", AccountsKit)
_TEMPLATES: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("hotline.accounts", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_CSS: Final = resources.files("hotline.accounts").joinpath("static/accounts.css").read_bytes()
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer makes browsers send `Origin: null`
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_PAGE_OF_STAGE: Final = {
    Stage.CHANGE_PASSWORD: "/login/password",
    Stage.ENROL: "/login/enrol",
    Stage.TOTP: "/login/totp",
    Stage.FULL: "/me",
}
ROLE_NAMES: Final = {
    "operator": "оператор",
    "supervisor": "старший смены",
    "admin": "администратор",
    "quality_auditor": "аудитор качества",
    "security_officer": "офицер безопасности",
    "back_office": "сотрудник бэк-офиса",
}
_STAFF: Final = people(*sorted(TOKEN_ROLES))


def install_accounts(app: web.Application, kit: AccountsKit) -> None:
    """Mount the login pages, ``/logout``, ``/me`` and the stylesheet on `app`."""
    app[_KIT] = kit
    router = app.router
    router.add_get("/login", login_page)
    router.add_post("/login", login_submit)
    router.add_get("/login/password", change_password_page)
    router.add_post("/login/password", change_password_submit)
    router.add_get("/login/enrol", enrol_page)
    router.add_post("/login/enrol", enrol_submit)
    router.add_get("/login/totp", totp_page)
    router.add_post("/login/totp", totp_submit)
    router.add_get("/login/recovery", recovery_page)
    router.add_post("/login/recovery", recovery_submit)
    router.add_post("/logout", logout_submit)
    router.add_get("/me", me_page)
    router.add_post("/me/pin", new_pin_submit)
    router.add_get("/accounts/static/accounts.css", stylesheet)


def _page(template: str, title: str, *, status: int = 200, **context: Any) -> web.Response:
    html = _TEMPLATES.get_template(template).render(
        title=title, error=context.pop("error", None), **context
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(_HEADERS)
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **_HEADERS})


def _with_cookie(response: web.Response, request: web.Request, token: str) -> web.Response:
    kit = request.app[_KIT]
    response.set_cookie(
        kit.cookie_name,
        token,
        path="/",
        httponly=True,
        secure=kit.secure_cookie,
        samesite="Strict",
    )
    return response


def _without_cookie(response: web.Response, request: web.Request) -> web.Response:
    kit = request.app[_KIT]
    response.del_cookie(kit.cookie_name, path="/", secure=kit.secure_cookie, samesite="Strict")
    return response


def _address(request: web.Request) -> str:
    return request.app[_KIT].lookup.address_of(request)


def _token(request: web.Request) -> str:
    return request.cookies.get(request.app[_KIT].cookie_name, "")


async def _session(request: web.Request) -> SessionView | None:
    token = _token(request)
    return await request.app[_KIT].accounts.sessions.get(token) if token else None


def _field(form: Mapping[str, Any], name: str, limit: int = 1024) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _cross_site(request: web.Request) -> bool:
    """The browser says the form came from another site (Origin is sent with every POST)."""
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def _refused_form(request: web.Request, why: str) -> web.Response:
    security_event(SecurityCategory.CSRF_REFUSED, why, path=request.path, address=_address(request))
    return _page(
        "base.html", "Запрос отклонён", status=403, error="Форма устарела. Откройте страницу снова."
    )


def _refusal_page(template: str, title: str, refused: LoginRefused, **context: Any) -> web.Response:
    status = 429 if refused.retry_after > 0 else 400
    response = _page(template, title, status=status, error=refused.message_ru, **context)
    if refused.retry_after > 0:
        response.headers["Retry-After"] = str(max(1, round(refused.retry_after)))
    return response


@allow(PUBLIC)
async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_CSS, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@allow(PUBLIC)
async def login_page(request: web.Request) -> web.Response:
    view = await _session(request)
    if view is not None and view.stage is Stage.FULL:
        return _redirect("/me")
    return _page("login.html", "Вход", account="")


@allow(PUBLIC)
async def login_submit(request: web.Request) -> web.Response:
    if _cross_site(request):
        return _refused_form(request, "cross-site login form refused")
    form = await request.post()
    account = _field(form, "account", 64)
    accounts = request.app[_KIT].accounts
    try:
        token = await accounts.login_password(account, _field(form, "password"), _address(request))
    except LoginRefused as refused:
        return _refusal_page("login.html", "Вход", refused, account=account)
    old = _token(request)
    if old:  # whatever session the browser brought ends here (no fixation)
        await accounts.sessions.destroy(old)
    view = await accounts.sessions.get(token)
    assert view is not None
    return _with_cookie(_redirect(_PAGE_OF_STAGE[view.stage]), request, token)


async def _at(request: web.Request, stage: Stage) -> SessionView | web.Response:
    """The session if it is at `stage`; else where to go instead."""
    view = await _session(request)
    if view is None:
        return _redirect("/login")
    if view.stage is not stage:
        return _redirect(_PAGE_OF_STAGE[view.stage])
    return view


async def _posted_at(
    request: web.Request, stage: Stage
) -> tuple[SessionView, Mapping[str, Any]] | web.Response:
    """A login step's POST: same site, the session at `stage`, its CSRF token echoed."""
    if _cross_site(request):
        return _refused_form(request, "cross-site login form refused")
    view = await _at(request, stage)
    if isinstance(view, web.Response):
        return view
    form = await request.post()
    if not hmac.compare_digest(_field(form, "csrf_token", 100), view.csrf_token):
        return _refused_form(request, "login form without its CSRF token")
    return view, form


@allow(PUBLIC)
async def change_password_page(request: web.Request) -> web.Response:
    view = await _at(request, Stage.CHANGE_PASSWORD)
    if isinstance(view, web.Response):
        return view
    return _password_form(request, view)


def _password_form(
    request: web.Request, view: SessionView, error: str | None = None
) -> web.Response:
    accounts = request.app[_KIT].accounts
    return _page(
        "change_password.html",
        "Новый пароль",
        status=200 if error is None else 400,
        error=error,
        csrf_token=view.csrf_token,
        min_length=accounts.rules.min_length,
    )


@allow(PUBLIC)
async def change_password_submit(request: web.Request) -> web.Response:
    posted = await _posted_at(request, Stage.CHANGE_PASSWORD)
    if isinstance(posted, web.Response):
        return posted
    view, form = posted
    try:
        token = await request.app[_KIT].accounts.change_password(
            _token(request), _field(form, "new_password"), _field(form, "new_password_again")
        )
    except LoginRefused as refused:
        return _password_form(request, view, refused.message_ru)
    return _with_cookie(_redirect("/login/enrol"), request, token)


@allow(PUBLIC)
async def enrol_page(request: web.Request) -> web.Response:
    view = await _at(request, Stage.ENROL)
    if isinstance(view, web.Response):
        return view
    return await _enrol_form(request, view)


async def _enrol_form(
    request: web.Request, view: SessionView, error: str | None = None, status: int = 200
) -> web.Response:
    secret, uri = await request.app[_KIT].accounts.enrolment(_token(request))
    qr = segno.make(uri, error="m").svg_inline(scale=5, title="QR-код", dark="#1b1f24")
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return _page(
        "enrol.html",
        "Подключение второго фактора",
        status=status,
        error=error,
        csrf_token=view.csrf_token,
        qr_svg=qr,
        secret_groups=groups,
    )


@allow(PUBLIC)
async def enrol_submit(request: web.Request) -> web.Response:
    posted = await _posted_at(request, Stage.ENROL)
    if isinstance(posted, web.Response):
        return posted
    view, form = posted
    try:
        token, codes = await request.app[_KIT].accounts.confirm_enrolment(
            _token(request), _field(form, "code", 20), _address(request)
        )
    except LoginRefused as refused:
        status = 429 if refused.retry_after > 0 else 400
        return await _enrol_form(request, view, refused.message_ru, status)
    page = _page("recovery_codes.html", "Резервные коды", codes=codes)
    return _with_cookie(page, request, token)


_Handler = Callable[[web.Request], Awaitable[web.Response]]
_CodeCheck = Callable[[Accounts], Callable[[str, str, str], Awaitable[str]]]


def _code_form(
    template: str, title: str, longest: int, check: _CodeCheck
) -> tuple[_Handler, _Handler]:
    """The page and the submit of a TOTP-stage form asking for one code (the authenticator's
    or a recovery code): `longest` characters of the field are read and the code checked by
    `check(accounts)(session token, code, address)`."""

    @allow(PUBLIC)
    async def page(request: web.Request) -> web.Response:
        view = await _at(request, Stage.TOTP)
        if isinstance(view, web.Response):
            return view
        return _page(template, title, csrf_token=view.csrf_token)

    @allow(PUBLIC)
    async def submit(request: web.Request) -> web.Response:
        posted = await _posted_at(request, Stage.TOTP)
        if isinstance(posted, web.Response):
            return posted
        view, form = posted
        login = check(request.app[_KIT].accounts)
        try:
            token = await login(_token(request), _field(form, "code", longest), _address(request))
        except LoginRefused as refused:
            return _refusal_page(template, title, refused, csrf_token=view.csrf_token)
        return _with_cookie(_redirect("/me"), request, token)

    return page, submit


totp_page, totp_submit = _code_form(
    "totp.html", "Код подтверждения", 20, lambda accounts: accounts.login_totp
)
recovery_page, recovery_submit = _code_form(
    "recovery.html", "Вход по резервному коду", 40, lambda accounts: accounts.login_recovery
)


@allow(PUBLIC)
async def logout_submit(request: web.Request) -> web.Response:
    """Public so that a session stuck half-way through its login can end too; the form must
    carry the session's CSRF token."""
    if _cross_site(request):
        return _refused_form(request, "cross-site logout refused")
    view = await _session(request)
    if view is None:
        return _without_cookie(_redirect("/login"), request)
    form = await request.post()
    if not hmac.compare_digest(_field(form, "csrf_token", 100), view.csrf_token):
        return _refused_form(request, "logout without its CSRF token")
    await request.app[_KIT].accounts.logout(_token(request))
    return _without_cookie(_redirect("/login"), request)


@allow(_STAFF)
async def me_page(request: web.Request) -> web.Response:
    return await _me(request, new_pin=None)


@allow(_STAFF)
async def new_pin_submit(request: web.Request) -> web.Response:
    actor = actor_of(request)
    pin = await request.app[_KIT].accounts.new_pin(actor.user_id, by=actor)
    return await _me(request, new_pin=pin)


async def _me(request: web.Request, new_pin: str | None) -> web.Response:
    actor = actor_of(request)
    accounts = request.app[_KIT].accounts
    account = await accounts.get(actor.user_id)
    view = await _session(request)
    if account is None or view is None:  # a service key or legacy token has no /me
        return _redirect("/login")
    return _page(
        "me.html",
        "Мой профиль",
        account=account,
        role_name=ROLE_NAMES.get(account.role, account.role),
        since=view.created_at.strftime("%d.%m.%Y %H:%M UTC"),
        codes_left=await accounts.recovery_codes_left(account.id),
        csrf_token=view.csrf_token,
        new_pin=new_pin,
        pages=staff_pages(request.app, actor),
    )
