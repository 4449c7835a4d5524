"""The workspace inside `hotline serve`: the contact registry, the desk and their routes.

`WorkspaceService` is what the composition root builds, wires and stops. Its ports:

* `ring_soon(Ring)` and `answered_soon(call_id)`: the root plugs them into the ACD's offer and
  answer listeners (the workspace does not know the ACD; the root turns an offer into a
  `Ring`);
* `install(app)`: the desktop's routes on the controller's aiohttp application, and the back
  office's work queue (`/backoffice`) when the back-office file is given;
* `tickets.callbacks` (`workspace.notify.CitizenCallbacks`): the root plugs in routing's
  callback booking, so a resolved ticket calls the citizen back;
* `agency_letters` (`workspace.agency_letters.AgencyLetters`): what the root plugs into
  `agents.escalation`'s `AgencyTransfers` port (registry entry + letter to the agency);
* `contact_number(call_id)`, `rate(call_id, mark)` and `route(digits, caller_id)`: the
  menus' contacts port (`ivr.menu.model.CallContacts`): the number a caller hears before the
  rating, the rating stored on the contact, and where a caller who keys in a contact number
  goes. None of them raises: a registry that is down costs the caller the number or the
  preference only, never the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.periodic import Periodic
from hotline.validators import validate_phone
from workspace.agency_letters import AgencyLetters
from workspace.backoffice import BackOfficeFile
from workspace.backoffice_http import add_backoffice_routes
from workspace.desk import Desk
from workspace.http import add_desk_routes
from workspace.notify import Notifier, SmtpNotifier, SmtpSettings
from workspace.numbers import parse_contact_number
from workspace.pop import Ring
from workspace.registry import ContactRegistry, RepeatRoute
from workspace.settings import WorkspaceSettings
from workspace.store import ContactStore
from workspace.ticket_store import TicketStore
from workspace.tickets import TicketDesk

log = logging.getLogger(__name__)

__all__ = ["WorkspaceService"]


@dataclass
class WorkspaceService:
    registry: ContactRegistry
    desk: Desk
    # Which groups calls can be queued to (the root plugs in the ACD's); a contact whose
    # group is gone routes like a number that names no contact.
    known_group: Callable[[str], bool] = lambda group: True
    tickets: TicketDesk | None = None
    agency_letters: AgencyLetters | None = None
    ticket_job: Periodic | None = None

    @classmethod
    def build(
        cls,
        engine: AsyncEngine,
        settings: WorkspaceSettings | None = None,
        *,
        backoffice_file: Path | None = None,
        audit: AuditLog | None = None,
    ) -> WorkspaceService:
        """`backoffice_file`: the groups file (None: no tickets); a broken one raises
        `hotline.yamldoc.YamlFileError` with its file:line, which stops the start. `audit`:
        the controller's one (keyed) audit log; an unkeyed one if None (tests)."""
        settings = settings or WorkspaceSettings()
        audit = audit or AuditLog(engine)
        registry = ContactRegistry(ContactStore(engine), audit)
        notifier = _notifier(settings)
        service = cls(
            registry, Desk(registry), agency_letters=AgencyLetters(registry, audit, notifier)
        )
        if backoffice_file is not None:
            office = BackOfficeFile(backoffice_file)
            tickets = TicketDesk(
                TicketStore(engine), registry, audit, lambda: office.current, notifier=notifier
            )
            service.tickets = tickets
            service.ticket_job = Periodic(
                tickets.step, settings.ticket_seconds, name="tickets", log=log
            )
        return service

    def install(self, app: web.Application) -> None:
        add_desk_routes(app, self.desk, self.registry)
        if self.tickets is not None:
            add_backoffice_routes(app, self.tickets)

    def ring_soon(self, ring: Ring) -> None:
        self.desk.ring_soon(ring)

    def answered_soon(self, call_id: str) -> None:
        self.desk.answered_soon(call_id)

    async def contact_number(self, call_id: str) -> str | None:
        try:
            contact = await self.registry.of_call(call_id)
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: no contact number told")
            return None
        return contact.number.digits if contact is not None else None

    async def rate(self, call_id: str, mark: int) -> None:
        try:
            await self.registry.rate_call(call_id, mark)
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: the rating stays on the channel only")

    async def route(self, digits: str, caller_id: str) -> RepeatRoute | None:
        """The menus' repeat-contact port: where a keyed-in contact number leads."""
        number = parse_contact_number(digits)
        if number is None:
            return None
        phone = validate_phone(caller_id).normalized or caller_id
        try:
            route = await self.registry.repeat_route(number, phone)
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: the caller is queued as usual")
            return None
        if route is None or not self.known_group(route.group):
            return None
        return route

    async def start(self) -> None:
        """The tickets' periodic job (the registry is in the database the root migrated)."""
        if self.ticket_job is not None:
            self.ticket_job.start()

    async def stop(self) -> None:
        if self.ticket_job is not None:
            await self.ticket_job.close()
        await self.desk.idle()  # contacts of calls answered just before the stop are kept
        if self.agency_letters is not None:
            await self.agency_letters.idle()


def _notifier(settings: WorkspaceSettings) -> Notifier | None:
    if not settings.smtp_host:
        log.warning("[workspace] smtp_host is empty: no letters to citizens or agencies")
        return None
    return SmtpNotifier(
        SmtpSettings(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            timeout_seconds=settings.smtp_timeout_seconds,
        )
    )
