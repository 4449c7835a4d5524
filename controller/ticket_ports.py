"""The ports between the workspace's tickets and transfers and the parts they need, as the root
plugs them (`controller.node`): the workspace imports neither routing nor agents.

* `TicketCallbacks`: a resolved ticket's call back to the citizen, booked with routing's
  callback scheduler into the group's queue (the callback's data names the contact, so the
  operator's pop shows what the call is about). A refusal (a number callbacks may not call, a
  group that is gone) is final; any other failure propagates, so the tickets' periodic job
  tries again at its next tick.
* `LateAgencyTransfers`: `agents.escalation`'s `AgencyTransfers` port, mounted with the ACD
  before the workspace is built; it hands each transfer to the workspace once it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from agents.escalation import Agency
from routing.callbacks.model import CallbackRefused
from routing.callbacks.scheduler import CallbackScheduler
from workspace.agency_letters import AgencyLetters

log = logging.getLogger("controller.node")

__all__ = ["LateAgencyTransfers", "TicketCallbacks"]


class TicketCallbacks:
    def __init__(self, scheduler: CallbackScheduler) -> None:
        self._scheduler = scheduler

    async def book(self, *, phone: str, group: str, contact_number: str) -> bool:
        data = {"contact_number": contact_number, "topic": "решение по обращению"}
        try:
            callback = await self._scheduler.request(phone=phone, group=group, data=data)
        except CallbackRefused as refused:
            log.warning("ticket's call back refused: %s", refused, extra={"group": group})
            return False
        log.info("ticket's call back booked", extra={"callback": callback.id, "group": group})
        return True


class LateAgencyTransfers:
    def __init__(self, letters: Callable[[], AgencyLetters | None]) -> None:
        self._letters = letters

    async def transferred(
        self,
        *,
        call_id: str,
        agency: Agency,
        operator_id: str,
        caller_phone: str,
        data: Mapping[str, str],
    ) -> str | None:
        letters = self._letters()
        if letters is None:
            return None
        return await letters.transferred(
            call_id=call_id,
            agency=agency,
            operator_id=operator_id,
            caller_phone=caller_phone,
            data=data,
        )
