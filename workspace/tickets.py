"""Tickets: contacts the operator could not resolve on the call, worked by the back office.

`TicketDesk` is the only way people and jobs touch tickets; it decides who sees what and leaves
an audit row (`hotline.audit.AuditLog`) for every view, list and change:

* a contact closed with "resolved: false" (`ContactState.TICKET`) becomes a ticket of the
  back-office group its category maps to (`dialplans/backoffice.yaml`), due that group's
  `due_hours` later (technical department: 48 hours). The periodic step `adopt` finds such
  contacts, so a ticket is opened even when the wrap-up happened on another node or just
  before a restart; one ticket per contact (a unique key) however many nodes adopt at once;
* supervisors see every ticket; anyone else sees the tickets of the groups they are a member
  of, and another group's ticket answers exactly as a missing one;
* escalation (`escalate`): when `NEAR_SHARE` of a ticket's due time is used it is marked
  `near`, when the due time passes `overdue`; each mark is logged once, counted, and shown
  in the queue; `hotline_tickets_overdue{group}` feeds the alert rule;
* when a ticket is resolved the citizen is told (`notify`): a call back booked through the
  `CitizenCallbacks` port and, when the ticket has an address, a letter through the
  `Notifier`. A failed try is retried by the periodic step; nothing is sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from hotline.audit import AuditLog
from hotline.auth import Actor, Role
from hotline.clock import wall_clock
from workspace.backoffice import BackOffice
from workspace.metrics import CITIZEN_NOTICES, TICKETS_ESCALATED, TICKETS_OVERDUE
from workspace.model import Category, Contact
from workspace.notify import CitizenCallbacks, Letter, Notifier, NotifyFailed
from workspace.registry import ContactRegistry
from workspace.ticket_store import (
    OPEN_STATES,
    Escalation,
    Ticket,
    TicketComment,
    TicketRow,
    TicketState,
    TicketStore,
)

log = logging.getLogger(__name__)

__all__ = ["NEAR_SHARE", "TICKET_JOB", "TicketDesk", "TicketRefused", "TicketView"]

NEAR_SHARE: Final = 0.8  # "near" once 80 % of the due time is used
TICKET_JOB: Final = Actor("tickets", "system", kind="system")
MAX_COMMENT: Final = 4000
_QUEUE_LIMIT: Final = 500
_BATCH: Final = 200
# Which states a ticket may move to from each state (closed is final).
_MOVES: Final = {
    TicketState.NEW: set(TicketState) - {TicketState.NEW},
    TicketState.IN_PROGRESS: set(TicketState) - {TicketState.NEW, TicketState.IN_PROGRESS},
    TicketState.WAITING_CITIZEN: {
        TicketState.IN_PROGRESS,
        TicketState.RESOLVED,
        TicketState.CLOSED,
    },
    TicketState.RESOLVED: {TicketState.IN_PROGRESS, TicketState.CLOSED},
    TicketState.CLOSED: set(),
}


class TicketRefused(Exception):
    """A change that cannot be made; the text is Russian, for the person's screen."""


@dataclass(frozen=True)
class TicketView:
    ticket: Ticket
    contact: Contact


