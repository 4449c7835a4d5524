"""What the registry holds: a contact, its category, the channel it came by, its state.

A contact is one request a citizen made: a conversation, a callback, a feedback form, a voice
message or a transfer to an agency. Everything a person could be identified by (phone, name,
identity documents, application number) is personal data: it is shown only through
`workspace.registry.ContactRegistry`, which audits every view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from workspace.numbers import ContactNumber

__all__ = [
    "CATEGORY_TITLES",
    "Category",
    "Contact",
    "ContactChannel",
    "ContactDraft",
    "ContactState",
    "Identifier",
]


class Category(StrEnum):
    """The seed's categories of requests."""

    TECHNICAL_FAULT = "technical_fault"
    WRONG_DATA = "wrong_data"
    IMPROVEMENT = "improvement"
    APPLICATION_STATUS = "application_status"
    REGISTRATION_LOGIN = "registration_login"
    PAYMENTS = "payments"
    DOCUMENTS = "documents"
    OTHER = "other"


CATEGORY_TITLES: Final = MappingProxyType(
    {
        Category.TECHNICAL_FAULT: "Техническая неисправность",
        Category.WRONG_DATA: "Ошибка в данных",
        Category.IMPROVEMENT: "Предложение по улучшению",
        Category.APPLICATION_STATUS: "Статус заявления",
        Category.REGISTRATION_LOGIN: "Регистрация и вход",
        Category.PAYMENTS: "Платежи",
        Category.DOCUMENTS: "Документы",
        Category.OTHER: "Другое",
    }
)


class ContactChannel(StrEnum):
    CALL = "call"
    CALLBACK = "callback"
    FEEDBACK = "feedback"
    VOICE_MESSAGE = "voice_message"
    AGENCY_TRANSFER = "agency_transfer"


class ContactState(StrEnum):
    OPEN = "open"  # being handled (the call goes on, the form is being filled)
    RESOLVED = "resolved"  # closed with a resolution
    TICKET = "ticket"  # not resolved on the contact: a back-office ticket carries it on


class Identifier(StrEnum):
    """How a caller was identified (the seed's list); values are kept as entered."""

    PASSPORT = "passport"
    INN = "inn"
    SNILS = "snils"
    PORTAL_ACCOUNT = "portal_account"
    OMS = "oms"
    DRIVING_LICENCE = "driving_licence"


@dataclass(frozen=True)
class ContactDraft:
    """What is known when a contact is opened; the registry gives it a number."""

    channel: ContactChannel
    line: str = ""  # the number dialled (88001000001...), "" for forms
    call_id: str | None = None
    caller_phone: str = ""  # normalised 7XXXXXXXXXX when it is a Russian number
    caller_name: str = ""
    identifiers: dict[Identifier, str] = field(default_factory=dict)
    application_number: str | None = None
    category: Category = Category.OTHER
    topic: str = ""  # the menu's topic, or the form's subject
    description: str = ""
    group: str = ""
    operator_id: str | None = None
    expected_by: date | None = None  # the feedback form's expected resolution date
    waited_seconds: int | None = None  # a call's time in the queue before its operator rang


@dataclass(frozen=True)
class Contact:
    """One contact as stored."""

    number: ContactNumber
    opened_at: datetime
    channel: ContactChannel
    line: str
    call_id: str | None
    caller_phone: str
    caller_name: str
    identifiers: dict[Identifier, str]
    application_number: str | None
    category: Category
    topic: str
    description: str
    group: str
    operator_id: str | None
    state: ContactState
    resolution: str
    first_contact_resolution: bool | None
    rating: int | None
    repeat: bool
    closed_at: datetime | None
    expected_by: date | None = None
    waited_seconds: int | None = None
