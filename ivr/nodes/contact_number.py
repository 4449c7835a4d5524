"""``contact_number``: a caller who has a contact number keys it in and goes back to the group,
and if ready the operator, who owns that contact.

    by-contact:
      kind: contact_number
      prompts: [hotline/enter-contact-number]   # "...наберите номер обращения и решётку"
      invalid: hotline/contact-number-invalid   # a typo the check digit caught
      group: general        # where a number that names no contact goes: the same words
      priority: 0           # the usual priority; +5 when the calling number is the contact's
      timeout: 15
      retries: 2
      then_rating: rate
      no_number: main-menu  # nothing keyed (just #, or silence): back to the menu
      otherwise: busy       # the queue's overflow, as a queue node's `otherwise`

The menu reveals nothing about contacts: a well-formed number that names no contact is queued
to `group` with the same words as one that does. Only a mistyped number (its check digit
fails) is said to be wrong, which tells nothing about the registry. The operator's screen pop
opens the contact (`contact_number` travels in the call's data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from hotline.validators import validate_contact
from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import Prompts, play
from ivr.nodes.queue import enqueue

__all__ = ["OWN_CONTACT_PRIORITY", "ContactNumberNode", "parse"]

OWN_CONTACT_PRIORITY = 5  # added when the caller calls from the contact's own number
_DIGITS = 12


@dataclass(frozen=True)
class ContactNumberNode:
    kind: ClassVar[str] = "contact_number"
    id: str
    at: Location
    files: Prompts
    invalid: Prompts
    group: str
    priority: int
    timeout: float
    retries: int
    then_rating: tuple[str, Location] | None
    no_number: tuple[str, Location]
    otherwise: tuple[str, Location] | None

    def targets(self) -> Iterable[tuple[str, Location]]:
        optional = (self.then_rating, self.otherwise)
        return (self.no_number, *(t for t in optional if t is not None))

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return (*self.files, *self.invalid)

    async def run(self, call: Call) -> Next:
        for _ in range(self.retries):
            typed = await self._read(call)
            if not typed:
                call.note("timeout")
                return self.no_number[0]
            if validate_contact(typed):
                return await self._queue(call, typed)
            call.note("invalid", "contact number")
            await play(call, self.invalid)
        return self.no_number[0]

    async def _read(self, call: Call) -> str:
        typed = call.pending
        call.pending = ""
        *leading, (last, _) = self.files
        if not typed:
            typed = await play(call, tuple(leading), "0123456789") or ""
        digits = await call.channel.get_data(
            call.expand(last), int(self.timeout * 1000), _DIGITS + 1 - len(typed)
        )
        return (typed + digits).rstrip("#")

    async def _queue(self, call: Call, digits: str) -> Next:
        contacts = call.services.contacts
        route = await contacts.route(digits, call.caller_id) if contacts is not None else None
        group, priority, extra = self.group, self.priority, {}
        if route is not None:
            group = route.group
            extra["contact_number"] = route.printed
            if route.operator_id:
                extra["preferred_operator"] = route.operator_id
            if route.priority:
                priority += OWN_CONTACT_PRIORITY
        call.note("contact", "routed")  # the same note either way: the log reveals nothing
        outcome = await enqueue(call, group, priority, None, extra=extra)
        call.note("queue", f"{group}: {outcome}")
        call.queued = (group, outcome)
        if outcome == "answered":
            if self.then_rating is not None:
                return self.then_rating[0]
            return End("queue", group, outcome)
        if self.otherwise is not None:
            return self.otherwise[0]
        return End("queue", group, outcome)


def parse(node_id: str, fields: Fields) -> ContactNumberNode:
    return ContactNumberNode(
        id=node_id,
        at=fields.at,
        files=fields.prompts("prompts"),
        invalid=fields.prompts("invalid", required=False)
        or (("hotline/contact-number-invalid", fields.at),),
        group=fields.text("group"),
        priority=fields.whole("priority", 0, 0, 5),
        timeout=fields.number("timeout", 15.0, 3.0, 60.0),
        retries=fields.whole("retries", 2, 1, 5),
        then_rating=fields.optional_target("then_rating"),
        no_number=fields.target("no_number"),
        otherwise=fields.optional_target("otherwise"),
    )
