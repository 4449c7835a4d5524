"""Which handler serves which FastAGI script.

``AGI(agi://controller/hotline?did=88001000001)`` names the script ``hotline``; the query
string is the handler's business (`AgiRequest`). An unknown script is refused by the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hotline.agi.session import AgiSession

Handler = Callable[[AgiSession], Awaitable[None]]
"""One call: ``async def handler(session: AgiSession) -> None``; the server closes the socket
after it returns."""


class Router:
    """Which handler serves which script: ``router.add("hotline", handler)`` serves
    ``AGI(agi://controller/hotline?did=88001000001)``."""

    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, script: str, handler: Handler) -> None:
        name = script.strip("/")
        if not name or "?" in name:
            raise ValueError(f"not a script name: {script!r}")
        if name in self._handlers:
            raise ValueError(f"script {name!r} already has a handler")
        self._handlers[name] = handler

    def resolve(self, script: str) -> Handler | None:
        return self._handlers.get(script)

    @property
    def scripts(self) -> list[str]:
        return sorted(self._handlers)
