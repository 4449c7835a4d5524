"""Server-sent events: what the parts' live pages share (the operators' desk, the supervisors'
wallboard).

* `sse_frame(kind, data)`: one event as the bytes of an SSE frame (JSON data, UTF-8).
* `put_dropping_oldest(queue, item)`: a page that stopped reading (a frozen tab) loses its
  oldest events rather than holding the server's memory; a page reloads its state on reconnect.
* `stream_events(request, queue, encode)`: the response of an events route: a comment on
  connect, then each queued item as `encode` makes it bytes, and a keepalive comment when the
  stream has been silent (proxies close silent streams).
* `end_streams_on_shutdown(app)`: the streams of `app` end when it shuts down. A stream never
  ends by itself, so without it stopping a controller with desks or wallboards open waited
  aiohttp's whole shutdown timeout (60 s) before closing them; the pages reconnect to the
  controller that takes over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web

__all__ = [
    "KEEPALIVE_SECONDS",
    "end_streams_on_shutdown",
    "put_dropping_oldest",
    "sse_frame",
    "stream_events",
]

KEEPALIVE_SECONDS: Final = 15.0
Item = TypeVar("Item")
# The queues of the open streams of an app (see `end_streams_on_shutdown`), and what is put in
# each to end its stream: the stream finishes its response, so the page sees a clean end.
_OPEN_STREAMS: Final[web.AppKey[set[asyncio.Queue[Any]]]] = web.AppKey("hotline_open_streams")
_END_OF_STREAM: Final = object()


def end_streams_on_shutdown(app: web.Application) -> None:
    """End every stream `stream_events` serves for `app` when `app` shuts down."""
    streams: set[asyncio.Queue[Any]] = set()
    app[_OPEN_STREAMS] = streams
    app.on_shutdown.append(_end_open_streams)


async def _end_open_streams(app: web.Application) -> None:
    for queue in app[_OPEN_STREAMS]:
        put_dropping_oldest(queue, _END_OF_STREAM)


def sse_frame(kind: str, data: Any) -> bytes:
    """`data` as the JSON of one ``event: kind`` frame."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {text}\n\n".encode()


def put_dropping_oldest(queue: asyncio.Queue[Item], item: Item) -> None:
    """Queue `item`; a full queue (a reader that stopped) loses its oldest item first."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


async def stream_events(
    request: web.Request,
    queue: asyncio.Queue[Item],
    encode: Callable[[Item], bytes],
    *,
    keepalive: float = KEEPALIVE_SECONDS,
) -> web.StreamResponse:
    """Serve `queue` as an event stream until the client goes away."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    open_streams = request.app.get(_OPEN_STREAMS)
    if open_streams is not None:
        open_streams.add(queue)
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if item is _END_OF_STREAM:  # the server is stopping
                await response.write_eof()
                return response
            await response.write(encode(item))
    except ConnectionResetError:  # the page was closed or reloaded: nothing more to send
        return response
    finally:
        if open_streams is not None:
            open_streams.discard(queue)
