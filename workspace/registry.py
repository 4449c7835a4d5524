"""The contact registry as people and the menus use it: every view of a contact is audited.

`ContactRegistry` wraps `workspace.store.ContactStore` with who asks: viewing, listing a
caller's history, searching and closing each leave one row in the audit chain
(`hotline.audit.AuditLog`) naming the actor, the contact number (or the query's size, never its
text: a search for a name is personal data itself) and the outcome. What the system does on
the call path without showing anything to a person (opening the call's contact, telling the
caller its number, storing their rating, routing a keyed-in number) is not an access by a
person and is not audited: it would put several serialised audit writes on every call.

Repeat contacts: a contact is a repeat when the same phone or the same application number
opened another one within `REPEAT_WINDOW` (7 days) before it; the desktop shows
`HISTORY_DAYS` (30) of a caller's history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import wall_clock
from workspace.model import Category, Contact, ContactDraft, ContactState
from workspace.numbers import ContactNumber
from workspace.store import ContactStore

log = logging.getLogger(__name__)

__all__ = ["HISTORY_DAYS", "MENU", "ContactRegistry", "RepeatRoute"]

HISTORY_DAYS: Final = 30
MENU: Final = Actor("menu", "system", kind="system")
_MAX_RESULTS: Final = 200


@dataclass(frozen=True)
class RepeatRoute:
    """Where a caller who keyed in a contact number goes: the contact's group and operator.

    `priority` only when the calling number is the contact's own: a guessed number routes the
    caller like any other and jumps no queue."""

    number: ContactNumber
    group: str
    operator_id: str | None
    priority: bool

    @property
    def printed(self) -> str:
        return str(self.number)


class ContactRegistry:
    def __init__(
        self,
        store: ContactStore,
        audit: AuditLog,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        # Told each contact as it is opened, closed or handed over (the root plugs in the
        # reports' call facts: contact number, first-contact resolution, application). A
        # listener must not block and never raises into the registry.
        self.listeners: list[Callable[[Contact], None]] = []

    def _tell(self, contact: Contact | None) -> None:
        if contact is None:
            return
        for listener in self.listeners:
            try:
                listener(contact)
            except Exception:  # a report's bookkeeping never costs the contact
                log.exception("contact listener failed")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def open(self, draft: ContactDraft, *, actor: Actor, source: str) -> Contact:
        contact = await self._store.open(draft, self.now())
        self._tell(contact)
        if actor.kind != "system" and actor.role != "system":  # a person typed it in
            await self._record(actor, "contact.open", contact.number, source, "ok")
        return contact

    async def view(self, number: ContactNumber, *, actor: Actor, source: str) -> Contact | None:
        contact = await self._store.get(number)
        outcome = "ok" if contact is not None else "not_found"
        await self._record(actor, "contact.view", number, source, outcome)
        return contact

    async def history(
        self,
        *,
        phone: str,
        application: str | None,
        actor: Actor,
        source: str,
        days: int = HISTORY_DAYS,
    ) -> list[Contact]:
        """This caller's contacts (by phone or application) of the last `days`, newest first."""
        since = self.now() - timedelta(days=days)
        found = await self._store.history(
            phone=phone, application=application, since=since, limit=_MAX_RESULTS
        )
        detail = {"results": len(found), "numbers": [str(c.number) for c in found]}
        await self._record(actor, "contact.history", None, source, "ok", detail)
        return found

    async def search(self, text: str, *, actor: Actor, source: str) -> list[Contact]:
        found = await self._store.search(text, _MAX_RESULTS)
        detail = {"query_chars": len(text), "numbers": [str(c.number) for c in found]}
        await self._record(actor, "contact.search", None, source, "ok", detail)
        return found

    async def close(
        self,
        number: ContactNumber,
        *,
        resolution: str,
        category: Category,
        first_contact_resolution: bool,
        actor: Actor,
        source: str,
    ) -> Contact | None:
        """The operator's wrap-up: resolved on the contact, or left for a ticket."""
        state = ContactState.RESOLVED if first_contact_resolution else ContactState.TICKET
        values = {
            "resolution": resolution,
            "category": category.value,
            "first_contact_resolution": first_contact_resolution,
            "state": state.value,
            "closed_at": self.now(),
        }
        contact = await self._store.change(number, values)
        self._tell(contact)
        outcome = "ok" if contact is not None else "not_found"
        await self._record(actor, "contact.close", number, source, outcome)
        return contact

    async def hand_over(
        self, number: ContactNumber, *, resolution: str, actor: Actor, source: str
    ) -> Contact | None:
        """Close a contact another body now carries (a transfer to an agency): resolved here
        by handing over, not a first-contact resolution, and no ticket of ours."""
        values = {
            "resolution": resolution,
            "first_contact_resolution": False,
            "state": ContactState.RESOLVED.value,
            "closed_at": self.now(),
        }
        contact = await self._store.change(number, values)
        self._tell(contact)
        outcome = "ok" if contact is not None else "not_found"
        await self._record(actor, "contact.hand_over", number, source, outcome)
        return contact

    async def rate(self, number: ContactNumber, rating: int) -> Contact | None:
        """The caller's rating (1 to 5) from the menu after the conversation."""
        if not 1 <= rating <= 5:
            raise ValueError(f"a rating is 1 to 5, not {rating}")
        return await self._store.change(number, {"rating": rating})

    async def rate_call(self, call_id: str, rating: int) -> bool:
        """`rate` by the call that opened the contact (one statement: the rating node's)."""
        if not 1 <= rating <= 5:
            raise ValueError(f"a rating is 1 to 5, not {rating}")
        return await self._store.rate_call(call_id, rating)

    async def of_call(self, call_id: str) -> Contact | None:
        """The contact a call opened (the menu tells the caller its number)."""
        return await self._store.by_call(call_id)

    async def repeat_route(self, number: ContactNumber, calling_phone: str) -> RepeatRoute | None:
        """Where a caller who keyed in `number` goes (None: no such contact; the menu must
        not say so, to reveal nothing)."""
        contact = await self._store.get(number)
        if contact is None:
            return None
        own = bool(calling_phone) and calling_phone == contact.caller_phone
        return RepeatRoute(number, contact.group, contact.operator_id, priority=own)

    async def _record(
        self,
        actor: Actor,
        action: str,
        number: ContactNumber | None,
        source: str,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self._audit.record(
            actor,
            action,
            recording_id=None if number is None else str(number),
            source=source,
            outcome=outcome,
            detail=detail,
        )
