"""A live page's event stream ends when the controller's web server stops: a stream never ends
by itself, and a stop used to wait aiohttp's whole shutdown timeout for it."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from hotline.access import PUBLIC, allow
from hotline.push import sse_frame, stream_events
from hotline.web import build_app


async def health() -> dict[str, str]:
    return {"web": "up"}


async def test_a_stop_ends_the_open_streams_instead_of_waiting_for_them() -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    @allow(PUBLIC)
    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_events(request, queue, lambda item: item)

    app = build_app(health)
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, shutdown_timeout=3600)  # unless ended, a stream holds the stop
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/events") as page:
        assert await page.content.readline() == b": connected\n"
        assert await page.content.readline() == b"\n"
        queue.put_nowait(sse_frame("ring", {"line": "88001000001"}))
        assert await page.content.readline() == b"event: ring\n"
        await page.content.readline()  # its data line
        await page.content.readline()  # the blank line ending it
        stop = asyncio.create_task(runner.cleanup())
        # The page sees its stream end, and the stop completes, long before the hour is up
        # (the guard only keeps a broken build from hanging the suite).
        rest = await asyncio.wait_for(page.content.read(), 60)
        await asyncio.wait_for(stop, 60)
    assert rest == b""
