"""Operator HTTP API: log in, get ready, pause with a reason, finish wrap-up, log out.

Routes (JSON in and out; errors are ``{"error": "<text for the operator's screen, Russian>"}``)::

    GET  /api/operators                       operators: state, pause reason, phone
    POST /api/operators/{id}/login            {"paused_reason": "..."} optional
    POST /api/operators/{id}/ready
    POST /api/operators/{id}/pause            {"reason": "обед"} (required, up to 100 chars)
    POST /api/operators/{id}/wrap-up-done
    POST /api/operators/{id}/logout

Who may call them (`hotline.access` policies, then `agents.acting`): the actions, operators
and supervisors; an operator acts only as themselves, a supervisor on someone else only with
``"why"`` in the body; every accepted action is audited before it is done. The list,
supervisors and admins (everyone) and operators (their own row only: colleagues' names and
states are not theirs to see).

Status codes: 200 done, 400 bad request body (or a supervisor without a reason), 401/403 no
or wrong credentials, 404 unknown operator, 409 not allowed in the current state, 503 the
audit log is unavailable (nothing changed). Shared-state trouble never reaches the operator as
a crash: the node degrades (see routing.node). Mount with ``add_operator_routes(app, node,
audit)`` on an app guarded by `hotline.access.access_middleware`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from agents.acting import ActingRefused, audit_act, check_acting
from hotline.access import actor_of, allow, people
from hotline.audit import AuditLog
from hotline.auth import Role
from hotline.jsonbody import read_json_object
from routing.model import Offer
from routing.node import AcdNode
from routing.operators import InvalidTransition, OperatorState

__all__ = ["OPERATOR_ACTIONS", "BadRequest", "add_operator_routes"]

_NODE: Final = web.AppKey("acd_node", AcdNode)
_AUDIT: Final = web.AppKey("operator_audit", AuditLog)
_MAX_REASON = 100
# Roles that see every operator in the list; anyone else sees only their own row.
SEE_ALL_ROLES: Final = frozenset({Role.SUPERVISOR, Role.ADMIN})

Handler = Callable[[AcdNode, str, dict[str, Any]], Awaitable[object]]


def add_operator_routes(app: web.Application, node: AcdNode, audit: AuditLog) -> None:
    app[_NODE] = node
    app[_AUDIT] = audit
    app.router.add_get("/api/operators", _list)
    for action, handler in OPERATOR_ACTIONS.items():
        app.router.add_post(f"/api/operators/{{op_id}}/{action}", _action(action, handler))


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


@allow(people(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN))
async def _list(request: web.Request) -> web.Response:
    node = request.app[_NODE]
    actor = actor_of(request)
    everyone = actor.role in SEE_ALL_ROLES
    rows = [
        {
            "id": op.id,
            "name": op.spec.name,
            "state": op.state.value,
            "pause_reason": op.pause_reason,
            "phone_registered": op.device_available,
            "skills": op.spec.skills,
        }
        for op in sorted(node.acd.operators.values(), key=lambda o: o.id)
        if everyone or op.id == actor.user_id
    ]
    return web.json_response({"operators": rows, "degraded": node.degraded})


def _action(name: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    @allow(people(Role.OPERATOR, Role.SUPERVISOR))
    async def handle(request: web.Request) -> web.Response:
        node = request.app[_NODE]
        op_id = request.match_info["op_id"]
        actor = actor_of(request)
        body = await read_json_object(request, empty={})  # BadJsonBody is its own 400
        try:
            # who may act is decided before anything about the operator is told
            why = check_acting(request, actor, op_id, body)
            if op_id not in node.acd.operators:
                return _error(404, "Оператор не найден. Проверьте логин.")
            detail: dict[str, str | None] = {"why": why} if why is not None else {}
            if name == "pause":  # a malformed reason is refused before it is audited
                detail["reason"] = _reason(body, "reason", required=True)
            await audit_act(request.app[_AUDIT], request, actor, name, op_id, detail)
            await handler(node, op_id, body)
        except ActingRefused as refused:
            return _error(refused.status, refused.text)
        except InvalidTransition as refused:
            return _error(409, refused.message_ru)
        except BadRequest as bad:
            return _error(400, str(bad))
        op = node.acd.operators[op_id]
        return web.json_response(
            {"id": op_id, "state": op.state.value, "pause_reason": op.pause_reason}
        )

    return handle


class BadRequest(ValueError):
    """A request the operator must correct; the message is Russian. Raised by the
    `OPERATOR_ACTIONS`, which the phone feature codes (agents.feature_codes) share."""


def _reason(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("Укажите причину перерыва.")
    if len(value) > _MAX_REASON or any(ch in value for ch in "\r\n\0"):
        raise BadRequest(f"Причина перерыва: одна строка, не длиннее {_MAX_REASON} символов.")
    return value.strip()


async def _login(node: AcdNode, op_id: str, body: dict[str, Any]) -> list[Offer]:
    return await node.login(op_id, paused_reason=_reason(body, "paused_reason", required=False))


async def _ready(node: AcdNode, op_id: str, body: dict[str, Any]) -> list[Offer]:
    return await node.ready(op_id)


async def _pause(node: AcdNode, op_id: str, body: dict[str, Any]) -> None:
    # The core lets a logged-out operator pause (that is how login with a pause reason works),
    # but a pause asked for by someone not logged in is a mistake: log in first.
    state = node.acd.operators[op_id].state
    if state is OperatorState.LOGGED_OUT:
        raise InvalidTransition(op_id, state, OperatorState.PAUSED)
    await node.pause(op_id, _reason(body, "reason", required=True) or "")


async def _wrap_up_done(node: AcdNode, op_id: str, body: dict[str, Any]) -> list[Offer]:
    return await node.wrap_up_done(op_id)


async def _logout(node: AcdNode, op_id: str, body: dict[str, Any]) -> None:
    await node.logout(op_id)


# Action name -> what it does to the node, for the API and the phone feature codes alike.
OPERATOR_ACTIONS: dict[str, Handler] = {
    "login": _login,
    "ready": _ready,
    "pause": _pause,
    "wrap-up-done": _wrap_up_done,
    "logout": _logout,
}
