"""``rating``: after the operator hangs up, the caller rates the call from 1 to 5.

    rate:
      kind: rating
      prompts: [hotline/rate-call]
      thanks: [hotline/thanks-for-rating]
      timeout: 5
      retries: 2
      next: goodbye

Reached from a queue node's `then_rating`. The mark goes to the channel as HOTLINE_RATING (and
into the call's variables as ``rating``); no mark after the retries is simply no rating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next
from ivr.nodes.common import Prompts, play, take_pending

MARKS = "12345"


@dataclass(frozen=True)
class RatingNode:
    kind: ClassVar[str] = "rating"
    id: str
    at: Location
    files: Prompts
    thanks: Prompts
    timeout: float
    retries: int
    next: tuple[str, Location]

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return (*self.files, *self.thanks)

    async def run(self, call: Call) -> Next:
        for _ in range(self.retries):
            mark = take_pending(call) or await play(call, self.files, MARKS)
            if mark is None:
                mark = await call.channel.wait_for_digit(int(self.timeout * 1000))
            if mark is not None and mark in MARKS:
                call.variables["rating"] = mark
                await call.channel.set_variable("HOTLINE_RATING", mark)
                call.note("rating", mark)
                await play(call, self.thanks)
                return self.next[0]
            call.note("invalid" if mark else "timeout", mark or "")
        call.note("rating", "none")
        return self.next[0]


def parse(node_id: str, fields: Fields) -> RatingNode:
    return RatingNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        thanks=fields.prompts("thanks", required=False),
        timeout=fields.number("timeout", 5.0, 1.0, 30.0),
        retries=fields.whole("retries", 2, 1, 5),
        next=fields.target("next"),
    )
