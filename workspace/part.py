"""The workspace inside `hotline serve`: the contact registry, the desk and their routes.

`WorkspaceService` is what the composition root builds, wires and stops. Its ports:

* `ring_soon(Ring)` and `answered_soon(call_id)`: the root plugs them into the ACD's offer and
  answer listeners (the workspace does not know the ACD; the root turns an offer into a
  `Ring`);
* `install(app)`: the desktop's routes on the controller's aiohttp application;
* `contact_number(call_id)` and `rate(call_id, mark)`: the menus' contacts port
  (`ivr.menu.model.CallContacts`): the number a caller hears before the rating, and the rating
  stored on the contact. Neither raises: a registry that is down costs the caller the number
  only, never the call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from workspace.desk import Desk
from workspace.http import add_desk_routes
from workspace.pop import Ring
from workspace.registry import ContactRegistry
from workspace.store import ContactStore

log = logging.getLogger(__name__)

__all__ = ["WorkspaceService"]


@dataclass
class WorkspaceService:
    registry: ContactRegistry
    desk: Desk

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

    async def contact_number(self, call_id: str) -> str | None:
        try:
            contact = await self.registry.of_call(call_id)
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: no contact number told")
            return None
        return contact.number.digits if contact is not None else None

    async def rate(self, call_id: str, mark: int) -> None:
        try:
            contact = await self.registry.of_call(call_id)
            if contact is not None:
                await self.registry.rate(contact.number, mark)
        except (SQLAlchemyError, OSError):
            log.exception("contact registry unavailable: the rating stays on the channel only")

    async def start(self) -> None:
        """Nothing to start: the registry is in the database the root already migrated."""

    async def stop(self) -> None:
        await self.desk.idle()  # contacts of calls answered just before the stop are kept
