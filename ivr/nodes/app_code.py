"""``app_code``: a caller who pressed "call the hotline" in the mobile app keys in the code it
showed; a valid one gives the menu the application number, so it need not ask.

    app-code:
      kind: app_code
      prompts: [hotline/enter-app-code]   # "...наберите шестизначный код и решётку"
      store: application    # the variable the application number goes to (the pop shows it)
      timeout: 10
      next: status          # the code stood for an application: it is in `store`
      otherwise: ask-application   # no code, or one that did not work: the menu as usual

The code (6 digits) is checked through the intents port (`ivr.menu.model.AppCodes`, the
workspace's, wired by the root) against the calling number: caller ID alone proves nothing,
the code is required. A wrong, expired or spent code goes on exactly like no code: the caller
hears nothing different and the menu's log notes the same words, so trying codes tells
nothing. One try per call (the store also burns a phone's codes after a few wrong ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next
from ivr.nodes.common import Prompts, play

__all__ = ["CODE_LENGTH", "AppCodeNode", "parse"]

CODE_LENGTH = 6


@dataclass(frozen=True)
class AppCodeNode:
    kind: ClassVar[str] = "app_code"
    id: str
    at: Location
    files: Prompts
    store: str
    timeout: float
    next: tuple[str, Location]
    otherwise: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next, self.otherwise)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return self.files

    async def run(self, call: Call) -> Next:
        typed = await self._read(call)
        intents = call.services.intents
        application = None
        if len(typed) == CODE_LENGTH and typed.isdigit() and intents is not None:
            application = await intents.redeem(call.caller_id, typed)
        call.note("app_code", "checked" if typed else "none")  # the same words either way
        if application is None:
            return self.otherwise[0]
        call.variables[self.store] = application
        call.personal.add(self.store)
        return self.next[0]

    async def _read(self, call: Call) -> str:
        typed = call.pending
        call.pending = ""
        *leading, (last, _) = self.files
        if not typed:
            typed = await play(call, tuple(leading), "0123456789") or ""
        digits = await call.channel.get_data(
            call.expand(last), int(self.timeout * 1000), CODE_LENGTH + 1 - len(typed)
        )
        call.note("play", last)
        return (typed + digits).rstrip("#")


def parse(node_id: str, fields: Fields) -> AppCodeNode:
    return AppCodeNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        store=fields.text("store", "application"),
        timeout=fields.number("timeout", 10.0, 3.0, 60.0),
        next=fields.target("next"),
        otherwise=fields.target("otherwise"),
    )
