"""What the workspace's web modules (`http.py`, `backoffice_http.py`, `feedback_http.py`)
share: the Jinja2 templates, JSON answers, the caller's address, and the handler serving a
fixed list of files from ``static/`` (the generic parts are the core's `hotline.web_pages`,
which the supervisors' wallboard uses too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

from hotline import web_pages
from hotline.web_pages import json_answer

__all__ = ["PAGES", "json_answer", "source_of", "static_files"]

PAGES: Final = web_pages.templates(Path(__file__).parent / "templates")
_STATIC_DIR: Final = Path(__file__).parent / "static"


def source_of(request: web.Request) -> str:
    """The caller's address as the audit log records it."""
    return request.remote or "unknown"


def static_files(
    files: Mapping[str, str],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A public handler of ``.../static/{name}`` serving only `files` (name -> content type)
    from ``workspace/static``."""
    return web_pages.static_files(files, _STATIC_DIR)
