"""Access to recordings: who may do what, bearer tokens, streaming decryption, the HTTP API.


* `PERMISSIONS`: role -> allowed actions. Quality auditors, supervisors and security officers
  may list, read metadata, play, download and clip; operators never touch recordings; sampling
  is for auditors and supervisors; legal holds for security officers; purging for the retention
  job (role `system`). An unknown or absent role may do nothing.
* `TokenBook`: the token file (`AccessSettings.tokens_file`, YAML) mapping bearer tokens to a
  user and a role. It stores only the SHA-256 of each token, so the file itself opens nothing;
  `hotline recordings token --user U --role R` prints a fresh token and the line to add.

      users:
        - user: ivanova          # who the audit log will name
          role: quality_auditor  # quality_auditor, supervisor, security_officer, operator, admin
          token_sha256: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b

* `RecordingAccess`: checks the policy, loads the recording, writes the audit entry (before any
  byte is served: no audit, no access) and decrypts the stored object as a stream.
* `install(app, engine, recorder_settings, access_settings)`: the `/recordings` API (see
  `add_routes`) on the controller's aiohttp application, storage opened with the app. It
  listens where `[http]` listens (localhost by default): put TLS in front of it, since
  bearer tokens and audio must not cross a network in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NoReturn, Protocol

import yaml
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.store.db import require_utc
from recorder import keys
from recorder.audit import Actor, AuditLog
from recorder.models import Recording, RecordingStore, State
from recorder.sampling import ClipError, export_clip
from recorder.settings import FORMATS, AccessSettings, RecorderSettings
from recorder.storage import Storage, StorageError, StorageUnavailable, open_storage

log = logging.getLogger(__name__)

__all__ = [
    "ACTION_NAMES",
    "PERMISSIONS",
    "READABLE_ACTIONS",
    "TOKEN_ROLES",
    "AccessDenied",
    "AccessSettings",
    "Action",
    "RecordingAccess",
    "Role",
    "TokenBook",
    "TokenFile",
    "TokenFileError",
    "TokenLookup",
    "add_routes",
    "build_app",
    "decrypt_chunks",
    "describe",
    "install",
    "is_allowed",
    "new_token",
    "parse_range",
    "refusal_for_role",
    "token_digest",
]


class Role(StrEnum):
    QUALITY_AUDITOR = "quality_auditor"
    SUPERVISOR = "supervisor"
    SECURITY_OFFICER = "security_officer"
    OPERATOR = "operator"
    ADMIN = "admin"  # telecom admin: edits ACD groups and operators (routing.admin_http)
    SYSTEM = "system"  # the retention job and the admin CLI


class Action(StrEnum):
    LIST = "list"
    METADATA = "metadata"
    PLAY = "play"
    DOWNLOAD = "download"
    CLIP = "clip"
    SAMPLE = "sample"
    HOLD = "hold"
    RELEASE = "release"
    PURGE = "purge"


_READERS: Final = frozenset(
    {Action.LIST, Action.METADATA, Action.PLAY, Action.DOWNLOAD, Action.CLIP}
)
PERMISSIONS: Final[Mapping[str, frozenset[Action]]] = MappingProxyType(
    {
        Role.QUALITY_AUDITOR: _READERS | {Action.SAMPLE},
        Role.SUPERVISOR: _READERS | {Action.SAMPLE},
        Role.SECURITY_OFFICER: _READERS | {Action.HOLD, Action.RELEASE},
        Role.OPERATOR: frozenset(),
        Role.ADMIN: frozenset(),  # configures the ACD; listening to calls is not their job
        Role.SYSTEM: frozenset(Action),
    }
)
# Roles a token file may grant; `system` is only ever the CLI acting on the server itself.
TOKEN_ROLES: Final = frozenset(
    {Role.QUALITY_AUDITOR, Role.SUPERVISOR, Role.SECURITY_OFFICER, Role.OPERATOR, Role.ADMIN}
)


def is_allowed(role: str | None, action: Action) -> bool:
    """True if `role` may perform `action`; unknown, empty or absent roles may do nothing."""
    return action in PERMISSIONS.get(role or "", frozenset())


# --- refusals ---------------------------------------------------------------------------


class AccessDenied(Exception):
    """A request refused (and already audited): HTTP status, Russian message, audit outcome."""

    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome


def refusal_for_role(role: str | None, action: Action) -> AccessDenied:
    if role == Role.OPERATOR:
        return AccessDenied(403, "Операторам доступ к записям разговоров запрещён.", "refused")
    if not role:
        return AccessDenied(403, "Для вашей учётной записи не назначена роль.", "refused")
    if role not in PERMISSIONS:
        return AccessDenied(403, f"Роль «{role}» не предусмотрена: доступ запрещён.", "refused")
    return AccessDenied(
        403, f"Роли «{role}» не разрешено действие «{ACTION_NAMES[action]}».", "refused"
    )


ACTION_NAMES: Final[Mapping[Action, str]] = MappingProxyType(
    {
        Action.LIST: "просмотр списка записей",
        Action.METADATA: "просмотр сведений о записи",
        Action.PLAY: "прослушивание",
        Action.DOWNLOAD: "скачивание",
        Action.CLIP: "выгрузка фрагмента",
        Action.SAMPLE: "выборка для контроля качества",
        Action.HOLD: "установка запрета удаления",
        Action.RELEASE: "снятие запрета удаления",
        Action.PURGE: "удаление",
    }
)


# --- tokens -----------------------------------------------------------------------------


class TokenFileError(Exception):
    """The token file is unusable; the message starts with `file:line:`."""


@dataclass(frozen=True)
class _Grant:
    actor: Actor
    token_sha256: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random bearer token and its SHA-256 (the value for the token file)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


@dataclass(frozen=True)
class TokenBook:
    """Bearer token -> Actor; built from the token file or from a list of grants."""

    grants: tuple[_Grant, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, entries: Mapping[str, Actor]) -> TokenBook:
        """From plain tokens (tests, and tools that generate tokens in memory)."""
        return cls(tuple(_Grant(actor, token_digest(t)) for t, actor in entries.items()))

    def lookup(self, token: str) -> Actor | None:
        digest = token_digest(token)
        found = None
        for grant in self.grants:  # no early exit: the time taken does not say which matched
            if hmac.compare_digest(grant.token_sha256, digest):
                found = grant.actor
        return found

    @classmethod
    def load(cls, path: Path) -> TokenBook:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TokenFileError(f"{path}:1: token file does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise TokenFileError(f"{path}:1: token file cannot be read: {error}") from None
        return cls(tuple(_parse_tokens(path, text)))


class TokenLookup(Protocol):
    """Bearer token -> Actor (None: nobody); `TokenBook` and `TokenFile` are ones."""

    def lookup(self, token: str) -> Actor | None: ...


class TokenFile:
    """The token file as the controller serves it: re-read whenever it changes on disk.

    An admin adds or revokes a user without restarting the controller (and dropping calls).
    A missing file lets nobody in until it is created. A file that breaks while the
    controller runs also lets nobody in (fail closed: the edit may have been a revocation)
    and is logged with its file:line; at construction a broken file raises `TokenFileError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._book = TokenBook()
        self._stamp: tuple[int, int, int] | None = None
        stamp = self._current_stamp()
        if stamp is None:
            log.error(
                "token file %s does not exist: every request that needs a token (recordings, "
                "ACD administration) is refused until an admin creates it",
                self.path,
            )
        else:
            self._book, self._stamp = TokenBook.load(self.path), stamp

    def lookup(self, token: str) -> Actor | None:
        self._refresh()
        return self._book.lookup(token)

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def _refresh(self) -> None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            log.error("token file %s was removed: recordings access refused", self.path)
            self._book = TokenBook()
            return
        try:
            self._book = TokenBook.load(self.path)
        except TokenFileError as error:
            log.error("token file unusable, recordings access refused: %s", error)
            self._book = TokenBook()
        else:
            log.info("token file %s reloaded: %d users", self.path, len(self._book.grants))


def _parse_tokens(path: Path, text: str) -> list[_Grant]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise TokenFileError(f"{path}:{line}: not valid YAML: {error}") from None
    if root is None:
        return []
    users = _mapping(path, root, "the file").get("users")
    if users is None:
        raise TokenFileError(f"{path}:{_line(root)}: the file needs a `users:` list")
    if not isinstance(users, yaml.SequenceNode):
        raise TokenFileError(f"{path}:{_line(users)}: `users` must be a list")
    grants: list[_Grant] = []
    seen: dict[str, int] = {}
    for item in users.value:
        grant = _parse_grant(path, item)
        if grant.token_sha256 in seen:
            raise TokenFileError(
                f"{path}:{_line(item)}: the same token is already given on line "
                f"{seen[grant.token_sha256]}"
            )
        seen[grant.token_sha256] = _line(item)
        grants.append(grant)
    return grants


def _parse_grant(path: Path, node: yaml.Node) -> _Grant:
    fields = _mapping(path, node, "each user")
    unknown = sorted(set(fields) - {"user", "role", "token_sha256"})
    if unknown:
        raise TokenFileError(f"{path}:{_line(fields[unknown[0]])}: unknown key `{unknown[0]}`")
    values = {}
    for key in ("user", "role", "token_sha256"):
        value = fields.get(key)
        if value is None:
            raise TokenFileError(f"{path}:{_line(node)}: user entry lacks `{key}`")
        if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip():
            raise TokenFileError(f"{path}:{_line(value)}: `{key}` must be a non-empty text")
        values[key] = str(value.value).strip()
    if values["role"] not in TOKEN_ROLES:
        raise TokenFileError(
            f"{path}:{_line(fields['role'])}: role `{values['role']}` is not one of "
            f"{', '.join(sorted(TOKEN_ROLES))}"
        )
    digest = values["token_sha256"].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TokenFileError(
            f"{path}:{_line(fields['token_sha256'])}: token_sha256 must be 64 hex digits "
            "(the SHA-256 of the token, never the token itself)"
        )
    return _Grant(Actor(values["user"], values["role"]), digest)


def _mapping(path: Path, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise TokenFileError(f"{path}:{_line(node)}: {what} must be a mapping")
    return {str(key.value): value for key, value in node.value}


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


# --- decryption -------------------------------------------------------------------------


class _FeedBuffer:
    """A file-like `read()` over bytes fed in from an async source, for `keys.iter_decrypt`."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._position = 0

    @property
    def available(self) -> int:
        return len(self._data) - self._position

    def feed(self, chunk: bytes) -> None:
        if self._position > 1 << 20:  # drop what was read, now and then, not on every chunk
            del self._data[: self._position]
            self._position = 0
        self._data.extend(chunk)

    def peek(self, size: int) -> bytes:
        with memoryview(self._data) as view:
            return bytes(view[self._position : self._position + size])

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._position + size)
        with memoryview(self._data) as view:  # one copy, not a slice and then a copy
            piece = bytes(view[self._position : end])
        self._position = end
        return piece


async def decrypt_chunks(data_key: bytes, ciphertext: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Authenticated plaintext chunks of an object in `keys`' streaming format, read lazily.

    `keys.iter_decrypt` reads synchronously and looks one frame ahead; before each step we
    make sure two frames are buffered (or the object has ended), so it never sees a false end.
    Memory stays at a few frames whatever the recording's length.
    """
    buffer = _FeedBuffer()
    exhausted = False

    async def fill(minimum: int) -> None:
        nonlocal exhausted
        while not exhausted and buffer.available < minimum:
            try:
                buffer.feed(await anext(ciphertext))
            except StopAsyncIteration:
                exhausted = True

    await fill(keys.HEADER_SIZE)
    header = buffer.peek(keys.HEADER_SIZE)
    # The header's u32 after the magic is the plaintext chunk size; a bad header is left for
    # iter_decrypt to refuse, so this only sizes the read-ahead.
    chunk_size = struct.unpack_from(">I", header, len(keys.MAGIC))[0] if len(header) >= 12 else 1
    frame = min(max(chunk_size, 1), keys.MAX_CHUNK_SIZE) + keys.TAG_BYTES
    await fill(keys.HEADER_SIZE + 2 * frame)
    plaintext = keys.iter_decrypt(data_key, buffer)  # type: ignore[arg-type]  # read() suffices
    while True:
        try:
            piece = next(plaintext)
        except StopIteration:
            return
        yield piece
        await fill(2 * frame)


# --- the service ------------------------------------------------------------------------


@dataclass
class RecordingAccess:
    """Authorises, audits and serves recordings; shared by the HTTP routes and the CLI."""

    recordings: RecordingStore
    storage: Storage
    key_ring: keys.KeyRing
    audit: AuditLog

    async def authorize(
        self,
        actor: Actor | None,
        action: Action,
        *,
        recording_id: str | None,
        source: str,
        detail: Mapping[str, Any] | None = None,
    ) -> Recording | None:
        """Check role and recording state; audit the outcome either way.

        Returns the recording (None for actions without one, like `list`); raises
        `AccessDenied` after auditing the refusal. The success is audited here too, so a
        caller that got a recording back has already left its trace.
        """
        who = actor or Actor("", "")
        extra = dict(detail or {})
        if not is_allowed(who.role, action):
            denial = refusal_for_role(who.role, action)
            await self._audit(who, action, recording_id, source, denial.outcome, extra)
            raise denial
        recording = None
        if recording_id is not None:
            recording = await self.recordings.get(recording_id)
            denial_or_none = _state_refusal(recording_id, recording, action)
            if denial_or_none is not None:
                await self._audit(who, action, recording_id, source, denial_or_none.outcome, extra)
                raise denial_or_none
        await self._audit(who, action, recording_id, source, "ok", extra)
        return recording

    async def audit_failure(
        self,
        actor: Actor | None,
        action: Action,
        *,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a request that failed for a reason other than authorisation."""
        await self._audit(actor or Actor("", ""), action, recording_id, source, outcome, detail)

    async def _audit(
        self,
        actor: Actor,
        action: Action,
        recording_id: str | None,
        source: str,
        outcome: str,
        detail: Mapping[str, Any] | None,
    ) -> None:
        await self.audit.record(
            actor,
            action.value,
            recording_id=recording_id,
            source=source,
            outcome=outcome,
            detail=detail,
        )

    async def plaintext(self, recording: Recording) -> AsyncIterator[bytes]:
        """The decrypted audio, chunk by chunk (`keys.IntegrityError` if the object was altered,
        `StorageError` if it cannot be read, `keys.KeyError_` if its key is gone)."""
        data_key = self.key_ring.unwrap(recording.call_id, keys.wrapped_key_of(recording))
        if not recording.storage_key:
            raise StorageError(f"recording {recording.call_id} has no stored object")
        async for chunk in decrypt_chunks(data_key, self.storage.read(recording.storage_key)):
            yield chunk


READABLE_ACTIONS: Final = frozenset({Action.PLAY, Action.DOWNLOAD, Action.CLIP})


def _state_refusal(
    recording_id: str, recording: Recording | None, action: Action
) -> AccessDenied | None:
    if recording is None:
        return AccessDenied(404, f"Запись {recording_id} не найдена.", "not_found")
    if action not in READABLE_ACTIONS:
        return None
    purged = AccessDenied(
        410, f"Запись {recording_id} удалена по истечении срока хранения.", "purged"
    )
    if recording.state == State.PURGED:
        return purged
    if recording.state != State.VERIFIED:  # before the pipeline wrapped a key, too
        return AccessDenied(
            409, f"Запись {recording_id} ещё обрабатывается, попробуйте позже.", "not_ready"
        )
    return purged if keys.is_destroyed(recording) else None  # a purge under way


# --- HTTP -------------------------------------------------------------------------------

ACCESS_KEY: Final = web.AppKey("recorder_access", RecordingAccess)
TOKENS_KEY: Final = web.AppKey("recorder_tokens", TokenLookup)
MAX_LIST: Final = 500
_MEDIA_TYPES: Final = MappingProxyType(
    {"opus": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
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
) -> None:
    """Everything the controller needs to serve `/recordings` on its aiohttp `app`.

    The token file is read now, so a broken one stops start-up with its file:line; a missing
    one refuses every request until an admin creates it, and changes are picked up without a
    restart (`TokenFile`). Storage is opened when the app starts and closed when it stops.
    """
    tokens = TokenFile(settings.tokens_file)
    key_ring = keys.KeyRing(keys.MasterKeyStore(recorder.keys_dir), recorder.master_key_id)

    async def storage_lifetime(app: web.Application) -> AsyncIterator[None]:
        async with open_storage(recorder) as storage:
            app[ACCESS_KEY] = RecordingAccess(
                RecordingStore(engine), storage, key_ring, AuditLog(engine)
            )
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
    """The authenticated actor; a missing or unknown token is audited and raises AccessDenied."""
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
) -> tuple[Actor, Recording | None]:
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


def describe(recording: Recording) -> dict[str, Any]:
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


@_handler
async def _list(request: web.Request) -> web.StreamResponse:
    try:
        filters = _list_filters(request)
    except _BadRequest as problem:
        await _refuse_bad_request(request, Action.LIST, str(problem))
    audited = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()}
    await _authorized(request, Action.LIST, audited)
    stmt = select(Recording).order_by(Recording.started_at.desc(), Recording.id.desc())
    column_of = {"operator": Recording.operator, "category": Recording.retention_category}
    column_of["state"] = Recording.state
    for name, column in column_of.items():
        if name in filters:
            stmt = stmt.where(column == filters[name])
    if "since" in filters:
        stmt = stmt.where(Recording.started_at >= filters["since"])
    if "until" in filters:
        stmt = stmt.where(Recording.started_at < filters["until"])
    stmt = stmt.limit(filters["limit"]).offset(filters["offset"])
    async with request.app[ACCESS_KEY].recordings.sessions() as session:
        rows = list((await session.execute(stmt)).scalars())
    return web.json_response(
        {"recordings": [describe(row) for row in rows]},
        headers={"Cache-Control": "no-store"},
        dumps=_dumps_russian,
    )


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


@_handler
async def _audio(request: web.Request) -> web.StreamResponse:
    return await _serve_audio(request, Action.PLAY, "inline")


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
    return FORMATS.get(audio_format, (".bin",))[0]


async def _first_chunk(
    request: web.Request,
    actor: Actor,
    action: Action,
    recording: Recording,
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
    recording: Recording,
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


@_handler
async def _hold(request: web.Request) -> web.StreamResponse:
    # imported here: retention builds on this module's policy, so it cannot be imported above
    from recorder.retention import set_hold

    hold = request.method == "PUT"
    action = Action.HOLD if hold else Action.RELEASE
    actor = await _caller(request, action)
    try:
        body = await request.json()
        reason = str(body.get("reason", "")).strip() if isinstance(body, dict) else ""
    except ValueError:
        reason = ""
    if not reason:
        await _refuse_bad_request(
            request, action, 'Укажите основание: {"reason": "номер дела или распоряжения"}.'
        )
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
