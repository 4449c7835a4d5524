"""What the workspace's web modules (`http.py`, `backoffice_http.py`, `feedback_http.py`)
share: the Jinja2 templates, JSON answers, the caller's address, and the handler serving a
fixed list of files from ``static/``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import jinja2
from aiohttp import web

from hotline.access import PUBLIC, allow

__all__ = ["PAGES", "json_answer", "source_of", "static_files"]

PAGES: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_STATIC_DIR: Final = Path(__file__).parent / "static"


def json_answer(data: Any, status: int = 200) -> web.Response:
    """JSON as written (Russian text unescaped), never cached."""
    return web.json_response(
        data,
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


def source_of(request: web.Request) -> str:
    """The caller's address as the audit log records it."""
    return request.remote or "unknown"


def static_files(
    files: Mapping[str, str],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A public handler of ``.../static/{name}`` serving only `files` (name -> content type)
    from ``workspace/static``: a fixed list, so no path ever reaches the file system."""

    @allow(PUBLIC)
    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        body = (_STATIC_DIR / name).read_bytes()
        return web.Response(body=body, content_type=files[name])

    return static
