"""The tickets inside a running controller: the shipped back-office file, the work queue
mounted, and a resolved ticket calling the citizen back through routing's real callback
scheduler (the port the root wires) while the letter reaches a real SMTP server."""

from __future__ import annotations

from pathlib import Path

from controllers import WITHOUT_RECORDER, controller_settings, started
from ticket_kit import smtp_server

from hotline.auth import Actor
from workspace.model import Category, ContactChannel, ContactDraft
from workspace.ticket_store import TicketState

OPERATOR = Actor("ivanova", "operator")
SIDOROV = Actor("sidorov", "back_office")  # in the shipped file's technical department


async def test_a_resolved_ticket_books_a_real_callback_and_mails_the_citizen(
    tmp_path: Path,
) -> None:
    async with smtp_server() as (mailbox, port):
        environment = {
            **WITHOUT_RECORDER,
            "HOTLINE_WORKSPACE_SMTP_HOST": "127.0.0.1",
            "HOTLINE_WORKSPACE_SMTP_PORT": str(port),
            "HOTLINE_WORKSPACE_TICKET_SECONDS": "3600",  # this test drives the job by hand
        }
        async with started(controller_settings(tmp_path, environment)) as node:
            assert node.workspace is not None and node.callbacks is not None
            tickets, registry = node.workspace.tickets, node.workspace.registry
            assert tickets is not None
            draft = ContactDraft(
                ContactChannel.CALL,
                caller_phone="79161234567",
                category=Category.TECHNICAL_FAULT,
                group="general",
                operator_id="ivanova",
            )
            contact = await registry.open(draft, actor=OPERATOR, source="test")
            await registry.close(
                contact.number,
                resolution="нужна проверка техотдела",
                category=Category.TECHNICAL_FAULT,
                first_contact_resolution=False,
                actor=OPERATOR,
                source="test",
            )
            await tickets.step()
            [row] = await tickets.queue(actor=SIDOROV, source="test")
            assert row.group == "technical" and row.number == contact.number
            await tickets.set_email(row.id, "citizen@example.org", actor=SIDOROV, source="t")
            await tickets.move(row.id, TicketState.RESOLVED, actor=SIDOROV, source="test")

            callback = await node.callbacks.scheduler.store.active_for("79161234567")
            assert callback is not None
            assert callback.group_id == "general"
            assert callback.data["contact_number"] == str(contact.number)
            [letter] = mailbox.messages
            assert str(contact.number) in letter.get_content()
