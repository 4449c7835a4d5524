"""Reading a JSON object from an HTTP request body, bounded in size, nesting and time.

`json.loads` recurses once per nesting level: a 200 KB body of ``[[[[...`` raises RecursionError
out of the handler (a 500 with a traceback), and the same bytes spread over minutes hold a
handler and a connection open. Every route that takes a JSON body reads it through
`read_json_object`, which refuses such bodies with a 400 (408 for a body that does not arrive)
whose text a person can act on, counts a `BAD_INPUT` security event and never lets a traceback
out. The nesting is measured on the raw text before parsing, in linear time.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

from aiohttp import web

from hotline.security import SecurityCategory, security_event

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DEPTH",
    "BadJsonBody",
    "json_depth",
    "read_json_object",
]

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024  # the largest body any route takes is a group file
DEFAULT_MAX_DEPTH: Final = 16  # the deepest body a route takes today is 3 levels
DEFAULT_BODY_TIMEOUT: Final = 30.0  # seconds for the whole body once the headers are in

# A JSON string (escapes included) or a bracket: strings are skipped whole, so brackets inside
# them do not count. One pass of a regex with no nested repetition: linear in the body size.
_STRING_OR_BRACKET: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)

_NOT_AN_OBJECT: Final = "Некорректный запрос: ожидается JSON-объект."


class BadJsonBody(web.HTTPException):
    """A body refused: a JSON response ``{"error": "<Russian text>"}`` with `status_code`
    (400, 413 or 408). A subclass of aiohttp's HTTPException, so a handler may simply let it
    propagate; `message` is the text, for routes that shape their errors themselves."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": message}, ensure_ascii=False),
            content_type="application/json",
        )
        self.message = message
        self.why = reason  # for the log line, in English: "too deep", "too large"...


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (0 for a scalar), strings ignored."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


async def read_json_object(
    request: web.Request,
    *,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    timeout: float = DEFAULT_BODY_TIMEOUT,  # noqa: ASYNC109 (a deadline for the body, not the call)
    empty: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request's body as a JSON object, or `BadJsonBody`.

    A request with no body gives a copy of `empty` when given (routes where every field is
    optional), else it is refused like any non-object. Refused: more than `max_bytes` bytes
    (413), nesting deeper than `max_depth`, bytes that are not UTF-8 JSON, a JSON value that is
    not an object (400), a body not complete within `timeout` seconds (408).
    """
    if not request.body_exists and empty is not None:
        return dict(empty)
    raw = await _read_capped(request, max_bytes, timeout)
    if not raw.strip() and empty is not None:
        return dict(empty)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(request, 400, _NOT_AN_OBJECT, "not UTF-8") from None
    if json_depth(text) > max_depth:
        message = f"Некорректный запрос: вложенность JSON глубже {max_depth} уровней."
        raise _refuse(request, 400, message, "nested too deep")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so are huge ints
        raise _refuse(request, 400, _NOT_AN_OBJECT, "not JSON") from None
    if not isinstance(body, dict):
        raise _refuse(request, 400, _NOT_AN_OBJECT, "not an object")
    return body


async def _read_capped(request: web.Request, max_bytes: int, seconds: float) -> bytes:
    """Up to `max_bytes` of the body within `seconds`; more, or later, is refused."""
    too_large = f"Слишком большой запрос: не больше {max_bytes // 1024} КБ."
    if request.content_length is not None and request.content_length > max_bytes:
        raise _refuse(request, 413, too_large, "too large")
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(seconds):
            # StreamReader.read(n) may return fewer bytes than asked: loop to the end.
            while chunk := await request.content.read(max_bytes + 1 - received):
                chunks.append(chunk)
                received += len(chunk)
                if received > max_bytes:
                    raise _refuse(request, 413, too_large, "too large")
    except TimeoutError:
        message = "Запрос не получен целиком вовремя: отправьте его ещё раз."
        raise _refuse(request, 408, message, "body too slow") from None
    return b"".join(chunks)


def _refuse(request: web.Request, status: int, message: str, why: str) -> BadJsonBody:
    security_event(
        SecurityCategory.BAD_INPUT,
        f"refused a request body: {why}",
        path=request.path,
        method=request.method,
        peer=request.remote or "unknown",
    )
    return BadJsonBody(status, message, why)
