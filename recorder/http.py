"""The `/recordings` HTTP API: list, metadata, playback with Range, download, clips, holds.

* `install(app, engine, recorder_settings, access_settings)`: the API (see `add_routes`) on the
  controller's aiohttp application, storage opened with the app. It listens where `[http]`
  listens (localhost by default): put TLS in front of it, since bearer tokens and audio must
  not cross a network in clear.
* `add_routes` / `build_app`: the same over a `RecordingAccess` given by the caller (tests).

Who may do what is `recorder.permissions`; reading is `recorder.playback.RecordingAccess`,
which audits every request before any byte is served; bearer tokens are `hotline.auth`.

Two gates, each refusal recorded once. In the controller, the access middleware
(`hotline.access`) lets through only staff members (every role a person can hold:
`RECORDINGS_POLICY`) and refuses anyone else with 401/403, counted as a security event
(`hotline_security_events_total{category="access_denied"}` and a log line), not as an audit
row: an anonymous flood must not grow the undeletable audit chain. The staff member it
established (`hotline.access.actor_of`) is the one this module then judges with
`recorder.permissions` and writes to the audit log, allowed or refused (an operator asking for
audio: one ``refused`` row). Served alone (`build_app`, no middleware), this module reads the
bearer token itself and audits the anonymous refusals too.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, NoReturn

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.access import ACTOR_KEY, allow, people
from hotline.audit import AuditLog
from hotline.auth import TOKEN_ROLES, Actor, TokenFile, TokenLookup, token_digest
from hotline.jsonbody import BadJsonBody, read_json_object
from hotline.store.db import require_utc
from recorder import keys
from recorder.models import RecordedCall, RecordingStore, State
from recorder.permissions import AccessDenied, Action, is_allowed, refusal_for_role
from recorder.playback import RecordingAccess
from recorder.retention import set_hold
from recorder.sampling import ClipError, export_clip
from recorder.settings import FORMATS, AccessSettings, RecorderSettings
from recorder.storage import StorageError, StorageUnavailable, open_storage

log = logging.getLogger(__name__)

__all__ = [
    "ACCESS_KEY",
    "MAX_LIST",
    "RECORDINGS_POLICY",
    "TOKENS_KEY",
    "RangeNotSatisfiable",
    "add_routes",
    "build_app",
    "describe",
    "install",
    "parse_range",
]

ACCESS_KEY: Final = web.AppKey("recorder_access", RecordingAccess)
TOKENS_KEY: Final = web.AppKey("recorder_tokens", TokenLookup)
MAX_LIST: Final = 500
# Who the access middleware lets reach these routes: any staff member; what each role may do
# with recordings is `recorder.permissions`, judged and audited here (see the module's text).
RECORDINGS_POLICY: Final = people(*TOKEN_ROLES)
_MEDIA_TYPES: Final = MappingProxyType(
    {"opus": "audio/ogg", "opus-hq": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
)


def add_routes(app: web.Application, access: RecordingAccess, tokens: TokenLookup) -> None:
    """Mount the `/recordings` API on `app` (the controller's HTTP application).

    GET /recordings                     list, filters: operator, category, state, since, until
                                        (ISO 8601), limit (<= 500), offset
    GET /recordings/{id}                metadata
    GET /recordings/{id}/audio          decrypted audio, inline, HTTP Range supported
    GET /recordings/{id}/download       the same as an attachment
    GET /recordings/{id}/clip?from=&to= a re-encoded clip, seconds from the start
    PUT /recordings/{id}/hold           place a legal hold, body {"reason": "..."}
    DELETE /recordings/{id}/hold        lift it, body {"reason": "..."}

    Every request needs `Authorization: Bearer <token>`; answers to people are in Russian.
    """
    app[ACCESS_KEY] = access
    app[TOKENS_KEY] = tokens
    _add_handlers(app)


def _add_handlers(app: web.Application) -> None:
    app.router.add_get("/recordings", _list)
    app.router.add_get("/recordings/{id}", _metadata)
    app.router.add_get("/recordings/{id}/audio", _audio)
    app.router.add_get("/recordings/{id}/download", _download)
    app.router.add_get("/recordings/{id}/clip", _clip)
    app.router.add_put("/recordings/{id}/hold", _hold)
    app.router.add_delete("/recordings/{id}/hold", _hold)


def install(
    app: web.Application,
    engine: AsyncEngine,
    recorder: RecorderSettings,
    settings: AccessSettings,
    audit: AuditLog | None = None,
) -> None:
    """Everything the controller needs to serve `/recordings` on its aiohttp `app`.

    `audit` is the controller's one audit log (keyed, with its refusal windows); without it,
    an unkeyed one on `engine` (tests of this module alone).

    The token file is read now, so a broken one stops start-up with its file:line; a missing
    one refuses every request until an admin creates it, and changes are picked up without a
    restart (`TokenFile`). Storage is opened when the app starts and closed when it stops.
    """
    tokens = TokenFile(settings.tokens_file)
    key_ring = keys.KeyRing(keys.MasterKeyStore(recorder.keys_dir), recorder.master_key_id)
    audit_log = audit or AuditLog(engine)

    async def storage_lifetime(app: web.Application) -> AsyncIterator[None]:
        async with open_storage(recorder) as storage:
            app[ACCESS_KEY] = RecordingAccess(RecordingStore(engine), storage, key_ring, audit_log)
            yield

    app[TOKENS_KEY] = tokens
    app.cleanup_ctx.append(storage_lifetime)
    _add_handlers(app)


def build_app(access: RecordingAccess, tokens: TokenLookup) -> web.Application:
    app = web.Application()
    add_routes(app, access, tokens)
    return app


def _error(status: int, message: str) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="recordings"'
    return web.json_response(
        {"error": message}, status=status, headers=headers, dumps=_dumps_russian
    )


def _dumps_russian(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _source(request: web.Request) -> str:
    return request.remote or "unknown"


async def _caller(request: web.Request, action: Action) -> Actor:
    """The authenticated actor: the one the access middleware established, or (served alone)
    the bearer token's; a missing or unknown token is audited and raises AccessDenied."""
    established = request.get(ACTOR_KEY)
    if isinstance(established, Actor):
        return established
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    actor = request.app[TOKENS_KEY].lookup(token) if scheme.lower() == "bearer" and token else None
    if actor is not None:
        return actor
    if not header:
        denial = AccessDenied(401, "Требуется вход: передайте токен доступа.", "unauthenticated")
        detail: dict[str, Any] = {"reason": "no token"}
    else:
        denial = AccessDenied(401, "Токен доступа не распознан.", "unauthenticated")
        # a prefix of the digest lets a security officer see repeated guesses, not the token
        detail = {"reason": "unknown token", "token_sha256_prefix": token_digest(token)[:12]}
    await request.app[ACCESS_KEY].audit_failure(
        None,
        action,
        recording_id=request.match_info.get("id"),
        source=_source(request),
        outcome=denial.outcome,
        detail=detail,
    )
    raise denial


async def _authorized(
    request: web.Request, action: Action, detail: Mapping[str, Any] | None = None
) -> tuple[Actor, RecordedCall | None]:
    actor = await _caller(request, action)
    recording = await request.app[ACCESS_KEY].authorize(
        actor,
        action,
        recording_id=request.match_info.get("id"),
        source=_source(request),
        detail=detail,
    )
    return actor, recording


def _handler(
    function: Any,
) -> Any:
    """Turn AccessDenied into its JSON answer (it was audited where it was raised)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await function(request)
            return response
        except AccessDenied as denial:
            return _error(denial.status, denial.message)
        except SQLAlchemyError as error:
            # No audit entry, no access: a database we cannot write to closes the door.
            log.error("recordings API refused %s: database unavailable: %s", request.path, error)
            return _error(503, "Журнал доступа недоступен: доступ к записям временно закрыт.")

    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


class _BadRequest(Exception):
    pass


async def _refuse_bad_request(request: web.Request, action: Action, problem: str) -> NoReturn:
    """Audit a malformed request; an actor without the right is refused as such instead."""
    actor = await _caller(request, action)
    if not is_allowed(actor.role, action):
        await _authorized(request, action)  # audits and raises the refusal
    await request.app[ACCESS_KEY].audit_failure(
        actor,
        action,
        recording_id=request.match_info.get("id"),
        source=_source(request),
        outcome="bad_request",
        detail={"problem": problem},
    )
    raise AccessDenied(400, problem, "bad_request")


def describe(recording: RecordedCall) -> dict[str, Any]:
    """What the API shows of a recording: no key material, no storage location."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": recording.call_id,
        "dialled_number": recording.dialled_number,
        "operator": recording.operator,
        "started_at": iso(recording.started_at),
        "ended_at": iso(recording.ended_at),
        "duration_seconds": recording.duration_seconds,
        "format": recording.format,
        "size": recording.plain_size,
        "state": recording.state,
        "retention_category": recording.retention_category,
        "retention_until": iso(recording.retention_until),
        "legal_hold": recording.legal_hold,
        "purged_at": iso(recording.purged_at),
        "playable": recording.state == State.VERIFIED and not keys.is_destroyed(recording),
    }


