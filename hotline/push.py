"""Server-sent events: what the parts' live pages share (the operators' desk, the supervisors'
wallboard).

* `sse_frame(kind, data)`: one event as the bytes of an SSE frame (JSON data, UTF-8).
* `put_dropping_oldest(queue, item)`: a page that stopped reading (a frozen tab) loses its
  oldest events rather than holding the server's memory; a page reloads its state on reconnect.
* `stream_events(request, queue, encode)`: the response of an events route: a comment on
  connect, then each queued item as `encode` makes it bytes, and a keepalive comment when the
  stream has been silent (proxies close silent streams).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web

__all__ = ["KEEPALIVE_SECONDS", "put_dropping_oldest", "sse_frame", "stream_events"]

KEEPALIVE_SECONDS: Final = 15.0
Item = TypeVar("Item")


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
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(encode(item))
    except ConnectionResetError:  # the page was closed or reloaded: nothing more to send
        return response
