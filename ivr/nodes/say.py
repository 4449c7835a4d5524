"""``say``: a value spoken in Russian from the Asterisk Russian sound set.

    say-date:
      kind: say
      what: date            # digits | number | date | time
      value: "${status_date}"
      gender: f             # number only: m | f | n (одна заявка, один день)
      next: after

A value that is empty or not of its kind is skipped (the path notes it) rather than failing the
call: a caller should never be dropped over a status service's odd field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next, SayFiles

KINDS = ("digits", "number", "date", "time")


@dataclass(frozen=True)
class SayNode:
    kind: ClassVar[str] = "say"
    id: str
    at: Location
    what: str
    value: str
    gender: str
    next: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    async def run(self, call: Call) -> Next:
        value = call.expand(self.value).strip()
        files = sound_files(call.services.say, self.what, value, self.gender)
        if not files:
            call.note("skip", f"say {self.what}: nothing to say")
            return self.next[0]
        for name in files:
            await call.channel.stream_file(name)
        call.note("say", f"{self.what} " + " ".join(files))
        return self.next[0]


def sound_files(say: SayFiles | None, what: str, value: str, gender: str) -> list[str]:
    """The files that speak `value`; empty when it cannot be spoken."""
    if say is None or not value:
        return []
    try:
        if what == "digits":
            return say.digit_files(value) if value.isdigit() else []
        if what == "number":
            return say.number_files(int(value), gender)
        if what == "date":
            return say.date_files(_as_date(value))
        return say.time_files(_as_time(value))
    except ValueError:
        return []


def _as_date(value: str) -> date:
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


def _as_time(value: str) -> time:
    return datetime.fromisoformat(value).time() if "T" in value else time.fromisoformat(value)


def parse(node_id: str, fields: Fields) -> SayNode:
    return SayNode(
        id=node_id,
        at=fields.at,
        what=fields.choice("what", KINDS),
        value=fields.text("value"),
        gender=fields.choice("gender", ("m", "f", "n"), "m"),
        next=fields.target("next"),
    )