class TicketDesk:
    def __init__(
        self,
        store: TicketStore,
        registry: ContactRegistry,
        audit: AuditLog,
        backoffice: Callable[[], BackOffice],
        *,
        notifier: Notifier | None = None,
        callbacks: CitizenCallbacks | None = None,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._store = store
        self._registry = registry
        self._audit = audit
        self._backoffice = backoffice
        self.notifier = notifier
        self.callbacks = callbacks
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    @property
    def backoffice(self) -> BackOffice:
        return self._backoffice()

    # --- who sees what ------------------------------------------------------------------

    def visible_groups(self, actor: Actor) -> frozenset[str] | None:
        """The groups whose tickets `actor` may see; None: all (supervisors)."""
        if actor.role == Role.SUPERVISOR:
            return None
        return self.backoffice.groups_of(actor.user_id)

    def _may_see(self, actor: Actor, group: str) -> bool:
        groups = self.visible_groups(actor)
        return groups is None or group in groups

    # --- opening ------------------------------------------------------------------------

    async def adopt(self) -> int:
        """Open a ticket for every contact left for one; how many were opened."""
        opened = 0
        office = self.backoffice
        for contact_id, category in await self._store.orphan_contacts(_BATCH):
            group = office.group_for(Category(category))
            now = self.now()
            ticket_id = await self._store.open(contact_id, group.id, now, now + group.due)
            if ticket_id is not None:
                opened += 1
                log.info("ticket opened", extra={"ticket": ticket_id, "group": group.id})
        return opened

    # --- the work queue -----------------------------------------------------------------

    async def queue(self, *, actor: Actor, source: str) -> list[TicketRow]:
        groups = self.visible_groups(actor)
        rows = await self._store.queue(groups, _QUEUE_LIMIT)
        detail = {"results": len(rows), "tickets": [r.id for r in rows]}
        await self._record(actor, "ticket.queue", None, source, "ok", detail)
        return rows

    async def view(self, ticket_id: int, *, actor: Actor, source: str) -> TicketView | None:
        """The ticket and its contact (the contact's view is audited by the registry)."""
        ticket = await self._visible(ticket_id, actor, source, "ticket.view")
        if ticket is None:
            return None
        contact = await self._registry.view(ticket.row.number, actor=actor, source=source)
        assert contact is not None, "a ticket's contact is never deleted while it is open"
        return TicketView(ticket, contact)

    async def _visible(
        self, ticket_id: int, actor: Actor, source: str, action: str
    ) -> Ticket | None:
        ticket = await self._store.get(ticket_id)
        if ticket is None or not self._may_see(actor, ticket.row.group):
            outcome = "not_found" if ticket is None else "denied"
            await self._record(actor, action, ticket_id, source, outcome)
            return None  # another group's ticket answers exactly as a missing one
        await self._record(actor, action, ticket_id, source, "ok")
        return ticket

    # --- changes ------------------------------------------------------------------------

    async def comment(self, ticket_id: int, text: str, *, actor: Actor, source: str) -> Ticket:
        text = text.strip()
        if not text:
            raise TicketRefused("Комментарий пуст.")
        if len(text) > MAX_COMMENT:
            raise TicketRefused(f"Комментарий: не длиннее {MAX_COMMENT} знаков.")
        ticket = await self._changeable(ticket_id, actor, source, "ticket.comment")
        await self._store.comment(
            ticket_id, TicketComment(self.now(), actor.user_id, actor.role, text)
        )
        return await self._reread(ticket.row.id)

    async def assign(
        self, ticket_id: int, user_id: str | None, *, actor: Actor, source: str
    ) -> Ticket:
        ticket = await self._changeable(ticket_id, actor, source, "ticket.assign")
        group = self.backoffice.groups.get(ticket.row.group)
        if user_id is not None and (group is None or user_id not in group.members):
            raise TicketRefused("Назначить можно только сотрудника группы этой заявки.")
        await self._store.change(ticket_id, self.now(), {"assignee": user_id})
        return await self._reread(ticket_id)

    async def move(
        self, ticket_id: int, state: TicketState, *, actor: Actor, source: str
    ) -> Ticket:
        ticket = await self._changeable(ticket_id, actor, source, "ticket.state")
        if state not in _MOVES[ticket.row.state]:
            raise TicketRefused("Такой переход состояния заявки невозможен.")
        values: dict[str, object] = {"state": state.value}
        if state is TicketState.RESOLVED:
            values["resolved_at"] = self.now()
        await self._store.change(ticket_id, self.now(), values)
        moved = await self._reread(ticket_id)
        if state is TicketState.RESOLVED:
            await self.notify(moved)
        return moved

    async def set_email(
        self, ticket_id: int, address: str | None, *, actor: Actor, source: str
    ) -> Ticket:
        """Where the citizen asked to be told of the outcome (None: by the call back only)."""
        if address is not None and not _plausible_email(address):
            raise TicketRefused("Адрес электронной почты указан неверно.")
        await self._changeable(ticket_id, actor, source, "ticket.email")
        await self._store.change(ticket_id, self.now(), {"notify_email": address})
        return await self._reread(ticket_id)

    async def _changeable(self, ticket_id: int, actor: Actor, source: str, action: str) -> Ticket:
        ticket = await self._visible(ticket_id, actor, source, action)
        if ticket is None:
            raise LookupError(ticket_id)
        if ticket.row.state is TicketState.CLOSED:
            raise TicketRefused("Заявка закрыта.")
        return ticket

    async def _reread(self, ticket_id: int) -> Ticket:
        ticket = await self._store.get(ticket_id)
        assert ticket is not None, "tickets are never deleted"
        return ticket

    # --- escalation and notices (the periodic step) -------------------------------------

    async def step(self) -> None:
        """What the periodic job does each tick."""
        await self.adopt()
        await self.escalate()
        await self.notify_pending()

    async def escalate(self) -> dict[str, int]:
        """Mark tickets near or past their due time; the overdue count per group."""
        now = self.now()
        for group in self.backoffice.groups.values():
            near_from = now + group.due * (1 - NEAR_SHARE)
            for ticket_id in await self._store.escalate(
                level=Escalation.NEAR, deadline=near_from, now=now, group=group.id
            ):
                await self._told(ticket_id, group.id, Escalation.NEAR)
        for ticket_id in await self._store.escalate(
            level=Escalation.OVERDUE, deadline=now, now=now
        ):
            ticket = await self._reread(ticket_id)
            await self._told(ticket_id, ticket.row.group, Escalation.OVERDUE)
        overdue = await self._store.overdue_by_group()
        for group_id in set(self.backoffice.groups) | set(overdue):
            TICKETS_OVERDUE.labels(group_id).set(overdue.get(group_id, 0))
        return overdue

    async def _told(self, ticket_id: int, group_id: str, level: Escalation) -> None:
        """Log and count a new mark; mail the group when it has an address (best effort: the
        mark, the queue's highlight and the alert do not depend on it)."""
        TICKETS_ESCALATED.labels(group_id, level.value).inc()
        text = "ticket due time near" if level is Escalation.NEAR else "ticket overdue"
        log.warning(text, extra={"ticket": ticket_id, "group": group_id})
        group = self.backoffice.groups.get(group_id)
        if group is None or group.email is None or self.notifier is None:
            return
        ticket = await self._reread(ticket_id)
        try:
            await self.notifier.send(escalation_letter(ticket, group.email, level))
        except NotifyFailed:
            log.warning("escalation letter not sent", extra={"ticket": ticket_id})

    async def notify_pending(self) -> None:
        for ticket_id in await self._store.unnotified(_BATCH):
            await self.notify(await self._reread(ticket_id))

    async def notify(self, ticket: Ticket) -> None:
        """Tell the citizen their ticket is resolved: the call back, then the letter; each is
        done once, a failure is tried again at the next tick."""
        if ticket.callback_at is None:
            await self._book_callback(ticket)
        if ticket.notified_at is None:
            await self._send_letter(ticket)

    async def _book_callback(self, ticket: Ticket) -> None:
        if not await self._store.claim(ticket.row.id, "callback_at", self.now()):
            return  # another node is booking it
        try:
            await self._book_claimed(ticket)
        except BaseException:
            await self._store.release(ticket.row.id, "callback_at")  # the next tick retries
            raise

    async def _book_claimed(self, ticket: Ticket) -> None:
        contact = await self._registry.view(ticket.row.number, actor=TICKET_JOB, source="tickets")
        if contact is None or self.callbacks is None or not contact.caller_phone:
            CITIZEN_NOTICES.labels("callback", "none").inc()
        else:
            group = self.backoffice.groups.get(ticket.row.group)
            acd_group = (group.callback_group if group else None) or contact.group
            booked = await self.callbacks.book(
                phone=contact.caller_phone, group=acd_group, contact_number=str(contact.number)
            )
            CITIZEN_NOTICES.labels("callback", "sent" if booked else "refused").inc()
            if not booked:  # a refusal is final (a number that may not be called)
                log.warning("citizen's call back refused", extra={"ticket": ticket.row.id})

    async def _send_letter(self, ticket: Ticket) -> None:
        if not await self._store.claim(ticket.row.id, "notified_at", self.now()):
            return  # another node is sending it
        if ticket.notify_email and self.notifier is not None:
            try:
                await self.notifier.send(citizen_letter(ticket))
            except NotifyFailed:
                CITIZEN_NOTICES.labels("email", "failed").inc()
                await self._store.release(ticket.row.id, "notified_at")  # the next tick retries
                return
            except BaseException:  # stopped mid-send: the next start tries again
                await self._store.release(ticket.row.id, "notified_at")
                raise
            CITIZEN_NOTICES.labels("email", "sent").inc()
            await self._record(TICKET_JOB, "ticket.notify", ticket.row.id, "smtp", "ok")
        else:
            CITIZEN_NOTICES.labels("email", "none").inc()

    async def _record(
        self,
        actor: Actor,
        action: str,
        ticket_id: int | None,
        source: str,
        outcome: str,
        detail: dict[str, object] | None = None,
    ) -> None:
        await self._audit.record(
            actor,
            action,
            recording_id=None if ticket_id is None else f"ticket:{ticket_id}",
            source=source,
            outcome=outcome,
            detail=detail,
        )


def escalation_letter(ticket: Ticket, to: str, level: Escalation) -> Letter:
    """The group's reminder: the ticket and its due time, no citizen's data."""
    number = str(ticket.row.number)
    due = f"{ticket.row.due_at:%d.%m.%Y %H:%M} UTC"
    what = "срок подходит к концу" if level is Escalation.NEAR else "срок истёк"
    body = (
        f"Заявка по обращению № {number}: {what} ({due}).\n"
        f"Откройте её в очереди заявок: /backoffice/tickets/{ticket.row.id}\n"
    )
    return Letter(to, f"Заявка {number}: {what}", body)


def citizen_letter(ticket: Ticket) -> Letter:
    """The citizen's letter: the contact number and the outcome, nothing that identifies them."""
    assert ticket.notify_email is not None
    number = str(ticket.row.number)
    body = (
        "Здравствуйте!\n\n"
        f"Ваше обращение № {number} на горячую линию рассмотрено, вопрос решён.\n"
        "Оператор перезвонит вам, чтобы рассказать о решении. Если вопрос остался, позвоните "
        f"на горячую линию и назовите номер обращения {number}.\n\n"
        "Это письмо отправлено автоматически, отвечать на него не нужно.\n"
    )
    return Letter(ticket.notify_email, f"Обращение № {number}: вопрос решён", body)


def _plausible_email(address: str) -> bool:
    local, at, domain = address.partition("@")
    return (
        bool(at and local and "." in domain)
        and len(address) <= 254
        and not any(c.isspace() or c in "<>,;\"'" for c in address)
    )


def is_open(state: TicketState) -> bool:
    return state in OPEN_STATES
