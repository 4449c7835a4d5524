"""Transfer from the operator's desktop: the caller in conversation goes to another group (tier
2, another skill) keeping their data, history and place in line; and the list of where a
caller can be sent, for the desktop's menus.

Routes (JSON; errors are ``{"error": "<Russian text for the operator's screen>"}``)::

    POST /api/operators/{id}/transfer    {"group": "tech2"}
    GET  /api/operators/{id}/targets     {"groups": [{id, name}], "agencies": [{id, name}]}

200: the caller is queued in the group and the operator is in wrap-up; 400: bad body, an
unknown group or the group the caller is already in; 401/403: no credentials, or not the
operator `{id}` themselves; 404: unknown operator; 409: not in a conversation; 503: no AMI
link to Asterisk, or the audit log unavailable (the call stays with the operator).

Only the operator holding the call moves it (`agents.acting.require_self`, then the ACD says
whom that operator is talking to). The transfer is audited before the caller moves.

How the caller leaves the operator: the ACD requeues the caller first
(`routing.node.AcdNode.escalate`: the operator goes to wrap-up), then AMI hangs up the
operator's leg of the Dial. Dial on the caller's session returns ANSWER with the caller
waiting again, and `routing.connect.connect_call` goes back to waiting for the next operator
(music on hold, announcements) instead of ending the call. The operator's channel is named
``PJSIP/<seat>-<n>``: a Hangup with the regular expression ``/^PJSIP/<seat>-/`` finds it (seat
devices are plain names, `routing.operators.is_seat_device`, so nothing else matches).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from agents.acting import ActingRefused, audit_act, require_self
from agents.escalation import Agency
from hotline.access import actor_of, allow, people
from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiError
from hotline.audit import AuditLog
from hotline.auth import Role
from hotline.jsonbody import BadJsonBody, read_json_object
from hotline.logs import bind_call
from routing.model import AcdError
from routing.node import AcdNode
from routing.operators import OperatorState

log = logging.getLogger(__name__)

__all__ = ["add_transfer_routes"]

_NO_PBX: Final = "Нет связи с АТС: перевести звонок сейчас нельзя. Абонент остаётся с вами."


@dataclass
class _Transfers:
    node: AcdNode
    ami: Callable[[], AmiClient | None]
    agencies: Mapping[str, Agency]
    audit: AuditLog


_STATE: Final = web.AppKey("transfers", _Transfers)


def add_transfer_routes(
    app: web.Application,
    node: AcdNode,
    ami_client_getter: Callable[[], AmiClient | None],
    agencies: Mapping[str, Agency],
    audit: AuditLog,
) -> None:
    app[_STATE] = _Transfers(node, ami_client_getter, agencies, audit)
    app.router.add_post("/api/operators/{op_id}/transfer", _transfer)
    app.router.add_get("/api/operators/{op_id}/targets", _targets)


@allow(people(Role.OPERATOR, Role.SUPERVISOR))
async def _targets(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    groups = state.node.acd.groups.values()
    return web.json_response(
        {
            "groups": [{"id": g.id, "name": g.name} for g in groups],
            "agencies": [{"id": a.id, "name": a.name} for a in state.agencies.values()],
        },
        dumps=_dumps,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@allow(people(Role.OPERATOR, Role.SUPERVISOR))
async def _transfer(request: web.Request) -> web.Response:
    try:
        reply = await _handle(request.app[_STATE], request)
    except ActingRefused as refused:
        return web.json_response({"error": refused.text}, status=refused.status, dumps=_dumps)
    return web.json_response(reply, dumps=_dumps)


async def _handle(state: _Transfers, request: web.Request) -> dict[str, Any]:
    node = state.node
    op_id = request.match_info["op_id"]
    actor = actor_of(request)
    require_self(request, actor, op_id)  # only the holder, before anything is told
    operator = node.acd.operators.get(op_id)
    if operator is None:
        raise ActingRefused(404, "Оператор не найден. Проверьте логин.")
    group_id = await _group_id(request)
    group = node.acd.groups.get(group_id)
    if group is None:
        names = ", ".join(f"{g.id} ({g.name})" for g in node.acd.groups.values())
        raise ActingRefused(400, f"Такой группы нет. Доступны: {names}.")
    call_id = operator.call_id
    caller = node.acd.callers.get(call_id or "")
    if operator.state is not OperatorState.TALKING or caller is None or call_id is None:
        raise ActingRefused(409, "Вы сейчас не в разговоре: переводить некого.")
    if caller.group == group_id:
        raise ActingRefused(400, "Абонент уже в этой группе: выберите другую.")
    ami = state.ami()
    if ami is None or not ami.connected:
        raise ActingRefused(503, _NO_PBX)
    detail = {"call": call_id, "group": group_id}
    await audit_act(state.audit, request, actor, "transfer", op_id, detail)
    with bind_call(call_id):
        try:
            await node.escalate(call_id, group_id, note="transfer")
        except AcdError as gone:  # the caller hung up between the check and the move
            raise ActingRefused(409, "Абонент уже положил трубку: переводить некого.") from gone
        await _end_operator_leg(ami, operator.spec.device)
        log.info("call transferred", extra={"operator": op_id, "group": group_id})
    return {"id": op_id, "state": node.acd.operators[op_id].state.value, "group": group.id}


async def _group_id(request: web.Request) -> str:
    try:
        body = await read_json_object(request)
    except BadJsonBody as refused:
        if refused.status_code != 400:
            raise ActingRefused(refused.status_code, refused.message) from None
        body = {}
    if not isinstance(body.get("group"), str):
        raise ActingRefused(400, 'Некорректный запрос: ожидается {"group": "<код группы>"}.')
    return str(body["group"])


async def _end_operator_leg(ami: AmiClient, device: str) -> None:
    """Hang up the operator's side of the Dial; the caller, already requeued, waits again.
    A failure leaves the caller queued and the operator in wrap-up: the operator hangs up
    by hand, Dial returns the same way."""
    pattern = "/^" + re.escape(device).replace("/", "\\/") + "-/"
    try:
        await ami.action("Hangup", Channel=pattern)
    except (TimeoutError, AmiError) as failed:
        log.warning("transfer: the operator's leg stays up: %s", failed)
