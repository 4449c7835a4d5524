"""The supervisors' wallboard over HTTP.

    GET  /supervisor/wallboard                          the wallboard (Russian)
    GET  /supervisor/wallboard/events                   server-sent events: ``board``
    GET  /supervisor/static/{name}                      its script and style (public, no data)
    POST /api/supervisor/calls/{call_id}/listen         the supervisor's phone listens
    POST /api/supervisor/calls/{call_id}/whisper        ... and talks to the operator only
    POST /api/supervisor/calls/{call_id}/barge          ... and talks to both sides

The wallboard: supervisors and admins. Listening to a citizen's conversation: supervisors
only (an admin runs the telephony, not the calls). Answers of the actions: 202 the
supervisor's phone is being rung; 404 no such conversation now; 409 the supervisor has no
phone, or the operator's channel is gone; 503 no AMI link or no audit log. The wallboard's
buttons on operators (pause, log out) call the operators' API (`agents.http`), which asks the
supervisor for a reason and audits it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aiohttp import web

from hotline.access import actor_of, allow, people
from hotline.auth import Role
from hotline.push import stream_events
from hotline.web_pages import add_staff_page, json_answer, static_files, templates
from supervision.spy import Spying, SpyMode, SpyRefused
from supervision.wallboard import Wallboard

__all__ = ["add_supervision_routes"]

WALLBOARD_KEY: Final = web.AppKey("supervision_wallboard", Wallboard)
SPYING_KEY: Final = web.AppKey("supervision_spying", Spying)
_VIEWERS: Final = people(Role.SUPERVISOR, Role.ADMIN)
_LISTENERS: Final = people(Role.SUPERVISOR)
_static: Final = static_files(
    {"wallboard.js": "text/javascript", "wallboard.css": "text/css"},
    Path(__file__).parent / "static",
)
_PAGES: Final = templates(Path(__file__).parent / "templates")


def add_supervision_routes(app: web.Application, wallboard: Wallboard, spying: Spying) -> None:
    app[WALLBOARD_KEY] = wallboard
    app[SPYING_KEY] = spying
    app.router.add_get("/supervisor/wallboard", _page)
    add_staff_page(app, "/supervisor/wallboard", "Табло руководителя смены")
    app.router.add_get("/supervisor/wallboard/events", _events)
    app.router.add_get("/supervisor/static/{name}", _static)
    for mode in SpyMode:
        app.router.add_post(f"/api/supervisor/calls/{{call_id}}/{mode.value}", _spy(mode))


@allow(_VIEWERS)
async def _page(request: web.Request) -> web.Response:
    actor = actor_of(request)
    html = _PAGES.get_template("wallboard.html").render(
        user_id=actor.user_id,
        role=actor.role,
        may_listen=actor.role == Role.SUPERVISOR,
        csrf_token=actor.csrf_token or "",
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    return web.Response(text=html, content_type="text/html", headers=headers)


@allow(_VIEWERS)
async def _events(request: web.Request) -> web.StreamResponse:
    with request.app[WALLBOARD_KEY].subscribe() as frames:
        return await stream_events(request, frames, bytes)


def _spy(mode: SpyMode) -> Any:
    @allow(_LISTENERS)
    async def handle(request: web.Request) -> web.Response:
        spying = request.app[SPYING_KEY]
        call_id = request.match_info["call_id"]
        source = request.remote or "unknown"
        try:
            reply = await spying.start(actor_of(request), call_id, mode, source)
        except SpyRefused as refused:
            return json_answer({"error": refused.text}, refused.status)
        return json_answer(reply, 202)

    return handle
