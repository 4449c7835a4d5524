"""The ports between the reporting part's call facts and the parts whose events make them, as
the root plugs them (`controller.node`): reporting imports no part, no part imports it.

* `wire_acd`: the ACD's queue, offer, answer, result and operator listeners;
* `wire_registry`: the contact registry's changes (contact number, the operator's
  first-contact resolution, the application number, the topic);
* `FactsOnCallbacks`, `FactsOnContacts`, `FactsOnTransfers`: the menus' callback and contact
  ports and the agencies' transfer port, each the part's own with the fact noted on the way;
* `menu_end`: the menus' end of a call (`ivr.entry.FinishedCall`) as a fact's `MenuEnd`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from agents.escalation import Agency, AgencyTransfers
from ivr.entry import FinishedCall
from ivr.menu.model import CallbackRequests, CallContacts, ContactRoute
from reporting.facts import CallFacts, MenuEnd
from routing.connect import ConnectResult
from routing.model import Caller, Offer
from routing.operator_watch import OperatorStatus
from routing.part import AcdService
from workspace.model import Contact
from workspace.registry import ContactRegistry

__all__ = [
    "FactsOnCallbacks",
    "FactsOnContacts",
    "FactsOnTransfers",
    "menu_end",
    "wire_acd",
    "wire_registry",
]


def wire_acd(facts: CallFacts, acd: AcdService) -> None:
    def offered(offer: Offer, _caller: Caller) -> None:
        facts.offered(offer.call_id, offer.operator_id, offer.group)

    def left(call_id: str, result: ConnectResult) -> None:
        facts.left_queue(call_id, result.outcome, result.overflow_reason)

    def moved(status: OperatorStatus) -> None:
        facts.operator_moved(status.operator_id, status.state.value, status.call_id)

    acd.queue_listeners.append(facts.queued)
    acd.offer_listeners.append(offered)
    acd.answer_listeners.append(lambda call_id, _name: facts.answered(call_id))
    acd.result_listeners.append(left)
    acd.operator_listeners.append(moved)


def wire_registry(facts: CallFacts, registry: ContactRegistry) -> None:
    def changed(contact: Contact) -> None:
        if contact.call_id is None:
            return
        facts.contact_changed(
            contact.call_id,
            contact_number=contact.number.digits,
            fcr_operator=contact.first_contact_resolution,
            application=contact.application_number,
            topic=contact.topic or None,
        )

    registry.listeners.append(changed)


async def _finished(facts: CallFacts, call: FinishedCall) -> None:
    await facts.call_finished(menu_end(call))


def on_finished(facts: CallFacts) -> Callable[[FinishedCall], Awaitable[None]]:
    return lambda call: _finished(facts, call)


def menu_end(call: FinishedCall) -> MenuEnd:
    return MenuEnd(
        call_id=call.call_id,
        line=call.line,
        caller_id=call.caller_id,
        started_at=call.started_at,
        ended_at=call.ended_at,
        outcome=call.outcome,
        path=call.path,
        exit=call.exit,
        topic=call.topic,
        group=call.group,
    )


class FactsOnCallbacks:
    """The menus' callback port: routing's, and a booked callback noted on the call."""

    def __init__(self, callbacks: CallbackRequests, facts: CallFacts) -> None:
        self.callbacks = callbacks
        self._facts = facts

    async def request(
        self, call_id: str, *, phone: str, group: str, number: str, data: Mapping[str, str]
    ) -> bool:
        booked = await self.callbacks.request(
            call_id, phone=phone, group=group, number=number, data=data
        )
        if booked:
            self._facts.callback_booked(call_id)
        return booked


class FactsOnContacts:
    """The menus' contacts port: the workspace's, and the caller's mark noted on the call."""

    def __init__(self, contacts: CallContacts, facts: CallFacts) -> None:
        self._contacts = contacts
        self._facts = facts

    async def contact_number(self, call_id: str) -> str | None:
        return await self._contacts.contact_number(call_id)

    async def rate(self, call_id: str, mark: int) -> None:
        self._facts.rated(call_id, mark)
        await self._contacts.rate(call_id, mark)

    async def route(self, digits: str, caller_id: str) -> ContactRoute | None:
        return await self._contacts.route(digits, caller_id)


class FactsOnTransfers:
    """The agencies' transfer port: the workspace's letter, and the call noted escalated."""

    def __init__(self, transfers: AgencyTransfers, facts: CallFacts) -> None:
        self._transfers = transfers
        self._facts = facts

    async def transferred(
        self,
        *,
        call_id: str,
        agency: Agency,
        operator_id: str,
        caller_phone: str,
        data: Mapping[str, str],
    ) -> str | None:
        self._facts.escalated(call_id)
        return await self._transfers.transferred(
            call_id=call_id,
            agency=agency,
            operator_id=operator_id,
            caller_phone=caller_phone,
            data=data,
        )
