"""Operator HTTP API: log in, get ready, pause with a reason, finish wrap-up, log out.

Routes (JSON in and out; errors are ``{"error": "<text for the operator's screen, Russian>"}``)::

    GET  /api/operators                       every operator: state, pause reason, phone
    POST /api/operators/{id}/login            {"paused_reason": "..."} optional
    POST /api/operators/{id}/ready
    POST /api/operators/{id}/pause            {"reason": "обед"} (required, up to 100 chars)
    POST /api/operators/{id}/wrap-up-done
    POST /api/operators/{id}/logout

Status codes: 200 done, 400 bad request body, 404 unknown operator, 409 not allowed in the
current state. Shared-state trouble never reaches the operator as a crash: the node degrades
(see routing.node). Mount with ``add_operator_routes(app, node)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from hotline.jsonbody import read_json_object
from routing.model import Offer
from routing.node import AcdNode
from routing.operators import InvalidTransition, OperatorState

__all__ = ["OPERATOR_ACTIONS", "BadRequest", "add_operator_routes"]

_NODE: Final = web.AppKey("acd_node", AcdNode)
_MAX_REASON = 100

Handler = Callable[[AcdNode, str, dict[str, Any]], Awaitable[object]]


def add_operator_routes(app: web.Application, node: AcdNode) -> None:
    app[_NODE] = node
    app.router.add_get("/api/operators", _list)
    for action, handler in OPERATOR_ACTIONS.items():
        app.router.add_post(f"/api/operators/{{op_id}}/{action}", _action(handler))


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def _list(request: web.Request) -> web.Response:
    node = request.app[_NODE]
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
    ]
    return web.json_response({"operators": rows, "degraded": node.degraded})


def _action(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        node = request.app[_NODE]
        op_id = request.match_info["op_id"]
        if op_id not in node.acd.operators:
            return _error(404, "Оператор не найден. Проверьте логин.")
        body = await read_json_object(request, empty={})  # BadJsonBody is its own 400
        try:
            await handler(node, op_id, body)
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
