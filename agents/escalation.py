"""Escalation to an outside agency from the operator's desktop: the caller is put through to
the agency's number without redialling, with the call's data and history.

Route (JSON; errors are ``{"error": "<Russian text for the operator's screen>"}``)::

    POST /api/operators/{id}/escalate    {"agency": "sfr"}

200: the caller is on their way to the agency and the operator is in wrap-up; 400: bad body
or an agency not in the allow-list; 401/403: no credentials, or not the operator `{id}`
themselves; 404: unknown operator; 409: the operator is not in a conversation, or the caller
has already hung up; 503: no AMI link to Asterisk, or the audit log unavailable (the call stays
with the operator).

Only the operator holding the call may move it: the route admits operators and supervisors
(`hotline.access`), then only ``actor.user_id == {id}`` (`agents.acting.require_self`), and
the ACD node says whom that operator is talking to (`operator.call_id`, state ``talking``).
A supervisor cannot move someone else's caller. The escalation is audited (who, which call,
which agency) before the caller is moved; no audit entry, no move.

Tier 2 and other groups are `routing.node.AcdNode.escalate`; this module adds the one target
the core cannot reach: a number outside the hotline.

How the caller leaves the operator
----------------------------------
The operator talks to the caller over a ``Dial`` run from the caller's own FastAGI session
(`routing.connect.connect_call`). That session is blocked inside ``EXEC Dial`` for the whole
conversation: it cannot be asked to dial anything else until Dial returns, and ending the
operator's leg would only hand control back to the menu, which knows nothing of agencies.
So the controller moves the caller's channel with AMI:

1. ``Setvar`` on the caller's channel: ``_HOTLINE_CALL``, ``_HOTLINE_AGENCY``,
   ``_HOTLINE_DATA`` and ``_HOTLINE_HISTORY`` (JSON, percent-encoded so the value is one
   safe ASCII token). The leading ``_`` makes the outgoing leg inherit them.
2. ``Redirect`` of the caller's channel to ``<number>@hotline-escalate-out`` (asterisk-conf/
   extensions.conf). The channel is named by its uniqueid, which is the ACD's call id
   (``agi_uniqueid``): Asterisk 22 looks a channel up by name, then by uniqueid, so nothing
   more needs storing. Redirect pulls the caller out of the Dial bridge; the operator's leg,
   left alone in it, is hung up; the caller's AGI gets ``HANGUP`` and its session ends
   (`connect_call` sees the caller gone and finds the conversation already closed).
3. The context dials ``PJSIP/<number>@${HOTLINE_TRUNK}``; a pre-dial handler puts the four
   values on the INVITE as ``X-Hotline-*`` headers, so the agency receives the data.

The number never comes from the operator: only an agency id, looked up in the allow-list
``dialplans/agencies.yaml`` (validated at file:line, numbers normalised to 11 digits
``7XXXXXXXXXX``), and the dialplan context only matches such numbers. An operator cannot
dial an arbitrary number from here.

Why not the AGI side: the caller's session is inside Dial, so an AGI command cannot be
sent until the operator's leg ends, and the code after Dial (`connect_call`, the menus)
would need to learn about agencies and a "pending escalation" flag shared between the HTTP
request and the session - two owners of one decision. Redirect is one atomic move inside
Asterisk, needs no change to the call path, and works while the session is blocked.

After a successful Redirect the escalation is appended to the caller's ACD history and
logged against the call (``call escalated to an outside agency``), and the ACD ends the
conversation: the operator goes into timed wrap-up as after any call. If AMI is down or
refuses, nothing changes: the operator still has the caller.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from agents.acting import ActingRefused, audit_act, require_self
from hotline.access import actor_of, allow, people
from hotline.ami.client import AmiClient
from hotline.ami.errors import AmiActionError, AmiError
from hotline.audit import AuditLog
from hotline.auth import Role
from hotline.jsonbody import BadJsonBody, read_json_object
from hotline.logs import bind_call
from hotline.yamldoc import YamlDoc, line_of
from routing.node import AcdNode
from routing.operators import OperatorState

__all__ = [
    "ESCALATION_CONTEXT",
    "Agency",
    "add_escalation_routes",
    "escalation_variables",
    "load_agencies",
]

log = logging.getLogger("hotline.agents")

# The dialplan context the caller is redirected to (asterisk-conf/extensions.conf).
ESCALATION_CONTEXT: Final = "hotline-escalate-out"
# Longest percent-encoded value put on a SIP header: INVITEs stay well under a UDP datagram.
MAX_HEADER_VALUE: Final = 900

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_NUMBER_PUNCTUATION = re.compile(r"[\s()\-]")


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    number: str  # 7XXXXXXXXXX: what the dialplan context dials through the trunk
    line: int  # where it is defined, for messages


def load_agencies(path: str | Path) -> dict[str, Agency]:
    """Agency id -> agency, from the allow-list file. Raises `hotline.yamldoc.YamlFileError`
    (``path:line: ...``) for anything malformed."""
    doc = YamlDoc(path)
    top = doc.mapping(doc.root, "the agencies file")
    doc.check_keys(top, {"agencies"}, {"agencies"}, doc.root)
    _, node = top["agencies"]
    agencies: dict[str, Agency] = {}
    numbers: dict[str, str] = {}
    for agency_id, (key, value) in doc.mapping(node, "agencies").items():
        if not _ID.match(agency_id):
            raise doc.error(key, f"agency id {agency_id!r}: latin letters, digits, - and _")
        fields = doc.mapping(value, f"agency {agency_id!r}")
        doc.check_keys(fields, {"name", "number"}, {"name", "number"}, value)
        number_node = fields["number"][1]
        number = normalise_number(doc.text(number_node, f"{agency_id}: number"))
        if number is None:
            raise doc.error(
                number_node, f"{agency_id}: number must be 11 digits starting with 7 or 8"
            )
        if number in numbers:
            raise doc.error(number_node, f"{agency_id}: same number as {numbers[number]!r}")
        numbers[number] = agency_id
        name = doc.text(fields["name"][1], f"{agency_id}: name")
        agencies[agency_id] = Agency(agency_id, name, number, line_of(key))
    if not agencies:
        raise doc.error(node, "no agencies listed")
    return agencies


def normalise_number(text: str) -> str | None:
    """``8 800 100-00-01``, ``+7 (800) 1000001`` -> ``78001000001``; None if not Russian 11."""
    digits = _NUMBER_PUNCTUATION.sub("", text).removeprefix("+")
    if len(digits) != 11 or not digits.isdigit() or digits[0] not in "78":
        return None
    return "7" + digits[1:]


def escalation_variables(
    call_id: str, agency: Agency, data: Mapping[str, str], history: list[str]
) -> list[tuple[str, str]]:
    """The channel variables the dialplan turns into X-Hotline-* headers (see module doc).
    Oldest history entries are dropped first when the value would be too long."""
    encoded_data = _encode(dict(data))
    if len(encoded_data) > MAX_HEADER_VALUE:
        encoded_data = _encode({"truncated": "1"})
    kept = list(history)
    while len(_encode(kept)) > MAX_HEADER_VALUE:
        kept.pop(0)
    return [
        ("_HOTLINE_CALL", quote(call_id, safe="")),
        ("_HOTLINE_AGENCY", agency.id),
        ("_HOTLINE_DATA", encoded_data),
        ("_HOTLINE_HISTORY", _encode(kept)),
    ]


def _encode(value: object) -> str:
    return quote(json.dumps(value, ensure_ascii=False, separators=(",", ":")), safe="")


class _Escalation:
    """What the route needs, kept on the app (no module state)."""

    def __init__(
        self,
        node: AcdNode,
        ami: Callable[[], AmiClient | None],
        agencies: Mapping[str, Agency],
        audit: AuditLog,
    ) -> None:
        self.node = node
        self.ami = ami
        self.audit = audit
        self.agencies = dict(agencies)
        self.in_flight: set[str] = set()  # calls being moved: a second press is refused


_STATE: Final = web.AppKey("escalation", _Escalation)


def add_escalation_routes(
    app: web.Application,
    node: AcdNode,
    ami_client_getter: Callable[[], AmiClient | None],
    agencies: Mapping[str, Agency],
    audit: AuditLog,
) -> None:
    """Mount ``POST /api/operators/{id}/escalate``. `ami_client_getter` returns the
    controller's AMI client (None when AMI is disabled); escalations go to `audit`."""
    app[_STATE] = _Escalation(node, ami_client_getter, agencies, audit)
    app.router.add_post("/api/operators/{op_id}/escalate", _escalate)


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@allow(people(Role.OPERATOR, Role.SUPERVISOR))
async def _escalate(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    try:
        reply = await _handle(state, request)
    except (_Refused, ActingRefused) as refused:
        return web.json_response({"error": refused.text}, status=refused.status)
    return web.json_response(reply)


async def _handle(state: _Escalation, request: web.Request) -> dict[str, Any]:
    node = state.node
    op_id = request.match_info["op_id"]
    actor = actor_of(request)
    require_self(request, actor, op_id)  # only the holder: checked before anything is told
    operator = node.acd.operators.get(op_id)
    if operator is None:
        raise _Refused(404, "Оператор не найден. Проверьте логин.")
    agency = state.agencies.get(await _agency_id(request))
    if agency is None:
        names = ", ".join(f"{a.id} ({a.name})" for a in state.agencies.values())
        raise _Refused(400, f"Такого ведомства нет в списке. Доступны: {names}.")
    call_id = operator.call_id
    caller = node.acd.callers.get(call_id or "")
    if operator.state is not OperatorState.TALKING or caller is None or call_id is None:
        raise _Refused(409, "Вы сейчас не в разговоре: передавать некого.")
    if call_id in state.in_flight:
        raise _Refused(409, "Этот звонок уже передаётся.")
    ami = state.ami()
    if ami is None or not ami.connected:
        raise _Refused(503, _NO_PBX)
    state.in_flight.add(call_id)
    try:
        detail = {"call": call_id, "agency": agency.id}
        await audit_act(state.audit, request, actor, "escalate", op_id, detail)
        with bind_call(call_id):
            # The agency sees the whole route, this move included (its INVITE carried an
            # empty history when the entry was added after the move).
            entry = f"{caller.group}:{op_id}->agency:{agency.id}"
            await _move_caller(ami, call_id, agency, caller.data, [*caller.history, entry])
            caller.history.append(entry)
            log.info(
                "call escalated to an outside agency",
                extra={"operator": op_id, "agency": agency.id, "history": caller.history},
            )
            if caller.state == "talking" and node.acd.callers.get(call_id) is caller:
                await node.end_call(call_id)  # the session may have closed it already
    finally:
        state.in_flight.discard(call_id)
    return {
        "id": op_id,
        "state": node.acd.operators[op_id].state.value,
        "call": call_id,
        "agency": agency.id,
        "agency_name": agency.name,
    }


_NO_PBX = "Нет связи с АТС: передать звонок сейчас нельзя. Абонент остаётся на линии с вами."


async def _agency_id(request: web.Request) -> str:
    try:
        body = await read_json_object(request)
    except BadJsonBody as refused:
        if refused.status_code != 400:
            raise _Refused(refused.status_code, refused.message) from None
        body = {}  # the usage hint below says more than "not an object"
    if not isinstance(body.get("agency"), str):
        raise _Refused(400, 'Некорректный запрос: ожидается {"agency": "<код ведомства>"}.')
    return str(body["agency"])


async def _move_caller(
    ami: AmiClient, call_id: str, agency: Agency, data: Mapping[str, str], history: list[str]
) -> None:
    """Setvar the call's data on the caller's channel, then Redirect it to the agency."""
    try:
        for name, value in escalation_variables(call_id, agency, data, history):
            await ami.action("Setvar", Channel=call_id, Variable=name, Value=value)
        await ami.action(
            "Redirect",
            Channel=call_id,
            Context=ESCALATION_CONTEXT,
            Exten=agency.number,
            Priority="1",
        )
    except AmiActionError as refused:
        log.warning("escalation refused by Asterisk: %s", refused, extra={"agency": agency.id})
        raise _Refused(409, "Абонент уже положил трубку: передавать некого.") from refused
    except (TimeoutError, AmiError) as failed:
        log.error("escalation failed: AMI: %s", failed, extra={"agency": agency.id})
        raise _Refused(503, _NO_PBX) from failed
