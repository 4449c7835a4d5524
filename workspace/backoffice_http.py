"""The back office's work queue in the controller's web app: server-rendered Russian pages.

    GET  /backoffice                          the queue: open tickets, soonest due first
    GET  /backoffice/tickets/{id}             one ticket with its contact and comments
    POST /backoffice/tickets/{id}/comment     form: text
    POST /backoffice/tickets/{id}/state       form: state
    POST /backoffice/tickets/{id}/assign      form: assignee ("" to unassign)
    POST /backoffice/tickets/{id}/email       form: email (where the citizen is told)
    GET  /backoffice/static/{name}            the pages' script and style (public, no data)

Who: back-office staff, operators and supervisors (`TicketDesk` narrows it to the groups a
person is a member of; supervisors see all). Forms carry the session's CSRF token
(`csrf_token`); a change answers 303 back to the ticket, a refusal re-renders the ticket with
the reason (400). Every text is escaped by Jinja2's autoescape: a comment is shown, never run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from hotline.access import actor_of, allow, people
from hotline.auth import Role
from hotline.web_pages import add_staff_page
from workspace.model import CATEGORY_TITLES, Category
from workspace.ticket_store import Escalation, TicketState
from workspace.tickets import TicketDesk, TicketRefused, TicketView
from workspace.web_common import PAGES, source_of, static_files

__all__ = ["STATE_TITLES", "TICKETS_KEY", "add_backoffice_routes"]

TICKETS_KEY: Final = web.AppKey("workspace_tickets", TicketDesk)
_WHO: Final = people(Role.BACK_OFFICE, Role.OPERATOR, Role.SUPERVISOR)
_static_files: Final = static_files(
    {"backoffice.js": "text/javascript", "backoffice.css": "text/css"}
)
_MOSCOW: Final = ZoneInfo("Europe/Moscow")
STATE_TITLES: Final = {
    TicketState.NEW: "Новая",
    TicketState.IN_PROGRESS: "В работе",
    TicketState.WAITING_CITIZEN: "Ждём гражданина",
    TicketState.RESOLVED: "Решена",
    TicketState.CLOSED: "Закрыта",
}


def add_backoffice_routes(app: web.Application, tickets: TicketDesk) -> None:
    app[TICKETS_KEY] = tickets
    app.router.add_get("/backoffice", _queue)
    add_staff_page(app, "/backoffice", "Заявки бэк-офиса")
    app.router.add_get("/backoffice/tickets/{id}", _ticket)
    app.router.add_post("/backoffice/tickets/{id}/comment", _comment)
    app.router.add_post("/backoffice/tickets/{id}/state", _state)
    app.router.add_post("/backoffice/tickets/{id}/assign", _assign)
    app.router.add_post("/backoffice/tickets/{id}/email", _email)
    app.router.add_get("/backoffice/static/{name}", _static_files)


def _moscow(at: datetime) -> str:
    return at.astimezone(_MOSCOW).strftime("%d.%m.%Y %H:%M")


def _page(name: str, status: int = 200, **values: Any) -> web.Response:
    html = PAGES.get_template(name).render(
        moscow=_moscow, states=STATE_TITLES, categories=CATEGORY_TITLES, **values
    )
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'self'"}
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


@allow(_WHO)
async def _queue(request: web.Request) -> web.Response:
    desk = request.app[TICKETS_KEY]
    actor = actor_of(request)
    rows = await desk.queue(actor=actor, source=source_of(request))
    now = desk.now()
    groups = desk.backoffice.groups
    return _page(
        "backoffice_queue.html",
        rows=rows,
        now=now,
        user=actor.user_id,
        everyone=desk.visible_groups(actor) is None,
        group_names={g: groups[g].name if g in groups else g for g in {r.group for r in rows}},
        overdue=sum(1 for r in rows if r.due_at <= now or r.escalation is Escalation.OVERDUE),
        near=sum(1 for r in rows if r.escalation is Escalation.NEAR and r.due_at > now),
    )


def _ticket_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 12:
        raise web.HTTPNotFound(text="Заявка не найдена.")
    return int(text)


async def _render_ticket(
    request: web.Request, view: TicketView, *, error: str = "", status: int = 200
) -> web.Response:
    desk = request.app[TICKETS_KEY]
    actor = actor_of(request)
    group = desk.backoffice.groups.get(view.ticket.row.group)
    return _page(
        "backoffice_ticket.html",
        status,
        view=view,
        t=view.ticket.row,
        c=view.contact,
        now=desk.now(),
        user=actor.user_id,
        group_name=group.name if group else view.ticket.row.group,
        members=sorted(group.members) if group else [],
        csrf_token=actor.csrf_token or "",
        error=error,
        category_title=CATEGORY_TITLES.get(Category(view.contact.category), ""),
    )


@allow(_WHO)
async def _ticket(request: web.Request) -> web.Response:
    desk = request.app[TICKETS_KEY]
    view = await desk.view(_ticket_id(request), actor=actor_of(request), source=source_of(request))
    if view is None:
        raise web.HTTPNotFound(text="Заявка не найдена.")
    return await _render_ticket(request, view)


async def _change(request: web.Request, action: str) -> web.Response:
    desk = request.app[TICKETS_KEY]
    ticket_id = _ticket_id(request)
    actor, source = actor_of(request), source_of(request)
    form = await request.post()
    value = form.get(action, "")
    text = value if isinstance(value, str) else ""
    try:
        if action == "comment":
            await desk.comment(ticket_id, text, actor=actor, source=source)
        elif action == "state":
            if text not in {s.value for s in TicketState}:
                raise TicketRefused("Выберите состояние заявки.")
            await desk.move(ticket_id, TicketState(text), actor=actor, source=source)
        elif action == "assignee":
            await desk.assign(ticket_id, text.strip() or None, actor=actor, source=source)
        else:
            await desk.set_email(ticket_id, text.strip() or None, actor=actor, source=source)
    except LookupError:
        raise web.HTTPNotFound(text="Заявка не найдена.") from None
    except TicketRefused as refused:
        view = await desk.view(ticket_id, actor=actor, source=source)
        assert view is not None
        return await _render_ticket(request, view, error=str(refused), status=400)
    raise web.HTTPSeeOther(f"/backoffice/tickets/{ticket_id}")


@allow(_WHO)
async def _comment(request: web.Request) -> web.Response:
    return await _change(request, "comment")


@allow(_WHO)
async def _state(request: web.Request) -> web.Response:
    return await _change(request, "state")


@allow(_WHO)
async def _assign(request: web.Request) -> web.Response:
    return await _change(request, "assignee")


@allow(_WHO)
async def _email(request: web.Request) -> web.Response:
    return await _change(request, "email")