def _list_filters(request: web.Request) -> dict[str, Any]:
    query = request.query
    filters: dict[str, Any] = {}
    for name in ("operator", "category", "state"):
        if query.get(name):
            filters[name] = query[name]
    for name in ("since", "until"):
        if query.get(name):
            try:
                filters[name] = require_utc(datetime.fromisoformat(query[name]), name)
            except ValueError:
                raise _BadRequest(
                    f"Параметр {name} должен быть датой и временем ISO 8601 с часовым поясом, "
                    "например 2026-11-27T09:00:00+03:00."
                ) from None
    for name, default, high in (("limit", 100, MAX_LIST), ("offset", 0, 10**9)):
        text = query.get(name, str(default))
        if not text.isdigit() or not (name == "offset" or 1 <= int(text) <= high):
            raise _BadRequest(f"Параметр {name} должен быть целым числом от 1 до {high}.")
        filters[name] = int(text)
    return filters


@allow(RECORDINGS_POLICY)
@_handler
async def _list(request: web.Request) -> web.StreamResponse:
    try:
        filters = _list_filters(request)
    except _BadRequest as problem:
        await _refuse_bad_request(request, Action.LIST, str(problem))
    audited = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()}
    await _authorized(request, Action.LIST, audited)
    stmt = select(RecordedCall).order_by(RecordedCall.started_at.desc(), RecordedCall.id.desc())
    column_of = {"operator": RecordedCall.operator, "category": RecordedCall.retention_category}
    column_of["state"] = RecordedCall.state
    for name, column in column_of.items():
        if name in filters:
            stmt = stmt.where(column == filters[name])
    if "since" in filters:
        stmt = stmt.where(RecordedCall.started_at >= filters["since"])
    if "until" in filters:
        stmt = stmt.where(RecordedCall.started_at < filters["until"])
    stmt = stmt.limit(filters["limit"]).offset(filters["offset"])
    async with request.app[ACCESS_KEY].recordings.sessions() as session:
        rows = list((await session.execute(stmt)).scalars())
    return web.json_response(
        {"recordings": [describe(row) for row in rows]},
        headers={"Cache-Control": "no-store"},
        dumps=_dumps_russian,
    )


