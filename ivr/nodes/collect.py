"""``collect``: the caller types a number (ended by # or by reaching `max_length`), which is
checked and stored in a variable.

    ask-snils:
      kind: collect
      prompts: [hotline/enter-snils]
      store: snils
      min_length: 11        # or `length: 11` for both bounds
      max_length: 11
      timeout: 10           # seconds for the whole entry
      validate: snils       # snils | inn | application | phone (check digits, format)
      retries: 3
      invalid: hotline/invalid-snils
      next: lookup
      fallback: operator

What was typed is personal data: the engine's logs show it masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from hotline.logs import mask_number
from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next
from ivr.nodes.common import Prompts, play

VALIDATIONS = ("snils", "inn", "application", "phone")
DEFAULT_INVALID = "hotline/invalid-input"


@dataclass(frozen=True)
class CollectNode:
    kind: ClassVar[str] = "collect"
    id: str
    at: Location
    files: Prompts
    store: str
    min_length: int
    max_length: int
    timeout: float
    validate: str | None
    retries: int
    invalid: Prompts
    next: tuple[str, Location]
    fallback: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next, self.fallback)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return (*self.files, *self.invalid)

    async def run(self, call: Call) -> Next:
        for _ in range(self.retries):
            typed = await self._read(call)
            if not typed:
                call.note("timeout")
                await play(call, self.invalid)
                continue
            call.note("input", mask_number(typed))
            accepted = self._accepted(call, typed)
            if accepted is not None:
                call.variables[self.store] = accepted
                call.personal.add(self.store)
                return self.next[0]
            call.note("invalid", mask_number(typed))
            await play(call, self.invalid)
        call.note("fallback", self.fallback[0])
        return self.fallback[0]

    async def _read(self, call: Call) -> str:
        """Earlier prompts by STREAM FILE, the last by GET DATA (which also takes typed-ahead
        keys); a key pressed during an earlier prompt starts the entry."""
        typed = call.pending
        call.pending = ""
        *leading, (last, _) = self.files
        if not typed:
            typed = await play(call, tuple(leading), "0123456789") or ""
        digits = await call.channel.get_data(
            call.expand(last), int(self.timeout * 1000), self.max_length - len(typed)
        )
        call.note("play", last)
        return (typed + digits).rstrip("#")

    def _accepted(self, call: Call, typed: str) -> str | None:
        """The value to store (the validator's normalised form), or None if refused."""
        if not self.min_length <= len(typed) <= self.max_length or not typed.isdigit():
            return None
        if self.validate is None:
            return typed
        check = call.services.validators.get(self.validate)
        # No validator available: refuse rather than pass a number nobody checked.
        verdict = check(typed) if check is not None else None
        if not verdict:
            return None
        return str(getattr(verdict, "normalized", "") or typed)


def parse(node_id: str, fields: Fields) -> CollectNode:
    length = fields.whole("length", 0, 0, 32) if fields.has("length") else None
    low = fields.whole("min_length", length or 1, 1, 32)
    high = fields.whole("max_length", length or 20, 1, 32)
    if low > high:
        raise fields.error("min_length", f"is above max_length ({low} > {high})")
    validate = fields.choice("validate", VALIDATIONS) if fields.has("validate") else None
    return CollectNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        store=fields.text("store"),
        min_length=low,
        max_length=high,
        timeout=fields.number("timeout", 10.0, 1.0, 120.0),
        validate=validate,
        retries=fields.whole("retries", 3, 1, 10),
        invalid=fields.prompts("invalid", required=False) or ((DEFAULT_INVALID, fields.at),),
        next=fields.target("next"),
        fallback=fields.target("fallback"),
    )
