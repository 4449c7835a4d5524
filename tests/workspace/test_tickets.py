"""Tickets: a contact left unresolved becomes a ticket of its back-office group with that
group's due time; escalation near and past it; who sees which ticket (audited); the citizen told
of the outcome by a booked call back and a letter through a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database
from ports import refusing_port
from prometheus_client import REGISTRY
from ticket_kit import HOUR, ORLOVA, SIDOROV, SUPERVISOR, Office, office

from workspace.model import Category
from workspace.notify import SmtpNotifier, SmtpSettings
from workspace.ticket_store import Escalation, TicketState
from workspace.tickets import TicketRefused


@pytest.fixture(params=DATABASE_KINDS)
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Office]:
    async with empty_database(request.param, tmp_path / "t.sqlite3", "tickets") as url:
        async with office(url, tmp_path) as made:
            yield made


def overdue_gauge(group: str) -> float | None:
    return REGISTRY.get_sample_value("hotline_tickets_overdue", {"group": group})


async def test_an_unresolved_contact_becomes_a_technical_ticket_due_in_48_hours(
    kit: Office,
) -> None:
    number = await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    assert await kit.desk.adopt() == 1
    assert await kit.desk.adopt() == 0  # one ticket per contact, however often adopted

    [row] = await kit.desk.queue(actor=SIDOROV, source="test")
    assert row.number == number
    assert row.group == "technical"
    assert row.state is TicketState.NEW
    assert (row.due_at - row.opened_at).total_seconds() == 48 * HOUR
    # another category goes to the default group, with its own due time
    other = await kit.unresolved_contact(Category.PAYMENTS, phone="79160000001")
    await kit.desk.adopt()
    [tier2] = await kit.desk.queue(actor=ORLOVA, source="test")
    assert (tier2.number, tier2.group) == (other, "tier2")
    assert (tier2.due_at - tier2.opened_at).total_seconds() == 24 * HOUR


async def test_the_48_hour_clock_escalates_near_then_overdue_once_each(kit: Office) -> None:
    await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    kit.clock.advance(38 * HOUR)  # 79 % of 48 hours used: nothing yet
    await kit.desk.escalate()
    [row] = await kit.desk.queue(actor=SUPERVISOR, source="test")
    assert row.escalation is Escalation.NONE

    kit.clock.advance(1 * HOUR)  # 81 %
    assert await kit.desk.escalate() == {}
    [row] = await kit.desk.queue(actor=SUPERVISOR, source="test")
    assert row.escalation is Escalation.NEAR
    assert overdue_gauge("technical") == 0

    kit.clock.advance(9 * HOUR + 1)  # past 48 hours
    assert await kit.desk.escalate() == {"technical": 1}
    [row] = await kit.desk.queue(actor=SUPERVISOR, source="test")
    assert row.escalation is Escalation.OVERDUE
    assert overdue_gauge("technical") == 1
    await kit.desk.escalate()  # each mark is told once
    # the department's address was told at each mark, with no citizen's data
    subjects = [m["Subject"] for m in kit.mailbox.messages]
    assert subjects == [
        f"Заявка {row.number}: срок подходит к концу",
        f"Заявка {row.number}: срок истёк",
    ]
    assert all(m["To"] == "techdept@example.org" for m in kit.mailbox.messages)
    assert not any("79161234567" in m.get_content() for m in kit.mailbox.messages)

    # resolving it takes it off the overdue count
    await kit.desk.move(row.id, TicketState.RESOLVED, actor=SIDOROV, source="test")
    assert await kit.desk.escalate() == {}
    assert overdue_gauge("technical") == 0


async def test_a_ticket_skipping_near_goes_straight_to_overdue(kit: Office) -> None:
    await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    kit.clock.advance(49 * HOUR)  # the job was down for two days
    assert await kit.desk.escalate() == {"technical": 1}
    [row] = await kit.desk.queue(actor=SUPERVISOR, source="test")
    assert row.escalation is Escalation.OVERDUE


async def test_others_see_only_their_groups_tickets_and_every_look_is_audited(
    kit: Office,
) -> None:
    await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    [row] = await kit.desk.queue(actor=SIDOROV, source="10.0.0.5")
    assert await kit.desk.queue(actor=ORLOVA, source="10.0.0.6") == []
    assert await kit.desk.view(row.id, actor=ORLOVA, source="10.0.0.6") is None
    with pytest.raises(LookupError):
        await kit.desk.comment(row.id, "чужая заявка", actor=ORLOVA, source="10.0.0.6")
    seen = await kit.desk.view(row.id, actor=SUPERVISOR, source="10.0.0.7")
    assert seen is not None and seen.contact.caller_name == "Иванов Иван"

    rows = [r for r in await kit.audit_rows() if r.action.startswith(("ticket.", "contact.view"))]
    said = [(r.user_id, r.action, r.recording_id, r.outcome) for r in rows]
    ticket = f"ticket:{row.id}"
    assert ("sidorov", "ticket.queue", None, "ok") in said
    assert ("orlova", "ticket.view", ticket, "denied") in said
    assert ("orlova", "ticket.comment", ticket, "denied") in said
    assert ("smirnova", "ticket.view", ticket, "ok") in said
    assert ("smirnova", "contact.view", str(row.number), "ok") in said


async def test_comments_states_and_assignment(kit: Office) -> None:
    await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    [row] = await kit.desk.queue(actor=SIDOROV, source="test")
    await kit.desk.assign(row.id, "kuznetsova", actor=SIDOROV, source="test")
    with pytest.raises(TicketRefused, match="сотрудника группы"):
        await kit.desk.assign(row.id, "orlova", actor=SIDOROV, source="test")
    kit.clock.advance(60)
    ticket = await kit.desk.comment(row.id, "  проверили журнал  ", actor=SIDOROV, source="t")
    [said] = ticket.comments
    assert (said.author, said.role, said.text) == ("sidorov", "back_office", "проверили журнал")
    with pytest.raises(TicketRefused, match="пуст"):
        await kit.desk.comment(row.id, "   ", actor=SIDOROV, source="test")
    with pytest.raises(TicketRefused, match="4000"):
        await kit.desk.comment(row.id, "я" * 4001, actor=SIDOROV, source="test")
    moved = await kit.desk.move(row.id, TicketState.WAITING_CITIZEN, actor=SIDOROV, source="t")
    assert moved.row.state is TicketState.WAITING_CITIZEN
    assert moved.row.assignee == "kuznetsova"
    with pytest.raises(TicketRefused, match="переход"):
        await kit.desk.move(row.id, TicketState.NEW, actor=SIDOROV, source="test")
    await kit.desk.move(row.id, TicketState.CLOSED, actor=SIDOROV, source="test")
    with pytest.raises(TicketRefused, match="закрыта"):
        await kit.desk.comment(row.id, "поздно", actor=SIDOROV, source="test")


async def test_resolving_books_a_call_back_and_mails_the_citizen_the_number_only(
    kit: Office,
) -> None:
    number = await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    [row] = await kit.desk.queue(actor=SIDOROV, source="test")
    with pytest.raises(TicketRefused, match="почты"):
        await kit.desk.set_email(row.id, "not an address", actor=SIDOROV, source="test")
    await kit.desk.set_email(row.id, "citizen@example.org", actor=SIDOROV, source="test")
    await kit.desk.move(row.id, TicketState.RESOLVED, actor=SIDOROV, source="test")

    assert kit.bookings.booked == [
        {"phone": "79161234567", "group": "general", "contact_number": str(number)}
    ]
    [letter] = kit.mailbox.messages
    assert letter["To"] == "citizen@example.org"
    body = letter.get_content()
    assert str(number) in body and str(number) in letter["Subject"]
    for personal in ("Иванов", "79161234567", "1234567897", "не работает вход"):
        assert personal not in body and personal not in letter["Subject"]
    # the periodic step sends nothing twice
    await kit.desk.step()
    assert len(kit.mailbox.messages) == 1 and len(kit.bookings.booked) == 1


async def test_a_letter_the_server_could_not_take_is_sent_at_the_next_tick(kit: Office) -> None:
    await kit.unresolved_contact(Category.TECHNICAL_FAULT)
    await kit.desk.adopt()
    [row] = await kit.desk.queue(actor=SIDOROV, source="test")
    await kit.desk.set_email(row.id, "citizen@example.org", actor=SIDOROV, source="test")
    working = kit.desk.notifier
    with refusing_port() as down:  # the mail server is down when the ticket is resolved
        kit.desk.notifier = SmtpNotifier(SmtpSettings("127.0.0.1", down))
        await kit.desk.move(row.id, TicketState.RESOLVED, actor=SIDOROV, source="test")
    assert kit.mailbox.messages == [] and len(kit.bookings.booked) == 1
    kit.desk.notifier = working
    await kit.desk.step()
    assert len(kit.mailbox.messages) == 1
    assert len(kit.bookings.booked) == 1  # the call back was not booked again
