"""The application-status service as the ``lookup`` node sees it: one HTTP GET, three outcomes."""

from __future__ import annotations

import logging

import aiohttp

from ivr.menu.model import LookupResult

log = logging.getLogger(__name__)

# A field longer than this is not something to read out to a caller.
_MAX_FIELD_CHARS = 200


class HttpStatusService:
    """GET ``<base_url><path>``: 200 + JSON object = found, 404 = not found, else failure."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def get(self, path: str, seconds: float) -> LookupResult:
        limit = aiohttp.ClientTimeout(total=seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=limit) as http,
                http.get(self.base_url + path) as answer,
            ):
                if answer.status == 404:
                    return LookupResult("not_found")
                if answer.status != 200:
                    log.warning("status service error", extra={"http_status": answer.status})
                    return LookupResult("failure")
                body = await answer.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            log.warning("status service unreachable", extra={"error": type(error).__name__})
            return LookupResult("failure")
        if not isinstance(body, dict):
            return LookupResult("failure")
        return LookupResult("found", _scalar_fields(body))


def _scalar_fields(body: dict[str, object]) -> dict[str, str]:
    fields = {}
    for name, value in body.items():
        if isinstance(value, str | int | float | bool) and name.isidentifier():
            fields[name] = str(value)[:_MAX_FIELD_CHARS]
    return fields