@allow(RECORDINGS_POLICY)
@_handler
async def _metadata(request: web.Request) -> web.StreamResponse:
    _, recording = await _authorized(request, Action.METADATA)
    assert recording is not None
    return web.json_response(
        describe(recording), headers={"Cache-Control": "no-store"}, dumps=_dumps_russian
    )


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as (first, last) inclusive, None for "the whole thing".

    Several ranges or a malformed header are answered with the whole body (RFC 9110 lets a
    server ignore Range); a range starting past the end raises RangeNotSatisfiable.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, dash, last_text = header[len("bytes=") :].strip().partition("-")
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0:
            raise RangeNotSatisfiable
        return max(size - length, 0), size - 1
    if last_text and not last_text.isdigit():
        return None
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size:
        raise RangeNotSatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


@allow(RECORDINGS_POLICY)
@_handler
async def _audio(request: web.Request) -> web.StreamResponse:
    return await _serve_audio(request, Action.PLAY, "inline")


@allow(RECORDINGS_POLICY)
@_handler
async def _download(request: web.Request) -> web.StreamResponse:
    return await _serve_audio(request, Action.DOWNLOAD, "attachment")


async def _serve_audio(
    request: web.Request, action: Action, disposition: str
) -> web.StreamResponse:
    range_header = request.headers.get("Range")
    actor, recording = await _authorized(
        request, action, {"range": range_header} if range_header else None
    )
    assert recording is not None
    size = recording.plain_size or 0
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return web.Response(
            status=416,
            headers={"Content-Range": f"bytes */{size}"},
            text="Запрошенный диапазон вне записи.",
        )
    first, last = wanted if wanted is not None else (0, size - 1)
    access = request.app[ACCESS_KEY]
    chunks = access.plaintext(recording)
    opened = await _first_chunk(request, actor, action, recording, chunks)
    response = web.StreamResponse(status=206 if wanted is not None else 200)
    response.content_type = _MEDIA_TYPES.get(recording.format, "application/octet-stream")
    response.content_length = last - first + 1 if size else 0
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = (
        f'{disposition}; filename="{recording.call_id}{_suffix(recording.format)}"'
    )
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    await response.prepare(request)
    await _stream_slice(request, actor, action, recording, opened, chunks, response, first, last)
    await response.write_eof()
    return response


def _suffix(audio_format: str) -> str:
    known = FORMATS.get(audio_format)
    return known.suffix if known is not None else ".bin"


async def _first_chunk(
    request: web.Request,
    actor: Actor,
    action: Action,
    recording: RecordedCall,
    chunks: AsyncIterator[bytes],
) -> bytes:
    """Open the object before answering, so a storage or key failure gets a proper status."""
    try:
        return await anext(chunks, b"")
    except StorageUnavailable as error:
        outcome, status, message = (
            "unavailable",
            503,
            "Хранилище записей недоступно, повторите позже.",
        )
        problem = str(error)
    except (StorageError, keys.KeyError_, keys.IntegrityError) as error:
        outcome, status = "error", 500
        message = "Запись не удалось прочитать: объект или ключ повреждён. Сообщите администратору."
        problem = f"{type(error).__name__}: {error}"
    await request.app[ACCESS_KEY].audit_failure(
        actor,
        action,
        recording_id=recording.call_id,
        source=_source(request),
        outcome=outcome,
        detail={"problem": problem},
    )
    raise AccessDenied(status, message, outcome)


