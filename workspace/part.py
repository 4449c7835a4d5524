"""The workspace inside `hotline serve`: the contact registry, the desk and their routes.

`WorkspaceService` is what the composition root builds, wires and stops. Its ports:

* `ring_soon(Ring)` and `answered_soon(call_id)`: the root plugs them into the ACD's offer and
  answer listeners (the workspace does not know the ACD; the root turns an offer into a
  `Ring`);
* `operator_state(StateBar)`: the root forwards the ACD's operator listeners here (the
  state bar);
* `install(app)`: the desktop's routes on the controller's aiohttp application;
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

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.validators import validate_phone
from workspace.desk import Desk, StateBar
from workspace.http import add_desk_routes
from workspace.numbers import parse_contact_number
from workspace.pop import Ring
from workspace.registry import ContactRegistry, RepeatRoute
from workspace.store import ContactStore

log = logging.getLogger(__name__)

__all__ = ["WorkspaceService"]


@dataclass
class WorkspaceService:
    registry: ContactRegistry
    desk: Desk
    # Which groups calls can be queued to (the root plugs in the ACD's); a contact whose
    # group is gone routes like a number that names no contact.
    known_group: Callable[[str], bool] = lambda group: True

    @classmethod
    def build(cls, engine: AsyncEngine) -> WorkspaceService:
        registry = ContactRegistry(ContactStore(engine), AuditLog(engine))
        return cls(registry, Desk(registry))

    def install(self, app: web.Application) -> None:
        add_desk_routes(app, self.desk, self.registry)

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

    async def start(self) -> None:
        """Nothing to start: the registry is in the database the root already migrated."""

    async def stop(self) -> None:
        await self.desk.idle()  # contacts of calls answered just before the stop are kept
