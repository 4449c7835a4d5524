"""Callback HTTP API, for the mobile app: order a callback, see how it goes, cancel it.

Routes (JSON in and out; errors are ``{"error": "<text for the app's screen, Russian>"}``)::

    POST   /api/callbacks        {"phone": "+7 916 123-45-67", "group": "payments",
                                  "application_id": "1234567897",          (optional)
                                  "window_start": "2026-12-01T10:00:00+03:00",   (optional)
                                  "window_end":   "2026-12-01T12:00:00+03:00"}   (optional)
                                 -> 201 {"id": 17, "state": "pending", ...}
    GET    /api/callbacks/{id}   -> 200 {"id", "state", "group", "window_start", "window_end",
                                         "attempts", "next_attempt_at", "last_result", ...}
    DELETE /api/callbacks/{id}   -> 200 {"id", "state": "cancelled"}

Status codes: 400 bad request (the message says what to fix), 404 unknown id, 409 a callback
for that number and group is already ordered (its ``id`` is in the answer) or it can no longer
be cancelled. Times are ISO 8601 with a zone; the window must lie in the future and overlap
the group's working hours. Mount with ``add_callback_routes(app, scheduler)``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from hotline.access import PUBLIC, allow
from routing.callbacks.model import CallbackRefused
from routing.callbacks.scheduler import CallbackScheduler

__all__ = ["add_callback_routes"]

_SCHEDULER: Final = web.AppKey("callback_scheduler", CallbackScheduler)
_MAX_BODY: Final = 16 * 1024
_MAX_TEXT: Final = 64
_NOT_FOUND: Final = "Заявка на обратный звонок не найдена."


def add_callback_routes(app: web.Application, scheduler: CallbackScheduler) -> None:
    app[_SCHEDULER] = scheduler
    app.router.add_post("/api/callbacks", _create)
    app.router.add_get("/api/callbacks/{callback_id}", _show)
    app.router.add_delete("/api/callbacks/{callback_id}", _cancel)


def _error(status: int, text: str, **extra: Any) -> web.Response:
    return web.json_response({"error": text, **extra}, status=status)


class _BadRequest(ValueError):
    """A request the app must correct; the message is Russian."""


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise _BadRequest("Слишком большой запрос.")
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise _BadRequest("Слишком большой запрос.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
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


@allow(PUBLIC)  # as open as before: the callbacks work sets the real policy
async def _create(request: web.Request) -> web.Response:
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
        )
    except _BadRequest as bad:
        return _error(400, str(bad))
    except CallbackRefused as refused:
        if refused.existing is not None:
            return _error(409, str(refused), id=refused.existing)
        return _error(400, str(refused))
    return web.json_response(callback.as_json(), status=201)


def _id(request: web.Request) -> int | None:
    text = request.match_info["callback_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


@allow(PUBLIC)  # as open as before: the callbacks work sets the real policy
async def _show(request: web.Request) -> web.Response:
    callback_id = _id(request)
    callback = None if callback_id is None else await request.app[_SCHEDULER].get(callback_id)
    if callback is None:
        return _error(404, _NOT_FOUND)
    return web.json_response(callback.as_json())


@allow(PUBLIC)  # as open as before: the callbacks work sets the real policy
async def _cancel(request: web.Request) -> web.Response:
    scheduler = request.app[_SCHEDULER]
    callback_id = _id(request)
    if callback_id is None or await scheduler.get(callback_id) is None:
        return _error(404, _NOT_FOUND)
    if not await scheduler.cancel(callback_id):
        return _error(409, "Звонок уже выполняется или завершён: отменить его нельзя.")
    callback = await scheduler.get(callback_id)
    assert callback is not None
    return web.json_response(callback.as_json())
