"""Admin HTTP API of the ACD: skill groups, operators and group schedules, edited live.

Routes (JSON in and out; every route, reads included, is for people in role ``admin`` or
``supervisor``: the lists name operators and their phones. The controller's access middleware
(`hotline.access`) checks it from the policy on each handler; the actor it established is the
one the audit log names)::

    GET    /api/groups                   every group: settings, schedule, who has the skill
    GET    /api/groups/{id}
    PUT    /api/groups/{id}              {"name", "schedule", "wrap_up_seconds", "ring_seconds",
                                          "max_wait_seconds", "widen_after_seconds",
                                          "widen_to": [...], "overflow_group": "...",
                                          "message_deadline_minutes": 10}
    DELETE /api/groups/{id}
    PUT    /api/operators/{id}           {"name", "device": "PJSIP/1009", "skills": {"general": 5}}
                                         (device: only PJSIP/<seat>, else 400)
    PUT    /api/operators/{id}/skills    {"general": 5, "payments": 3}
    DELETE /api/operators/{id}           only once the operator is logged out
    GET    /api/schedules/{name}         the hours file <schedules_dir>/<name>.yaml
    PUT    /api/schedules/{name}         {"timezone": "Europe/Moscow",
                                          "hours": {"workday": "08:00-20:00", "saturday": ...}}

Errors are ``{"error": "<Russian text>", "where": "<field or file:line>"}``: 400 not a JSON
object or a device other than an operator's PJSIP seat, 401 no or unknown credentials, 403 a
role that may not edit (those two answered by the middleware), 404 unknown id, 409 the
running ACD still needs it (callers waiting, a skill, a menu, another group), 422 the file's
validator refused it (nothing is written), 503 the audit log is unavailable. Every accepted
edit is in the audit log (`hotline.audit`) with who made it. See `routing.admin.service`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from hotline.access import actor_of, allow, people
from hotline.auth import Actor, Role
from hotline.jsonbody import BadJsonBody, read_json_object
from routing.admin.errors import EditRefused
from routing.admin.service import AcdAdmin

__all__ = ["EDITOR_ROLES", "add_admin_routes"]

EDITOR_ROLES: Final = frozenset({Role.ADMIN, Role.SUPERVISOR})
_ADMIN: Final = web.AppKey("acd_admin", AcdAdmin)
_MAX_BODY: Final = 64 * 1024

Handler = Callable[[web.Request, AcdAdmin, Actor], Awaitable[Any]]


def add_admin_routes(app: web.Application, admin: AcdAdmin) -> None:
    """Mount the routes on `app`, which `hotline.access.access_middleware` must guard."""
    app[_ADMIN] = admin
    app.router.add_get("/api/groups", _route(_list_groups))
    app.router.add_get("/api/groups/{id}", _route(_show_group))
    app.router.add_put("/api/groups/{id}", _route(_put_group))
    app.router.add_delete("/api/groups/{id}", _route(_delete_group))
    app.router.add_put("/api/operators/{id}", _route(_put_operator))
    app.router.add_put("/api/operators/{id}/skills", _route(_put_skills))
    app.router.add_delete("/api/operators/{id}", _route(_delete_operator))
    app.router.add_get("/api/schedules/{name}", _route(_show_schedule))
    app.router.add_put("/api/schedules/{name}", _route(_put_schedule))


def _error(status: int, text: str, where: str = "") -> web.Response:
    return web.json_response({"error": text, "where": where}, status=status)


def _route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    @allow(people(*EDITOR_ROLES))
    async def handle(request: web.Request) -> web.Response:
        try:
            result = await handler(request, request.app[_ADMIN], actor_of(request))
        except EditRefused as refused:
            return _error(refused.status, refused.message, refused.where)
        return web.json_response(result)

    return handle


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        return await read_json_object(request, max_bytes=_MAX_BODY)
    except BadJsonBody as refused:
        raise EditRefused(refused.status_code, refused.message, "body") from None


def _source(request: web.Request) -> str:
    return request.remote or "unknown"


async def _list_groups(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    return {"groups": [admin.describe_group(g) for g in sorted(admin.groups.values(), key=_id)]}


def _id(group: Any) -> str:
    return str(group.id)


async def _show_group(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    group = admin.groups.get(request.match_info["id"])
    if group is None:
        raise EditRefused(404, "Группа не найдена.", "id")
    return admin.describe_group(group)


async def _put_group(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    group_id = request.match_info["id"]
    group = await admin.put_group(group_id, await _body(request), actor, _source(request))
    return admin.describe_group(group)


async def _delete_group(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    group_id = request.match_info["id"]
    await admin.delete_group(group_id, actor, _source(request))
    return {"id": group_id, "deleted": True}


def _operator(spec: Any) -> dict[str, Any]:
    return {"id": spec.id, "name": spec.name, "device": spec.device, "skills": spec.skills}


async def _put_operator(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    op_id = request.match_info["id"]
    spec = await admin.put_operator(op_id, await _body(request), actor, _source(request))
    return _operator(spec)


async def _put_skills(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    op_id = request.match_info["id"]
    spec = await admin.put_skills(op_id, await _body(request), actor, _source(request))
    return _operator(spec)


async def _delete_operator(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    op_id = request.match_info["id"]
    await admin.delete_operator(op_id, actor, _source(request))
    return {"id": op_id, "deleted": True}


async def _show_schedule(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    return admin.schedule(request.match_info["name"])


async def _put_schedule(request: web.Request, admin: AcdAdmin, actor: Actor) -> Any:
    name = request.match_info["name"]
    return await admin.put_schedule(name, await _body(request), actor, _source(request))
