"""``rating``: after the operator hangs up, the caller rates the call from 1 to 5.

    rate:
      kind: rating
      prompts: [hotline/rate-call]
      thanks: [hotline/thanks-for-rating]
      timeout: 5
      retries: 2
      next: goodbye

Reached from a queue node's `then_rating`. When the conversation opened a contact in the
registry (the workspace), the caller first hears its number: `hotline/contact-number-is` and
the twelve digits in three groups (year, sequence, check digit), so they can name it when they
call again. The mark goes to the channel as HOTLINE_RATING (and into the call's variables as
``rating``) and onto the contact; no mark after the retries is simply no rating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, Location, Next, Step
from ivr.nodes.common import Cue, KeySteps, Prompts, asking_parts, play

MARKS = "12345"
# Each mark by itself: what a key read is as a mark, None for any other key or none at all
# (one look-up, where `mark is not None and mark in MARKS` asks twice).
_MARK_OF: dict[str | None, str] = {mark: mark for mark in MARKS}
CONTACT_NUMBER_PROMPT = "hotline/contact-number-is"


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
    _cues: tuple[Cue, ...] = field(init=False, repr=False, compare=False)
    _timeout_ms: int = field(init=False, repr=False, compare=False)
    _attempts: range = field(init=False, repr=False, compare=False)

    # The steps the node notes, made when the menu is loaded (see `KeySteps`).
    _inputs: KeySteps = field(init=False, repr=False, compare=False)
    _invalids: KeySteps = field(init=False, repr=False, compare=False)
    _timed_out: Step = field(init=False, repr=False, compare=False)
    _unrated: Step = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        made = asking_parts(self.id, self.files, self.timeout, self.retries)
        made["_unrated"] = Step("rating", "none", self.id)
        for name, value in made.items():
            object.__setattr__(self, name, value)

    def targets(self) -> Iterable[tuple[str, Location]]:
        return (self.next,)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return (*self.files, *self.thanks)

    async def run(self, call: Call) -> Next:
        contacts = call.services.contacts
        if contacts is not None:
            await _say_contact_number(call, await contacts.contact_number(call.channel.call_id))
        channel, path = call.channel, call.path
        for _ in self._attempts:
            mark = None
            if call.pending:  # a key pressed during an earlier prompt (the rest is dropped)
                mark, call.pending = call.pending[0], ""
            else:  # ask (written out, as in the menu node: no `play` level)
                for name, fixed, step in self._cues:
                    played = await channel.stream_file(name if fixed else call.expand(name), MARKS)
                    path.append(step)
                    if (mark := played.digit) is not None:
                        path.append(self._inputs[mark])
                        break
            if mark is None:
                mark = await channel.wait_for_digit(self._timeout_ms)
            if (rated := _MARK_OF.get(mark)) is not None:
                call.variables["rating"] = rated
                await call.channel.set_variable("HOTLINE_RATING", rated)
                call.note("rating", rated)
                if contacts is not None:
                    await contacts.rate(call.channel.call_id, int(rated))
                await play(call, self.thanks)
                return self.next[0]
            path.append(self._invalids[mark] if mark else self._timed_out)
        path.append(self._unrated)
        return self.next[0]


async def _say_contact_number(call: Call, digits: str | None) -> None:
    say = call.services.say
    if not digits or say is None:
        return
    call.note("contact", "number told")  # never the number itself: the path is logged
    files = [CONTACT_NUMBER_PROMPT]
    for group in (digits[:4], digits[4:-1], digits[-1:]):
        files += say.digit_files(group)
    for name in files:
        await call.channel.stream_file(name, "")


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
