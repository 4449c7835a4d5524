"""The quality pages, for quality auditors and supervisors (Russian, server-rendered).

    GET  /quality?period=2026-11&per_operator=5   the sample of the period (drawn and audited
                                                  by the recorder through the port) with links,
                                                  and each operator's average score
    GET  /quality/recordings/{id}?period=P        the scoring form: the recorder's audited
                                                  player, its audited clip link, the criteria
    POST /quality/recordings/{id}                 saves the score (CSRF echoed as every form),
                                                  audited `quality.scored`; 303 to the form

A broken criteria file answers 503 with its file:line; a bad period or mark a Russian 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import quote, urlencode

from aiohttp import web

from hotline.access import CSRF_FIELD, actor_of, allow, people
from hotline.audit import AuditLog
from hotline.auth import Actor, Role
from hotline.web_pages import add_staff_page, templates
from hotline.yamldoc import YamlFileError
from quality.criteria import Criterion, MarkError, total_percent
from quality.scores import Score, ScoreStore

__all__ = ["PAGES_KEY", "QualityPages", "SampledRecordings", "add_quality_routes"]

_AUDITORS: Final = people(Role.QUALITY_AUDITOR, Role.SUPERVISOR)
_PAGES: Final = templates(Path(__file__).parent / "templates")
_HEADERS: Final = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
MAX_PER_OPERATOR: Final = 50
MAX_COMMENT: Final = 2000


class SampledRecordings(Protocol):
    """The recorder, as the root plugs it in (`controller.quality_ports.RecorderSamples`)."""

    async def sample(
        self, actor: Actor, period: str, per_operator: int, source: str
    ) -> dict[str, list[str]]:
        """operator -> recording ids, drawn reproducibly and audited; ValueError on a bad
        period (its text is shown)."""
        ...

    async def operator_of(self, recording_id: str) -> str | None:
        """Who answered the recorded call; None when there is no such recording."""
        ...


@dataclass
class QualityPages:
    recordings: SampledRecordings
    scores: ScoreStore
    criteria: Callable[[], list[Criterion]]
    audit: AuditLog
    this_month: Callable[[], str]


PAGES_KEY: Final = web.AppKey("quality_pages", QualityPages)


def add_quality_routes(app: web.Application, pages: QualityPages) -> None:
    app[PAGES_KEY] = pages
    app.router.add_get("/quality", _sample)
    add_staff_page(app, "/quality", "Контроль качества")
    app.router.add_get("/quality/recordings/{id}", _form)
    app.router.add_post("/quality/recordings/{id}", _score)


def _html(name: str, **values: object) -> web.Response:
    body = _PAGES.get_template(name).render(**values)
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers=_HEADERS)


def _criteria(pages: QualityPages) -> list[Criterion]:
    try:
        return pages.criteria()
    except YamlFileError as error:  # an edit broke the file: say where, score nothing
        raise web.HTTPServiceUnavailable(text=f"файл критериев с ошибкой: {error}") from None


def _form_link(recording_id: str, period: str) -> str:
    return f"/quality/recordings/{quote(recording_id, safe='')}?" + urlencode({"period": period})


@allow(_AUDITORS)
async def _sample(request: web.Request) -> web.Response:
    pages = request.app[PAGES_KEY]
    period = request.query.get("period") or pages.this_month()
    text = request.query.get("per_operator", "5")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PER_OPERATOR:
        raise web.HTTPBadRequest(text=f"записей на оператора: от 1 до {MAX_PER_OPERATOR}")
    source = request.remote or "unknown"
    try:
        picks = await pages.recordings.sample(actor_of(request), period, int(text), source)
    except ValueError as error:
        raise web.HTTPBadRequest(
            text="период: месяц (2026-11), неделя ISO (2026-W48) или день (2026-11-27)"
        ) from error
    sample = [
        (operator, [(rid, _form_link(rid, period)) for rid in ids])
        for operator, ids in sorted(picks.items())
    ]
    averages = await pages.scores.averages(period)
    return _html("quality.html", period=period, per_operator=text, sample=sample, averages=averages)


async def _recording(request: web.Request) -> tuple[str, str, str]:
    pages = request.app[PAGES_KEY]
    recording_id = request.match_info["id"]
    operator = await pages.recordings.operator_of(recording_id)
    if operator is None:
        raise web.HTTPNotFound(text="нет такой записи разговора оператора")
    return recording_id, operator, quote(recording_id, safe="")


@allow(_AUDITORS)
async def _form(request: web.Request) -> web.Response:
    pages = request.app[PAGES_KEY]
    criteria = _criteria(pages)
    recording_id, operator, quoted = await _recording(request)
    actor = actor_of(request)
    return _html(
        "score.html",
        recording_id=recording_id,
        operator=operator,
        audio=f"/recordings/{quoted}/audio",
        clip=f"/recordings/{quoted}/clip",
        period=request.query.get("period") or pages.this_month(),
        criteria=criteria,
        scores=await pages.scores.of_recording(recording_id),
        saved=request.query.get("saved") == "1",
        csrf_field=CSRF_FIELD,
        csrf_token=actor.csrf_token or "",
    )


def _marks(form: dict[str, str], criteria: list[Criterion]) -> dict[str, int]:
    marks: dict[str, int] = {}
    for criterion in criteria:
        value = form.get(f"points_{criterion.key}", "").strip()
        if not value.isdigit():
            raise MarkError(f"{criterion.title}: укажите баллы от 0 до {criterion.max_points}")
        marks[criterion.key] = int(value)
    return marks


@allow(_AUDITORS)
async def _score(request: web.Request) -> web.Response:
    pages = request.app[PAGES_KEY]
    criteria = _criteria(pages)
    recording_id, operator, _ = await _recording(request)
    form = {key: str(value) for key, value in (await request.post()).items()}
    period = form.get("period", "").strip()[:20] or pages.this_month()
    comment = form.get("comment", "").strip()
    if len(comment) > MAX_COMMENT:
        raise web.HTTPBadRequest(text=f"комментарий не длиннее {MAX_COMMENT} знаков")
    try:
        marks = _marks(form, criteria)
        total = total_percent(criteria, marks)
    except MarkError as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    actor = actor_of(request)
    score = Score(
        recording_id, operator, actor.user_id, period, marks, total, comment, datetime.now(UTC)
    )
    # the audit entry first: a score no one can trace is not kept
    await pages.audit.record(
        actor,
        "quality.scored",
        recording_id=recording_id,
        source=request.remote or "unknown",
        outcome="ok",
        detail={"operator": operator, "period": period, "points": marks, "total": round(total, 2)},
    )
    await pages.scores.save(score)
    raise web.HTTPSeeOther(_form_link(recording_id, period) + "&saved=1")