async def _stream_slice(
    request: web.Request,
    actor: Actor,
    action: Action,
    recording: RecordedCall,
    first_chunk: bytes,
    chunks: AsyncIterator[bytes],
    response: web.StreamResponse,
    first: int,
    last: int,
) -> None:
    """Write plaintext bytes [first, last] of the stream; decrypting from the start is cheap
    (GiB/s) next to the network, and keeps every frame's authentication in force."""
    position = 0
    try:
        chunk: bytes | None = first_chunk
        while chunk is not None and position <= last:
            end = position + len(chunk)
            if end > first:
                await response.write(chunk[max(first - position, 0) : last - position + 1])
            position = end
            chunk = await anext(chunks, None)
    except (StorageError, keys.IntegrityError) as error:
        # Headers are gone already: record the failure and cut the connection, so the client
        # sees a short body instead of silently wrong audio.
        await request.app[ACCESS_KEY].audit_failure(
            actor,
            action,
            recording_id=recording.call_id,
            source=_source(request),
            outcome="error",
            detail={"problem": f"{type(error).__name__}: {error}", "at_byte": position},
        )
        raise
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()


def _clip_bounds(request: web.Request, recording_duration: float | None) -> tuple[float, float]:
    try:
        start = float(request.query["from"])
        end = float(request.query["to"])
    except (KeyError, ValueError):
        raise _BadRequest(
            "Укажите параметры from и to — начало и конец фрагмента в секундах."
        ) from None
    if not (0 <= start < end) or not all(map(math.isfinite, (start, end))):
        raise _BadRequest("Начало фрагмента должно быть не меньше 0 и меньше конца.")
    if recording_duration is not None and start >= recording_duration:
        raise _BadRequest(
            f"Начало фрагмента за пределами записи (длительность {recording_duration:.1f} с)."
        )
    return start, end


@allow(RECORDINGS_POLICY)
@_handler
async def _clip(request: web.Request) -> web.StreamResponse:
    access = request.app[ACCESS_KEY]
    existing = await access.recordings.get(request.match_info["id"])
    try:
        start, end = _clip_bounds(request, existing.duration_seconds if existing else None)
    except _BadRequest as problem:
        await _refuse_bad_request(request, Action.CLIP, str(problem))
    actor, recording = await _authorized(request, Action.CLIP, {"from": start, "to": end})
    assert recording is not None
    chunks = access.plaintext(recording)
    first = await _first_chunk(request, actor, Action.CLIP, recording, chunks)
    try:
        clip = await export_clip(_prepend(first, chunks), recording.format, start, end)
    except (ClipError, keys.IntegrityError, StorageError) as error:
        await access.audit_failure(
            actor,
            Action.CLIP,
            recording_id=recording.call_id,
            source=_source(request),
            outcome="error",
            detail={"problem": f"{type(error).__name__}: {error}"},
        )
        return _error(500, "Фрагмент не удалось выгрузить. Сообщите администратору.")
    name = f"{recording.call_id}_{start:g}-{end:g}{_suffix(recording.format)}"
    return web.Response(
        body=clip,
        content_type=_MEDIA_TYPES.get(recording.format, "application/octet-stream"),
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


_HOLD_STATUS: Final = MappingProxyType({"not_found": 404, "purged": 410})


@allow(RECORDINGS_POLICY)
@_handler
async def _hold(request: web.Request) -> web.StreamResponse:
    hold = request.method == "PUT"
    action = Action.HOLD if hold else Action.RELEASE
    actor = await _caller(request, action)
    hint = 'Укажите основание: {"reason": "номер дела или распоряжения"}.'
    try:
        body = await read_json_object(request)
    except BadJsonBody as refused:  # too large, too deep, too slow: say so, audited
        await _refuse_bad_request(request, action, refused.message)
    reason = str(body.get("reason", "")).strip()
    if not reason:
        await _refuse_bad_request(request, action, hint)
    access = request.app[ACCESS_KEY]
    result = await set_hold(
        access.recordings.engine,
        access.audit,
        actor,
        request.match_info["id"],
        hold=hold,
        reason=reason,
        source=_source(request),
    )
    if result.outcome == "refused":
        return _error(403, refusal_for_role(actor.role, action).message)
    if result.outcome != "ok":
        return _error(_HOLD_STATUS.get(result.outcome, 500), result.message)
    return web.json_response({"result": result.message}, dumps=_dumps_russian)
