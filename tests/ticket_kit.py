"""What the ticket tests share: a migrated database, a hand-driven clock, the back-office file,
a real local SMTP server (aiosmtpd) the notifier sends to, and the call-back port's bookings."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from databases import migrated_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import ManualClock
from workspace.backoffice import BackOfficeFile
from workspace.model import Category, ContactChannel, ContactDraft
from workspace.notify import SmtpNotifier, SmtpSettings
from workspace.numbers import ContactNumber
from workspace.registry import ContactRegistry
from workspace.store import ContactStore
from workspace.ticket_store import TicketStore
from workspace.tickets import TicketDesk

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
BACKOFFICE = """\
groups:
  technical:
    name: Технический отдел
    due_hours: 48
    members: [sidorov, kuznetsova]
    callback_group: general
    email: techdept@example.org
  tier2:
    name: Вторая линия
    due_hours: 24
    members: [orlova]
categories:
  technical_fault: technical
  registration_login: technical
  default: tier2
"""
OPERATOR = Actor("ivanova", "operator")
SIDOROV = Actor("sidorov", "back_office")
ORLOVA = Actor("orlova", "back_office")
SUPERVISOR = Actor("smirnova", "supervisor")


class Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        return "250 OK"


@asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a port the OS picks, in this event loop."""
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box), "127.0.0.1", 0)
    try:
        yield box, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Bookings:
    """The call-back port as the root plugs it, recording what it was asked to book."""

    booked: list[dict[str, str]] = field(default_factory=list)
    accept: bool = True

    async def book(self, *, phone: str, group: str, contact_number: str) -> bool:
        self.booked.append({"phone": phone, "group": group, "contact_number": contact_number})
        return self.accept


@dataclass
class Office:
    engine: AsyncEngine
    clock: ManualClock
    registry: ContactRegistry
    desk: TicketDesk
    audit: AuditLog
    mailbox: Mailbox
    bookings: Bookings
    file: Path

    async def unresolved_contact(
        self, category: Category = Category.TECHNICAL_FAULT, phone: str = "79161234567"
    ) -> ContactNumber:
        """A call the operator closes with "resolved: false", as the wrap-up does."""
        draft = ContactDraft(
            ContactChannel.CALL,
            caller_phone=phone,
            caller_name="Иванов Иван",
            application_number="1234567897",
            category=category,
            topic="не работает вход",
            group="general",
            operator_id=OPERATOR.user_id,
        )
        contact = await self.registry.open(draft, actor=OPERATOR, source="test")
        await self.registry.close(
            contact.number,
            resolution="передано в технический отдел",
            category=category,
            first_contact_resolution=False,
            actor=OPERATOR,
            source="test",
        )
        return contact.number

    async def audit_rows(self) -> list[Any]:
        return list(await self.audit.entries())


@asynccontextmanager
async def office(url: str, tmp_path: Path) -> AsyncIterator[Office]:
    file = tmp_path / "backoffice.yaml"
    file.write_text(BACKOFFICE, encoding="utf-8")
    async with migrated_engine(url) as engine, smtp_server() as (box, port):
        clock = ManualClock(START)
        audit = AuditLog(engine)
        registry = ContactRegistry(ContactStore(engine), audit, clock)
        bookings = Bookings()
        notifier = SmtpNotifier(SmtpSettings("127.0.0.1", port, sender="hotline@example.org"))
        backoffice = BackOfficeFile(file)
        desk = TicketDesk(
            TicketStore(engine),
            registry,
            audit,
            lambda: backoffice.current,
            notifier=notifier,
            callbacks=bookings,
            clock=clock,
        )
        yield Office(engine, clock, registry, desk, audit, box, bookings, file)
