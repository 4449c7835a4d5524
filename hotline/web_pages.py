"""What the parts' web pages share: their Jinja2 templates, JSON answers in Russian, the
handler serving a fixed list of files from a part's ``static/`` directory (the operators'
desk and back office in `workspace`, the supervisors' wallboard in `supervision`), and the list
of staff pages that ``/me`` links to, each shown to whom its own route's policy lets in."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

import jinja2
from aiohttp import web

from hotline.access import PUBLIC, allow, policy_of
from hotline.auth import Actor

__all__ = ["StaffPage", "add_staff_page", "json_answer", "staff_pages", "static_files", "templates"]


class StaffPage(NamedTuple):
    """A page a staff member opens from ``/me``: its path and its Russian title."""

    path: str
    title: str


_STAFF_PAGES: Final = web.AppKey("hotline_staff_pages", list[StaffPage])


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


def add_staff_page(app: web.Application, path: str, title: str) -> None:
    """List the GET route `path` (added by the part beside this call) among the pages ``/me``
    links to; who sees the link is who its route's policy lets in."""
    app.setdefault(_STAFF_PAGES, []).append(StaffPage(path, title))


def staff_pages(app: web.Application, actor: Actor) -> list[StaffPage]:
    """The listed pages whose GET route admits `actor`, in the order they were listed."""
    handlers = {
        route.resource.canonical: route.handler
        for route in app.router.routes()
        if route.method == "GET" and route.resource is not None
    }
    pages = []
    for page in app.get(_STAFF_PAGES, []):
        policy = policy_of(handlers.get(page.path))
        if policy is not None and policy.admits(actor):
            pages.append(page)
    return pages
