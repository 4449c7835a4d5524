"""The screen pop: what an operator sees the moment their phone rings.

The root turns the ACD's offer into a `Ring` (the workspace does not know the ACD) and the
desk (`workspace.desk.Desk`) builds a `Pop` from it: the line dialled, the caller's number,
the menu path and topic, what the caller keyed in and what the menu found, the time waited,
and this caller's contacts of the last 30 days with the repeat flag.

Identity documents keyed in the menu (SNILS, INN, passport, OMS, licence) are shown masked
(the last digits only): the operator confirms them with the caller rather than reading them
off the screen. The application number and its status are shown whole: they are what the
caller is calling about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from hotline.logs import mask_number
from workspace.model import CATEGORY_TITLES, Contact

__all__ = ["IDENTITY_ENTRIES", "Pop", "Ring", "masked_entries"]

# Entries that identify a person: masked on the pop.
IDENTITY_ENTRIES: Final = frozenset(
    {"snils", "inn", "passport", "oms", "driving_licence", "portal_account", "birth_date"}
)
# Entries shown apart from the rest (with titles of their own).
_CONTEXT_ENTRIES: Final = frozenset(
    {
        "line",
        "menu_path",
        "topic",
        "application",
        "status_status",
        "group",
        "contact_number",
        "preferred_operator",
    }
)


@dataclass(frozen=True)
class Ring:
    """An operator's phone is about to ring for a caller (from the ACD's offer)."""

    call_id: str
    operator_id: str
    group: str
    caller_phone: str
    entries: dict[str, str]  # what the menu passed on: the caller's entries, line, menu path
    waited_seconds: float


@dataclass(frozen=True)
class Pop:
    call_id: str
    operator_id: str
    group: str
    line: str
    caller_phone: str
    menu_path: str
    topic: str
    application_number: str | None
    application_status: str | None
    entries: dict[str, str]  # the other entries, identity documents masked
    waited_seconds: int
    # this caller's (phone or application) contacts of the last 30 days, newest first
    history: list[Contact] = field(default_factory=list)
    repeat: bool = False  # one of them within the repeat window (7 days)
    # the contact the caller keyed in the number of (a repeat contact by number)
    about: Contact | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "group": self.group,
            "line": self.line,
            "caller_phone": self.caller_phone,
            "menu_path": self.menu_path,
            "topic": self.topic,
            "application_number": self.application_number,
            "application_status": self.application_status,
            "entries": self.entries,
            "waited_seconds": self.waited_seconds,
            "repeat": self.repeat,
            "history": [_history_line(c) for c in self.history],
            "about": _history_line(self.about) if self.about is not None else None,
        }


def masked_entries(entries: dict[str, str]) -> dict[str, str]:
    """The caller's other entries for the pop, identity documents masked."""
    return {
        name: mask_number(value) if name in IDENTITY_ENTRIES else value
        for name, value in sorted(entries.items())
        if name not in _CONTEXT_ENTRIES
    }


def _history_line(contact: Contact) -> dict[str, Any]:
    return {
        "number": str(contact.number),
        "opened_at": contact.opened_at.isoformat(),
        "category": CATEGORY_TITLES[contact.category],
        "state": contact.state.value,
        "description": contact.description,
        "resolution": contact.resolution,
        "repeat": contact.repeat,
    }
