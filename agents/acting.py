"""Who may act on an operator, and the audit of every such act.

The access middleware (`hotline.access`) has already let only operators and supervisors reach
``/api/operators/{id}/...``; the rules that need the path's `{id}` are here:

* an operator acts only as themselves (``actor.user_id == id``), never for a colleague;
* a supervisor may act on another operator only with a reason in the body,
  ``{"why": "..."}`` (one line, up to 200 characters), which the audit keeps;
* escalation (`agents.escalation`) is for the operator holding the call only: a supervisor
  does not move someone else's caller (`require_self`).

Every accepted act is written to the audit log (`hotline.audit.AuditLog`) before it is done:
who (user id, role), whom (the operator), what (``operator.<action>``), why (the supervisor's
reason) and from where. No audit entry, no act: an audit log we cannot write to answers 503
and changes nothing, as the ACD administration API does. Refusals are security events
(`hotline.security`, category ``access_denied``), so they show on the alerting metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from hotline.audit import AuditLog
from hotline.auth import Actor, Role
from hotline.security import SecurityCategory, security_event

__all__ = ["MAX_WHY", "ActingRefused", "audit_act", "check_acting", "require_self"]

log = logging.getLogger("hotline.agents")

MAX_WHY: Final = 200
_PATH_SHOWN: Final = 200


class ActingRefused(Exception):
    """An act refused before anything changed: HTTP status and Russian text for the screen."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _refused(request: web.Request, actor: Actor, status: int, text: str, rule: str) -> None:
    security_event(
        SecurityCategory.ACCESS_DENIED,
        "operator act refused",
        method=request.method,
        path=request.path[:_PATH_SHOWN],
        source=request.remote or "unknown",
        user=actor.user_id,
        role=actor.role,
        rule=rule,
    )
    raise ActingRefused(status, text)


def require_self(request: web.Request, actor: Actor, op_id: str) -> None:
    """Refuse (403) anyone but operator `op_id` themselves."""
    if actor.user_id != op_id:
        _refused(request, actor, 403, "Действие доступно только самому оператору.", "self only")


def check_acting(
    request: web.Request, actor: Actor, op_id: str, body: Mapping[str, Any]
) -> str | None:
    """Whether `actor` may act on operator `op_id`: None for themselves, the supervisor's
    reason for someone else; raises `ActingRefused` (403 or 400) otherwise."""
    if actor.user_id == op_id:
        return None
    if actor.role != Role.SUPERVISOR:
        _refused(
            request, actor, 403, "Оператор может действовать только от своего имени.", "self only"
        )
    why = body.get("why")
    if not isinstance(why, str) or not why.strip():
        _refused(
            request,
            actor,
            400,
            'Укажите причину вмешательства: {"why": "..."}. Она попадёт в журнал аудита.',
            "supervisor without reason",
        )
    assert isinstance(why, str)
    if len(why) > MAX_WHY or any(ch in why for ch in "\r\n\0"):
        _refused(
            request,
            actor,
            400,
            f"Причина вмешательства: одна строка, не длиннее {MAX_WHY} символов.",
            "supervisor reason malformed",
        )
    return why.strip()


async def audit_act(
    audit: AuditLog,
    request: web.Request,
    actor: Actor,
    action: str,
    op_id: str,
    detail: Mapping[str, Any],
) -> None:
    """Record the act before it is done; raises `ActingRefused` (503) if the log cannot take
    it, so nothing is done unaudited."""
    try:
        await audit.record(
            actor,
            f"operator.{action}",
            recording_id=None,
            source=request.remote or "unknown",
            outcome="accepted",
            detail={"operator": op_id, **detail},
        )
    except Exception as error:  # any database error means the same here
        log.error("operator act refused: audit log unavailable: %s", error)
        raise ActingRefused(503, "Журнал аудита недоступен: действие не выполнено.") from None
