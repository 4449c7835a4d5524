"""Callback HTTP API, for the mobile app's backend and staff: order a callback, see how it
goes, cancel it.

Routes (JSON in and out; errors are ``{"error": "<text for the app's screen, Russian>"}`` and
nothing else)::

    POST   /api/callbacks        {"phone": "+7 916 123-45-67", "group": "payments",
                                  "application_id": "1234567897",          (optional)
                                  "window_start": "2026-12-01T10:00:00+03:00",   (optional)
                                  "window_end":   "2026-12-01T12:00:00+03:00"}   (optional)
                                 -> 201 {"id": "<22 URL-safe characters>", "state": "pending"...}
    GET    /api/callbacks/{id}   -> 200 {"id", "state", "group", "window_start", "window_end",
                                         "attempts", "next_attempt_at", "last_result", ...}
    DELETE /api/callbacks/{id}   -> 200 {"id", "state": "cancelled"}

Who may call them (`hotline.access`): POST a service key with scope ``callbacks:create``,
GET ``callbacks:read``, DELETE ``callbacks:cancel``, and staff (operator, supervisor) all
three. A service sees and cancels only the callbacks it ordered; staff see every one. The id
is random (128 bits): ids cannot be guessed by counting, and an id of another's callback
answers exactly as an id that does not exist (404).

Status codes: 400 bad request (the message says what to fix; a number callbacks may not call,
`routing.callbacks.numbers`), 404 unknown id, 409 the number already has a callback pending
(in any group; the answer names nothing of it) or it can no longer be cancelled, 429 over a
rate limit (`CallbackSettings`), 503 the audit log cannot be written. Every access is in the
audit log (`hotline.audit`: action ``callback.create|read|cancel``, the public id, the
outcome): a callback holds a citizen's phone and application number. Times are ISO 8601 with
a zone; the window must lie in the future and overlap the group's working hours. Mount with
``add_callback_routes(app, scheduler, audit)``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from hotline.access import actor_of, allow, people, services
from hotline.audit import AuditLog
from hotline.auth import Actor, Role
from routing.callbacks.model import Callback, CallbackRefused, Refusal
from routing.callbacks.scheduler import CallbackScheduler

__all__ = ["add_callback_routes", "requester_of"]

log = logging.getLogger("hotline.routing.callbacks")

_SCHEDULER: Final = web.AppKey("callback_scheduler", CallbackScheduler)
_AUDIT: Final = web.AppKey("callback_audit", AuditLog)
_MAX_BODY: Final = 16 * 1024
_MAX_TEXT: Final = 64
_NOT_FOUND: Final = "Заявка на обратный звонок не найдена."
_NO_AUDIT: Final = "Журнал аудита недоступен: попробуйте позже."
_STAFF: Final = (Role.OPERATOR, Role.SUPERVISOR)
_STATUS: Final = {
    Refusal.INVALID: 400,
    Refusal.NUMBER: 400,
    Refusal.DUPLICATE: 409,
    Refusal.RATE_LIMITED: 429,
}


def add_callback_routes(
    app: web.Application, scheduler: CallbackScheduler, audit: AuditLog
) -> None:
    app[_SCHEDULER] = scheduler
    app[_AUDIT] = audit
    app.router.add_post("/api/callbacks", _create)
    app.router.add_get("/api/callbacks/{callback_id}", _show)
    app.router.add_delete("/api/callbacks/{callback_id}", _cancel)


def requester_of(actor: Actor) -> str:
    """Who ordered a callback, as its row keeps it: ``service:portal``, ``person:ivanova``."""
    return f"{actor.kind}:{actor.user_id}"


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    """JSON no cache keeps: a callback holds a citizen's number and application."""
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def _error(status: int, text: str) -> web.Response:
    return _answer({"error": text}, status)


class _BadRequest(ValueError):
    """A request the app must correct; the message is Russian."""


class _NoAudit(Exception):
    """The audit log could not be written: the access does not happen."""


def _actor(request: web.Request) -> Actor | None:
    """The actor `hotline.access.access_middleware` established; None when the app runs
    without it (then every request is refused: a route is never open by mistake)."""
    try:
        return actor_of(request)
    except RuntimeError:
        log.error("%s %s: no access middleware on the app, refused", request.method, request.path)
        return None


