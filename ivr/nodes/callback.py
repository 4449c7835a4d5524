"""``callback``: the caller asks to be called back instead of waiting, keeping their place.

    callback-request:
      kind: callback
      group: ${group}             # the queue whose place is kept (``${variable}`` allowed;
                                  # empty: the menu's own group)
      phone: callback_phone       # optional: the variable holding the number to call back
                                  # (default, or when it is empty: the caller's own number)
      data: [topic]               # optional: entries shown on the operator's screen (default: all)
      next: callback-accepted     # the callback is booked
      otherwise: callback-failed  # optional: it was refused (default: the caller hears
                                  # hotline/callback-failed and the call ends)

With the ACD on (`Services.callbacks` set) the request goes to the controller's callback
scheduler: the caller's place in the group's queue (arrival order, priority) is kept, and
when their turn comes an operator is reserved and the caller is called back. Without it the
request stays what it was before the ACD: the entries are set as ``HOTLINE_<NAME>`` channel
variables (with HOTLINE_CALLBACK_GROUP) for whoever reads the call afterwards, and the call
goes on to `next`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from ivr.menu.fields import Fields
from ivr.menu.model import Call, End, Location, Next
from ivr.nodes.common import export_variables, play
from ivr.nodes.queue import operator_data, parse_data_names

# What the caller hears when the booking was refused and the node has no `otherwise`.
FAILED_PROMPT = "hotline/callback-failed"


@dataclass(frozen=True)
class CallbackNode:
    kind: ClassVar[str] = "callback"
    id: str
    at: Location
    group: str
    phone: str | None
    data: tuple[str, ...] | None
    next: tuple[str, Location]
    otherwise: tuple[str, Location] | None

    def targets(self) -> Iterable[tuple[str, Location]]:
        return tuple(t for t in (self.next, self.otherwise) if t is not None)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return () if self.otherwise else ((FAILED_PROMPT, self.at),)

    async def run(self, call: Call) -> Next:
        group = call.expand(self.group).strip() or call.menu.group
        phone = (call.value(self.phone) if self.phone else "") or call.caller_id
        scheduler = call.services.callbacks
        if scheduler is None:
            await export_variables(call, self.data)
            await call.channel.set_variable("HOTLINE_CALLBACK_GROUP", group)
            call.note("callback", f"{group}: kept in channel variables")
            return self.next[0]
        booked = await scheduler.request(
            call.channel.call_id,
            phone=phone,
            group=group,
            number=call.caller_id,
            data=operator_data(call, self.data),
        )
        call.note("callback", f"{group}: {'booked' if booked else 'refused'}")
        if booked:
            return self.next[0]
        if self.otherwise is not None:
            return self.otherwise[0]
        # `next` promises a call back: a refused booking must not go there.
        await play(call, ((FAILED_PROMPT, self.at),))
        return End("callback", group, "callback_refused")


def parse(node_id: str, fields: Fields) -> CallbackNode:
    data = parse_data_names(node_id, fields)
    return CallbackNode(
        id=node_id,
        at=fields.at,
        group=fields.text("group"),
        phone=fields.optional_text("phone"),
        data=data,
        next=fields.target("next"),
        otherwise=fields.optional_target("otherwise"),
    )
