"""The operator's desktop over HTTP: the page, its pushed events, and the contact API it uses.

    GET  /desk                                 the desktop (Russian), operators and supervisors
    GET  /desk/events                          server-sent events: pop, pop_withdrawn, contact
    GET  /desk/static/{name}                   the page's script and style (public, no data)
    GET  /desk/api/contacts/{number}           one contact (audited view)
    POST /desk/api/contacts/{number}/wrap-up   {"resolution", "category", "resolved": bool}
    GET  /desk/api/history?phone=&application= the caller's contacts of 30 days (audited)
    GET  /desk/api/search?q=                   full-text search (audited)

The state bar's buttons call the operators' API (`/api/operators/{id}/ready` ...), which
acts only as the logged-in operator; the page carries the session's CSRF token for them.
Answers are JSON with Russian error texts; nothing is ever fetched from outside the server.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from hotline.access import actor_of, allow, people
from hotline.auth import Actor, Role
from hotline.jsonbody import read_json_object
from hotline.push import stream_events
from hotline.web_pages import add_staff_page
from workspace.desk import Desk, DeskEvent
from workspace.model import CATEGORY_TITLES, Category, Contact
from workspace.numbers import parse_contact_number
from workspace.registry import ContactRegistry
from workspace.web_common import PAGES, json_answer, source_of, static_files

__all__ = ["DESK_KEY", "REGISTRY_KEY", "add_desk_routes"]

DESK_KEY: Final = web.AppKey("workspace_desk", Desk)
REGISTRY_KEY: Final = web.AppKey("workspace_registry", ContactRegistry)
_STAFF: Final = people(Role.OPERATOR, Role.SUPERVISOR)
_static_files: Final = static_files({"desk.js": "text/javascript", "desk.css": "text/css"})
_MAX_TEXT: Final = 4000


def add_desk_routes(app: web.Application, desk: Desk, registry: ContactRegistry) -> None:
    app[DESK_KEY] = desk
    app[REGISTRY_KEY] = registry
    app.router.add_get("/desk", _page)
    add_staff_page(app, "/desk", "Рабочее место оператора")
    app.router.add_get("/desk/events", _events)
    app.router.add_get("/desk/static/{name}", _static_files)
    app.router.add_get("/desk/api/contacts/{number}", _contact)
    app.router.add_post("/desk/api/contacts/{number}/wrap-up", _wrap_up)
    app.router.add_get("/desk/api/history", _history)
    app.router.add_get("/desk/api/search", _search)


@allow(_STAFF)
async def _page(request: web.Request) -> web.Response:
    actor = actor_of(request)
    html = PAGES.get_template("desk.html").render(
        operator_id=actor.user_id,
        role=actor.role,
        csrf_token=actor.csrf_token or "",
        categories=list(CATEGORY_TITLES.items()),
    )
    # same-origin, not the site's default no-referrer: with no-referrer browsers send
    # `Origin: null` and the logout form would be refused as cross-site
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    return web.Response(text=html, content_type="text/html", headers=headers)


@allow(_STAFF)
async def _events(request: web.Request) -> web.StreamResponse:
    actor = actor_of(request)
    with request.app[DESK_KEY].subscribe(actor.user_id) as events:
        return await stream_events(request, events, DeskEvent.sse)


def _number(request: web.Request) -> Any:
    number = parse_contact_number(request.match_info["number"])
    if number is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "Обращение не найдено."}, ensure_ascii=False),
            content_type="application/json",
        )
    return number


@allow(_STAFF)
async def _contact(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    found = await registry.view(
        _number(request), actor=actor_of(request), source=source_of(request)
    )
    if found is None:
        return json_answer({"error": "Обращение не найдено."}, 404)
    return json_answer(contact_json(found))


@allow(_STAFF)
async def _wrap_up(request: web.Request) -> web.Response:
    number = _number(request)
    body = await read_json_object(request)  # bounded size, depth and time; a 400 otherwise
    problem = _wrap_up_problem(body)
    if problem:
        return json_answer({"error": problem}, 400)
    actor = actor_of(request)
    registry = request.app[REGISTRY_KEY]
    current = await registry.view(number, actor=actor, source=source_of(request))
    if current is None:
        return json_answer({"error": "Обращение не найдено."}, 404)
    if not _may_close(actor, current):
        return json_answer({"error": "Это обращение ведёт другой оператор."}, 403)
    closed = await registry.close(
        number,
        resolution=body["resolution"].strip(),
        category=Category(body["category"]),
        first_contact_resolution=body["resolved"],
        actor=actor,
        source=source_of(request),
    )
    assert closed is not None
    return json_answer(contact_json(closed))


def _wrap_up_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "Тело запроса: объект JSON."
    resolution = body.get("resolution")
    if not isinstance(resolution, str) or not resolution.strip():
        return "Опишите решение."
    if len(resolution) > _MAX_TEXT:
        return f"Решение: не длиннее {_MAX_TEXT} знаков."
    if body.get("category") not in {c.value for c in Category}:
        return "Выберите категорию обращения."
    if not isinstance(body.get("resolved"), bool):
        return "Укажите, решён ли вопрос на этом обращении."
    return ""


def _may_close(actor: Actor, contact: Contact) -> bool:
    """An operator closes their own contacts; a supervisor any."""
    return actor.role == Role.SUPERVISOR or contact.operator_id == actor.user_id


@allow(_STAFF)
async def _history(request: web.Request) -> web.Response:
    phone = request.query.get("phone", "").strip()
    application = request.query.get("application", "").strip() or None
    if not phone and not application:
        return json_answer({"error": "Укажите телефон или номер заявления."}, 400)
    found = await request.app[REGISTRY_KEY].history(
        phone=phone, application=application, actor=actor_of(request), source=source_of(request)
    )
    return json_answer({"contacts": [contact_json(c) for c in found]})


@allow(_STAFF)
async def _search(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()
    if not query or len(query) > 200:
        return json_answer({"error": "Строка поиска: от 1 до 200 знаков."}, 400)
    number = parse_contact_number(query)
    registry = request.app[REGISTRY_KEY]
    actor, source = actor_of(request), source_of(request)
    if number is not None:  # a contact number typed into the search box
        found = await registry.view(number, actor=actor, source=source)
        return json_answer({"contacts": [contact_json(found)] if found else []})
    results = await registry.search(query, actor=actor, source=source)
    return json_answer({"contacts": [contact_json(c) for c in results]})


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "number": str(contact.number),
        "opened_at": contact.opened_at.isoformat(),
        "closed_at": contact.closed_at.isoformat() if contact.closed_at else None,
        "channel": contact.channel.value,
        "line": contact.line,
        "caller_phone": contact.caller_phone,
        "caller_name": contact.caller_name,
        "application_number": contact.application_number,
        "category": contact.category.value,
        "category_title": CATEGORY_TITLES[contact.category],
        "topic": contact.topic,
        "description": contact.description,
        "group": contact.group,
        "operator_id": contact.operator_id,
        "state": contact.state.value,
        "resolution": contact.resolution,
        "first_contact_resolution": contact.first_contact_resolution,
        "rating": contact.rating,
        "repeat": contact.repeat,
        "waited_seconds": contact.waited_seconds,
    }
