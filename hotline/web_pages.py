"""What the parts' web pages share: their Jinja2 templates, JSON answers in Russian, and the
handler serving a fixed list of files from a part's ``static/`` directory (the operators'
desk and back office in `workspace`, the supervisors' wallboard in `supervision`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from hotline.access import PUBLIC, allow

__all__ = ["json_answer", "static_files", "templates"]


def templates(directory: Path) -> jinja2.Environment:
    """The pages of `directory`: HTML escaped, an unknown name in a template an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def json_answer(data: Any, status: int = 200) -> web.Response:
    """JSON as written (Russian text unescaped), never cached."""
    return web.json_response(
        data,
        status=status,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


def static_files(
    files: Mapping[str, str], directory: Path
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A public handler of ``.../static/{name}`` serving only `files` (name -> content type)
    from `directory`: a fixed list, so no path ever reaches the file system."""

    @allow(PUBLIC)
    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        body = (directory / name).read_bytes()
        return web.Response(body=body, content_type=files[name])

    return static
