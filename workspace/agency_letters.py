"""Transfers to agencies as the registry keeps them: an entry with a reference number, and a
letter with the caller's details to the agency's address.

`AgencyLetters.transferred` is what the root plugs into `agents.escalation`'s `AgencyTransfers`
port (the workspace does not import agents: the agency arrives as any object with `id`, `name`
and `email`). The entry is a contact of channel `AGENCY_TRANSFER`, closed as handed over; its
number is the reference the operator's screen shows and the letter quotes. The letter goes out
in the background (the operator's screen does not wait on a mail server); a letter that could
not go is logged as an error and audited as failed, with the reference to resend it by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final, Protocol

from sqlalchemy.exc import SQLAlchemyError

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.validators import validate_phone
from workspace.model import Contact, ContactChannel, ContactDraft
from workspace.notify import Letter, Notifier, NotifyFailed
from workspace.registry import ContactRegistry

log = logging.getLogger(__name__)

__all__ = ["AgencyLetters", "agency_letter"]

# What the menu gathered that an agency may need, as the letter names it; nothing else of the
# call's data (routing internals, masked echoes) goes out.
_DETAILS: Final = {
    "application": "Номер заявления",
    "status_status": "Статус заявления",
    "topic": "Тема",
    "menu_path": "Путь в меню",
}


class AgencyLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...


class AgencyLetters:
    def __init__(
        self, registry: ContactRegistry, audit: AuditLog, notifier: Notifier | None
    ) -> None:
        self._registry = registry
        self._audit = audit
        self.notifier = notifier
        self._sending: set[asyncio.Task[None]] = set()

    async def transferred(
        self,
        *,
        call_id: str,
        agency: AgencyLike,
        operator_id: str,
        caller_phone: str,
        data: Mapping[str, str],
    ) -> str | None:
        operator = Actor(operator_id, "operator")
        try:
            contact = await self._register(agency, operator, caller_phone, data)
        except (SQLAlchemyError, OSError):
            log.exception("agency transfer not registered", extra={"call": call_id})
            return None
        if agency.email and self.notifier is not None:
            task = asyncio.create_task(self._send(agency_letter(contact, agency, data), contact))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        else:
            log.warning("no letter for the agency: no address or no mail server",
                        extra={"agency": agency.id})  # fmt: skip
        return str(contact.number)

    async def _register(
        self, agency: AgencyLike, operator: Actor, caller_phone: str, data: Mapping[str, str]
    ) -> Contact:
        draft = ContactDraft(
            channel=ContactChannel.AGENCY_TRANSFER,
            caller_phone=validate_phone(caller_phone).normalized or caller_phone,
            application_number=data.get("application") or None,
            topic=data.get("topic", ""),
            description=f"Передано в ведомство: {agency.name}",
            group=agency.id,
            operator_id=operator.user_id,
        )
        contact = await self._registry.open(draft, actor=operator, source="escalation")
        handed = await self._registry.hand_over(
            contact.number,
            resolution=f"Передано в ведомство: {agency.name}",
            actor=operator,
            source="escalation",
        )
        return handed or contact

    async def _send(self, letter: Letter, contact: Contact) -> None:
        outcome = "ok"
        assert self.notifier is not None
        try:
            await self.notifier.send(letter)
        except NotifyFailed:
            outcome = "failed"
            log.error("agency letter not sent", extra={"contact": str(contact.number)})
        system = Actor("agency-letters", "system", kind="system")
        await self._audit.record(
            system,
            "contact.letter",
            recording_id=str(contact.number),
            source="smtp",
            outcome=outcome,
            detail={"to": letter.to},
        )

    async def idle(self) -> None:
        """Wait for the letters on their way (tests, and a clean stop)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def agency_letter(contact: Contact, agency: AgencyLike, data: Mapping[str, str]) -> Letter:
    """The agency's letter: the reference and what it needs to take the request over."""
    assert agency.email is not None
    lines = [
        f"Обращение гражданина передано в «{agency.name}» с горячей линии.",
        "",
        f"Номер обращения: {contact.number}",
        f"Телефон гражданина: +{contact.caller_phone}" if contact.caller_phone.isdigit()
        else f"Телефон гражданина: {contact.caller_phone or 'не определён'}",
        f"Дата и время: {contact.opened_at:%d.%m.%Y %H:%M} UTC",
    ]  # fmt: skip
    lines += [f"{title}: {data[key]}" for key, title in _DETAILS.items() if data.get(key)]
    lines += ["", "Гражданин переведён на ваш номер. Письмо отправлено автоматически."]
    subject = f"Передано обращение № {contact.number}"
    return Letter(agency.email, subject, "\n".join(lines) + "\n")
