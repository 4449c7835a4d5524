"""A queued caller's arrival, carried on their channel so a controller restart does not send
them to the back of the queue.

When a caller joins a group's queue the ACD writes ``HOTLINE_QUEUED_AT`` on the channel (a
`hotline.agi.carry` value: group and arrival time, wall-clock seconds). If the controller
stops or dies while the caller waits, the dialplan hands the call back and the menu resumes
at the same queue node (`ivr.menu.resume`); the next controller's ACD reads the value and
queues the caller with their original arrival, ahead of everyone who came later
(`routing.model.Caller.key` orders by arrival time). When the caller is done with the queue
(answered, overflowed, gone) the value is cleared, so a later queue in the same call is a new
arrival.

A caller whose controller went away while their operator's phone rang may be answered all the
same: Asterisk's Dial goes on without the controller, and the call comes back only after the
conversation. So the value is written with DIALSTATUS cleared, and a returning caller whose
channel says ``DIALSTATUS=ANSWER`` has talked to an operator since (`answered_meanwhile`): the
menu goes on (rating...) instead of queueing them again.

A carried arrival is believed only within bounds: not before the channel was created (the
epoch seconds Asterisk puts in the uniqueid, ``[system-]<epoch>.<n>``), and not after now; a
value outside them (forged, from a clock gone wrong, another group's) is ignored and the caller
queues as a newcomer. Without a readable creation time the bound is the recall window: the
ACD never keeps a place longer than that anyway.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Protocol

from hotline.agi import carry

__all__ = [
    "ARRIVAL_VARIABLE",
    "answered_meanwhile",
    "carried_arrival",
    "carry_arrival",
    "forget_arrival",
]

log = logging.getLogger("hotline.routing")

ARRIVAL_VARIABLE = "HOTLINE_QUEUED_AT"
_CREATED = re.compile(r"(?:^|-)(\d{9,})\.\d+$")


class ArrivalChannel(Protocol):
    """What of the caller's session this module uses (`hotline.agi.session.AgiSession`)."""

    call_id: str
    env: Mapping[str, str]

    async def get_variable(self, name: str) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...


def channel_created(call_id: str) -> float | None:
    """When Asterisk created the channel, from its uniqueid; None if it does not say."""
    found = _CREATED.search(call_id)
    return float(found.group(1)) if found else None


async def carried_arrival(
    channel: ArrivalChannel, group: str, *, now: float, oldest: float
) -> float | None:
    """The arrival a previous controller wrote for this caller in `group`, if believable:
    between the channel's creation (or `oldest` when unknown) and `now`."""
    fields = carry.decode(await channel.get_variable(ARRIVAL_VARIABLE))
    if fields is None or fields.get("group") != group:
        return None
    try:
        arrived = float(fields.get("at", ""))
    except ValueError:
        arrived = math.nan
    created = channel_created(channel.call_id)
    lowest = created if created is not None else oldest
    if not lowest <= arrived <= now:  # NaN fails too
        log.warning(
            "carried queue arrival out of bounds: queued as a newcomer",
            extra={"call": channel.call_id, "group": group},
        )
        return None
    return arrived


async def carry_arrival(channel: ArrivalChannel, group: str, arrived: float) -> None:
    """Leave the caller's arrival in `group` on the channel for the next controller, with no
    Dial answered since (DIALSTATUS cleared: Dial sets it again)."""
    carried = carry.encode({"group": group, "at": repr(arrived)})
    await channel.set_variable(ARRIVAL_VARIABLE, carried)
    await channel.set_variable("DIALSTATUS", "")


async def answered_meanwhile(channel: ArrivalChannel) -> bool:
    """True if an operator's Dial was answered since the caller's arrival was carried: the
    controller went away while it rang, the conversation took place without it."""
    return (await channel.get_variable("DIALSTATUS") or "").upper() == "ANSWER"


async def forget_arrival(channel: ArrivalChannel) -> None:
    """The caller is done with the queue: a later queue in this call is a new arrival."""
    await channel.set_variable(ARRIVAL_VARIABLE, "")
