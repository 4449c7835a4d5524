"""The feedback form, the attachments and the app's API over HTTP.

    GET  /desk/feedback                    the form (Russian, server-rendered), operators
    POST /desk/feedback                    the form sent (multipart, CSRF field), operators
    GET  /desk/attachments/{id}            one attachment, decrypted (audited), staff
    POST /api/feedback                     the portal's and the app's form: JSON, scope
                                           feedback:create; attachments as base64
    POST /api/app/call-intents             {"phone", "application"} -> a one-time code,
                                           scope app:intents
    GET  /api/app/contacts?phone=&application=   the citizen's own contacts and their
                                           states (audited), scope app:contacts

Answers carry the contact number as the confirmation number. Errors are Russian: the form
page shows each field's problem beside it; the API answers ``{"error", "fields"}``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from aiohttp import web

from hotline.access import actor_of, allow, people, services
from hotline.auth import Role
from hotline.jsonbody import read_json_object
from hotline.security import SecurityCategory, security_event
from hotline.validators import validate_application, validate_phone
from workspace.feedback import FIELD_LIMITS, FeedbackDesk, FormProblems, read_form
from workspace.intents import CallIntents, TooManyIntents
from workspace.model import CATEGORY_TITLES, Contact
from workspace.scanning import AttachmentRefused, size_text
from workspace.web_common import PAGES, json_answer, source_of

__all__ = ["FEEDBACK_KEY", "INTENTS_KEY", "add_feedback_routes"]

FEEDBACK_KEY: Final = web.AppKey("workspace_feedback", FeedbackDesk)
INTENTS_KEY: Final = web.AppKey("workspace_intents", CallIntents)
MOSCOW: Final = ZoneInfo("Europe/Moscow")
_APP_HISTORY_DAYS: Final = 365
_OPERATORS: Final = people(Role.OPERATOR, Role.SUPERVISOR)
_FORM_FIELDS: Final = ("name", "phone", "application", "description", "category", "expected_by")


def add_feedback_routes(app: web.Application, feedback: FeedbackDesk, intents: CallIntents) -> None:
    app[FEEDBACK_KEY] = feedback
    app[INTENTS_KEY] = intents
    app.router.add_get("/desk/feedback", _form_page)
    app.router.add_post("/desk/feedback", _form_sent)
    app.router.add_get("/desk/attachments/{id}", _attachment)
    app.router.add_post("/api/feedback", _api_feedback)
    app.router.add_post("/api/app/call-intents", _call_intent)
    app.router.add_get("/api/app/contacts", _app_contacts)


def _today(feedback: FeedbackDesk) -> Any:
    return feedback.registry.now().astimezone(MOSCOW).date()


def _render(request: web.Request, status: int = 200, **page: Any) -> web.Response:
    feedback = request.app[FEEDBACK_KEY]
    settings = feedback.settings
    values = {name: "" for name in _FORM_FIELDS} | page.pop("values", {})
    html = PAGES.get_template("feedback.html").render(
        csrf_token=actor_of(request).csrf_token or "",
        categories=list(CATEGORY_TITLES.items()),
        limits=FIELD_LIMITS,
        max_files=settings.max_attachments,
        max_size=size_text(settings.max_attachment_bytes),
        values=values,
        problems={name: "" for name in _FORM_FIELDS} | page.pop("problems", {}),
        confirmed=page.pop("confirmed", ""),
        kept=page.pop("kept", []),
        refusal=page.pop("refusal", ""),
    )
    return web.Response(
        text=html, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


@allow(_OPERATORS)
async def _form_page(request: web.Request) -> web.Response:
    return _render(request)


@allow(_OPERATORS)
async def _form_sent(request: web.Request) -> web.Response:
    feedback = request.app[FEEDBACK_KEY]
    try:
        posted = await request.post()  # bounded by the application's client_max_size
    except web.HTTPRequestEntityTooLarge:
        limit = size_text(request.app._client_max_size)
        return _render(request, 413, refusal=f"Слишком большой запрос: всё вместе до {limit}.")
    fields = {name: posted.get(name, "") for name in _FORM_FIELDS}
    shown = {k: v if isinstance(v, str) else "" for k, v in fields.items()}
    files = [
        # some clients (aiohttp's own) percent-encode non-ASCII names; browsers send UTF-8
        (unquote(part.filename or ""), part.file.read())
        for part in posted.getall("attachments", [])
        if isinstance(part, web.FileField) and (part.filename or "")
    ]
    try:
        form = read_form(fields, _today(feedback))
        done = await feedback.submit(
            form, files, actor=actor_of(request), source=source_of(request)
        )
    except FormProblems as problems:
        return _render(request, 400, values=shown, problems=problems.problems)
    except AttachmentRefused as refused:
        return _render(request, 400, values=shown, refusal=refused.message)
    return _render(
        request, confirmed=str(done.contact.number), kept=[a.name for a in done.attachments]
    )


@allow(_OPERATORS)
async def _attachment(request: web.Request) -> web.Response:
    feedback = request.app[FEEDBACK_KEY]
    found = await feedback.attachments.read(
        request.match_info["id"], actor=actor_of(request), source=source_of(request)
    )
    if found is None:
        return json_answer({"error": "Вложение не найдено."}, 404)
    attachment, content = found
    return web.Response(
        body=content,
        content_type=attachment.media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # always a download: a file is never rendered inside the desk's origin
            "Content-Disposition": f'attachment; filename="attachment-{attachment.id[:8]}"; '
            f"filename*=UTF-8''{_quoted(attachment.name)}",
        },
    )


def _quoted(name: str) -> str:
    return quote(name, safe="")


def _api_files(body: dict[str, Any], feedback: FeedbackDesk) -> list[tuple[str, bytes]]:
    listed = body.get("attachments", [])
    if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
        raise FormProblems({"attachments": "Список объектов {name, content_base64}."})
    if len(listed) > feedback.settings.max_attachments:
        raise AttachmentRefused(f"Не больше {feedback.settings.max_attachments} файлов.", "count")
    files = []
    for item in listed:
        name, data = item.get("name"), item.get("content_base64")
        if not isinstance(name, str) or not isinstance(data, str):
            raise FormProblems({"attachments": "У файла нужны name и content_base64."})
        try:
            files.append((name, base64.b64decode(data, validate=True)))
        except (binascii.Error, ValueError):
            raise FormProblems({"attachments": f"Файл «{name[:60]}»: не base64."}) from None
    return files


@allow(services("feedback:create"))
async def _api_feedback(request: web.Request) -> web.Response:
    feedback = request.app[FEEDBACK_KEY]
    settings = feedback.settings
    # base64 takes 4 bytes per 3: room for every file at its limit and the text fields
    room = settings.max_attachments * (settings.max_attachment_bytes * 4 // 3 + 1024) + 65536
    body = await read_json_object(request, max_bytes=room)
    try:
        form = read_form(body, _today(feedback))
        files = _api_files(body, feedback)
        done = await feedback.submit(
            form, files, actor=actor_of(request), source=source_of(request)
        )
    except FormProblems as problems:
        return json_answer({"error": "Исправьте поля формы.", "fields": problems.problems}, 400)
    except AttachmentRefused as refused:
        return json_answer({"error": refused.message}, 400)
    return json_answer(
        {
            "confirmation_number": str(done.contact.number),
            "attachments": [{"id": a.id, "name": a.name} for a in done.attachments],
        },
        201,
    )


def _citizen(body: Any) -> tuple[str, str] | str:
    """(phone, application) normalised, or the Russian problem."""
    phone = validate_phone(body.get("phone") if isinstance(body.get("phone"), str) else "")
    if not phone:
        return "Неверный телефон."
    raw = body.get("application")
    application = validate_application(raw if isinstance(raw, str) else "")
    if not application:
        return "Неверный номер заявления."
    return phone.normalized, application.normalized


@allow(services("app:intents"))
async def _call_intent(request: web.Request) -> web.Response:
    citizen = _citizen(await read_json_object(request))
    if isinstance(citizen, str):
        return json_answer({"error": citizen}, 400)
    intents = request.app[INTENTS_KEY]
    try:
        issued = await intents.register(*citizen, requested_by=actor_of(request).user_id)
    except TooManyIntents:
        security_event(SecurityCategory.RATE_LIMITED, "call intents over the hourly limit")
        return json_answer(
            {"error": "Слишком много кодов для этого номера: попробуйте позже."}, 429
        )
    valid = max(0, int((issued.expires_at - intents.now()).total_seconds()))
    return json_answer(
        {"code": issued.code, "expires_at": issued.expires_at.isoformat(), "valid_seconds": valid},
        201,
    )


@allow(services("app:contacts"))
async def _app_contacts(request: web.Request) -> web.Response:
    citizen = _citizen(dict(request.query))
    if isinstance(citizen, str):
        return json_answer({"error": citizen}, 400)
    phone, application = citizen
    found = await request.app[FEEDBACK_KEY].registry.history(
        phone=phone, application=application, actor=actor_of(request),
        source=source_of(request), days=_APP_HISTORY_DAYS,
    )  # fmt: skip
    return json_answer({"contacts": [_citizen_view(c) for c in found]})


def _citizen_view(contact: Contact) -> dict[str, Any]:
    """What a citizen may see of their own contact: no operator, no internal notes."""
    return {
        "number": str(contact.number),
        "opened_at": contact.opened_at.isoformat(),
        "channel": contact.channel.value,
        "category": CATEGORY_TITLES[contact.category],
        "state": contact.state.value,
        "resolved_at": contact.closed_at.isoformat() if contact.closed_at else None,
        "expected_by": contact.expected_by.isoformat() if contact.expected_by else None,
    }