async def _audit(request: web.Request, actor: Actor, action: str, target: str | None,
                 outcome: str, **detail: Any) -> None:  # fmt: skip
    try:
        await request.app[_AUDIT].record(
            actor,
            f"callback.{action}",
            recording_id=target,
            source=request.remote or "unknown",
            outcome=outcome,
            detail=detail,
        )
    except Exception as error:  # any database error means the same here
        log.error("callback %s refused: audit log unavailable: %s", action, error)
        raise _NoAudit from None


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise _BadRequest("Слишком большой запрос.")
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise _BadRequest("Слишком большой запрос.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise _BadRequest("Некорректный запрос: ожидается JSON-объект.")
    return body


def _text(body: dict[str, Any], key: str, what: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _BadRequest(f"Укажите {what}.")
    if len(value) > _MAX_TEXT:
        raise _BadRequest(f"Поле «{key}» слишком длинное.")
    return value.strip()


def _moment(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRequest(
            f"Поле «{key}»: время в формате ISO 8601, например 2026-12-01T10:00:00+03:00."
        ) from None
    if moment.tzinfo is None:
        raise _BadRequest(f"Поле «{key}»: укажите часовой пояс, например +03:00.")
    return moment


@allow(services("callbacks:create") | people(*_STAFF))
async def _create(request: web.Request) -> web.Response:
    actor = _actor(request)
    if actor is None:
        return _error(401, "Требуется вход в систему.")
    scheduler = request.app[_SCHEDULER]
    try:
        body = await _body(request)
        phone = _text(body, "phone", "номер телефона", required=True) or ""
        group = _text(body, "group", "группу операторов", required=True) or ""
        application_id = _text(body, "application_id", "номер заявления", required=False)
        start, end = _moment(body, "window_start"), _moment(body, "window_end")
        callback = await scheduler.request(
            phone=phone,
            group=group,
            application_id=application_id,
            window_start=start,
            window_end=end,
            requester=requester_of(actor),
        )
    except _BadRequest as bad:
        return _error(400, str(bad))
    except CallbackRefused as refused:
        if refused.why is Refusal.DUPLICATE:  # who asked for a known number is on record
            try:
                await _audit(request, actor, "create", None, "duplicate")
            except _NoAudit:
                return _error(503, _NO_AUDIT)
        return _error(_STATUS[refused.why], str(refused))
    try:
        await _audit(request, actor, "create", callback.public_id, "ok", group=group)
    except _NoAudit:
        await scheduler.cancel(callback.id)  # no trace of who asked: not booked either
        return _error(503, _NO_AUDIT)
    return _answer(callback.as_json(), 201)


async def _visible(request: web.Request, actor: Actor) -> Callback | None:
    """The callback the path names, if this actor may see it: staff see every one, a
    service only those it ordered. Another's looks exactly like one that does not exist."""
    public_id = request.match_info["callback_id"]
    if not 16 <= len(public_id) <= 43 or not public_id.isascii():
        return None
    callback = await request.app[_SCHEDULER].get_public(public_id)
    if callback is None:
        return None
    if actor.kind == "service" and callback.requested_by != requester_of(actor):
        return None
    return callback


@allow(services("callbacks:read") | people(*_STAFF))
async def _show(request: web.Request) -> web.Response:
    actor = _actor(request)
    if actor is None:
        return _error(401, "Требуется вход в систему.")
    callback = await _visible(request, actor)
    try:
        if callback is None:
            await _audit(request, actor, "read", None, "not_found")
            return _error(404, _NOT_FOUND)
        await _audit(request, actor, "read", callback.public_id, "ok")
    except _NoAudit:
        return _error(503, _NO_AUDIT)
    return _answer(callback.as_json())


@allow(services("callbacks:cancel") | people(*_STAFF))
async def _cancel(request: web.Request) -> web.Response:
    actor = _actor(request)
    if actor is None:
        return _error(401, "Требуется вход в систему.")
    scheduler = request.app[_SCHEDULER]
    callback = await _visible(request, actor)
    cancelled = callback is not None and await scheduler.cancel(callback.id)
    outcome = "ok" if cancelled else "not_found" if callback is None else "too_late"
    try:
        target = callback.public_id if callback is not None else None
        await _audit(request, actor, "cancel", target, outcome)
    except _NoAudit:
        return _error(503, _NO_AUDIT)
    if callback is None:
        return _error(404, _NOT_FOUND)
    if not cancelled:
        return _error(409, "Звонок уже выполняется или завершён: отменить его нельзя.")
    shown = await scheduler.get(callback.id)
    assert shown is not None
    return _answer(shown.as_json())
