"""The workspace inside `hotline serve`: the contact registry, the desk and their routes.

`WorkspaceService` is what the composition root builds, wires and stops. Its ports:

* `ring_soon(Ring)` and `answered_soon(call_id)`: the root plugs them into the ACD's offer and
  answer listeners (the workspace does not know the ACD; the root turns an offer into a
  `Ring`);
* `operator_state(StateBar)`: the root forwards the ACD's operator listeners here (the
  state bar);
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
  preference only, never the call;
* `redeem(caller_id, code)`: the menus' app-code port (`ivr.menu.model.CallIntents`): the
  application number a one-time code from the app stands for, when that phone registered it;
* `retention`: the purge job of contacts and attachments (`workspace.retention`), which the
  root runs on its schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.clock import wall_clock
from hotline.periodic import Periodic
from hotline.private import private_dir
from hotline.validators import validate_phone
from workspace.agency_letters import AgencyLetters
from workspace.attachments import AttachmentFiles, Attachments
from workspace.backoffice import BackOfficeFile
from workspace.backoffice_http import add_backoffice_routes
from workspace.desk import Desk, StateBar
from workspace.feedback import FeedbackDesk
from workspace.feedback_http import add_feedback_routes
from workspace.http import add_desk_routes
from workspace.intents import CallIntents
from workspace.model import ContactChannel, ContactDraft
from workspace.notify import Notifier, SmtpNotifier, SmtpSettings
from workspace.numbers import parse_contact_number
from workspace.pop import Ring
from workspace.registry import MENU, ContactRegistry, RepeatRoute
from workspace.retention import ContactRetention, ContactRetentionTerms
from workspace.scanning import ClamScanner
from workspace.sealing import MasterKeys
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
    feedback: FeedbackDesk
    intents: CallIntents
    retention: ContactRetention
    # Which groups calls can be queued to (the root plugs in the ACD's); a contact whose
    # group is gone routes like a number that names no contact.
    known_group: Callable[[str], bool] = lambda group: True
    settings: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    tickets: TicketDesk | None = None
    agency_letters: AgencyLetters | None = None
    ticket_job: Periodic | None = None
    _purges: Periodic | None = None

    @classmethod
    def build(
        cls,
        engine: AsyncEngine,
        settings: WorkspaceSettings | None = None,
        *,
        backoffice_file: Path | None = None,
        audit: AuditLog | None = None,
        retention_file: str = "dialplans/retention.yaml",
        clock: Callable[[], float] = wall_clock,
    ) -> WorkspaceService:
        """The registry, the desk, the feedback form with its attachments, the app's codes,
        the retention job and, with `backoffice_file` (None: no tickets), the tickets. A
        broken back-office or retention file stops here with its file:line. `audit`: the
        controller's one (keyed) audit log; an unkeyed one if None (tests)."""
        settings = settings or WorkspaceSettings()
        audit = audit or AuditLog(engine)
        registry = ContactRegistry(ContactStore(engine), audit, clock)
        attachments = Attachments(
            engine,
            audit,
            AttachmentFiles(settings.attachments_dir),
            MasterKeys(settings.attachments_keys_dir, settings.attachments_key_id),
            ClamScanner(
                settings.clamscan_command,
                # the settings reader leaves an optional path as the text it read
                Path(settings.clamav_database) if settings.clamav_database else None,
                settings.scan_timeout_seconds,
            ),
        )
        intents = CallIntents(engine, settings, clock)
        terms = ContactRetentionTerms.load(Path(retention_file))
        retention = ContactRetention(engine, attachments, intents, audit, terms, clock)
        feedback = FeedbackDesk(registry, attachments, settings)
        notifier = _notifier(settings)
        service = cls(
            registry,
            Desk(registry),
            feedback,
            intents,
            retention,
            settings=settings,
            agency_letters=AgencyLetters(registry, audit, notifier),
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
        add_feedback_routes(app, self.feedback, self.intents)
        if self.tickets is not None:
            add_backoffice_routes(app, self.tickets)

    def ring_soon(self, ring: Ring) -> None:
        self.desk.ring_soon(ring)

    def answered_soon(self, call_id: str) -> None:
        self.desk.answered_soon(call_id)

    def operator_state(self, status: StateBar) -> None:
        self.desk.operator_state(status)

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

    async def redeem(self, caller_id: str, code: str) -> str | None:
        """The menus' app-code port: the application number of a live code this phone
        registered (spent now), else None (wrong, expired, spent, or the store is down)."""
        phone = validate_phone(caller_id).normalized
        if not phone:
            return None  # no usable caller ID: no code can match
        try:
            return await self.intents.redeem(phone, code)
        except (SQLAlchemyError, OSError):
            log.exception("call intents unavailable: the menu asks as usual")
            return None

    async def voice_message(
        self, call_id: str, *, line: str, phone: str, group: str, topic: str, recording: str
    ) -> str | None:
        """The voice messages' registry port: the message becomes a contact of its own
        (channel voice_message, open until the call back closes it); its number, or None
        when the registry is down (the message and its call back are kept all the same)."""
        draft = ContactDraft(
            channel=ContactChannel.VOICE_MESSAGE,
            line=line,
            call_id=call_id,
            caller_phone=validate_phone(phone).normalized or phone,
            topic=topic,
            description=f"Голосовое сообщение, запись {recording}",
            group=group,
        )
        try:
            contact = await self.registry.open(draft, actor=MENU, source="voice_message")
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: the voice message has no contact")
            return None
        return str(contact.number)

    async def start(self) -> None:
        """The attachments' private directory and a first master key on a fresh install, the
        retention job and the tickets' job; the registry is in the database the root migrated."""
        private_dir(self.settings.attachments_dir)
        self.feedback.attachments.keys.ensure()
        interval = self.settings.retention_interval_seconds
        self._purges = Periodic(self.retention.run, interval, name="contacts-retention", log=log)
        self._purges.start()
        if self.ticket_job is not None:
            self.ticket_job.start()

    async def stop(self) -> None:
        if self._purges is not None:
            await self._purges.close()
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
