"""Issue 11's hostile-input findings, replayed: each must now fail safely.

JSON bodies nested 10,000 deep, sent slowly or too large; AGI replies with non-ASCII digits or
5,000-digit numbers; phone and passport numbers the log masking missed; files with citizens'
data readable by everyone; FastAGI sessions from strangers or in floods from one peer; HTTP
requests whose headers never end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.jsonbody import BadJsonBody, json_depth, read_json_object
from hotline.security import SECURITY_EVENTS

# --- JSON bodies ---------------------------------------------------------------------------


def bad_input_count() -> float:
    return SECURITY_EVENTS.labels(category="bad_input")._value.get()


@pytest.fixture
async def echo() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A route that echoes the JSON object it read with `read_json_object`."""

    async def handler(request: web.Request) -> web.Response:
        body = await read_json_object(request, timeout=0.5)
        return web.json_response({"got": body})

    app = web.Application()
    app.router.add_post("/echo", handler)
    async with TestClient(TestServer(app)) as client:
        yield client


def test_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "]]]"}]}') == 3
    assert json_depth('"\\"[[[["') == 0
    assert json_depth("[" * 100_000) == 100_000  # linear: no recursion to measure it


async def test_a_deeply_nested_body_is_a_russian_400_counted_as_bad_input(
    echo: TestClient[web.Request, web.Application],
) -> None:
    before = bad_input_count()
    reply = await echo.post("/echo", data=b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    assert reply.status == 400
    assert (await reply.json())["error"].startswith("Некорректный запрос: вложенность JSON")
    assert bad_input_count() == before + 1
    ok = await echo.post("/echo", json={"a": [[["fine"]]], "b": "[[[[[[[[[[[[[[[[[[["})
    assert (await ok.json())["got"] == {"a": [[["fine"]]], "b": "[[[[[[[[[[[[[[[[[[["}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"\xff\xfe{}", 400),
        (b"[1, 2]", 400),
        (b'{"a": 1' + b"0" * 5000 + b"}", 400),  # Python refuses ints over 4,300 digits
        (b'{"a": "' + b"x" * (70 * 1024) + b'"}', 413),
        (b"", 400),
    ],
)
async def test_bodies_that_are_not_a_usable_object_are_refused_without_a_traceback(
    echo: TestClient[web.Request, web.Application],
    body: bytes,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reply = await echo.post("/echo", data=body)
    assert reply.status == status
    assert (await reply.json())["error"]
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_body_that_trickles_in_is_cut_with_408(
    echo: TestClient[web.Request, web.Application],
) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"a": '
        await asyncio.sleep(3600)  # the rest never comes
        yield b"1}"

    reply = await echo.post("/echo", data=trickle())
    assert reply.status == 408 and "не получен целиком" in (await reply.json())["error"]


def test_the_refusal_is_an_http_error_carrying_its_russian_text() -> None:
    refused = BadJsonBody(400, "Некорректный запрос.", "not JSON")
    assert refused.status_code == 400 and refused.text == '{"error": "Некорректный запрос."}'
