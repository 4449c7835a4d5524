"""The feedback form: what operators fill in on the desk and the portal and the app send
through the API. Each accepted form is a contact (`ContactChannel.FEEDBACK`) whose number is
the confirmation number the sender gets back.

`read_form(fields)` checks every field and returns either the form or the Russian problems
per field (all of them at once, so a person fixes everything in one go). Hostile input is
refused, not cleaned: control characters (other than line ends in the description), fields
longer than their limit, a date that is not a date. What is kept is shown through Jinja2's
autoescaping and JSON only, so markup in a description stays text.

`FeedbackDesk.submit` checks and scans every attachment before anything is stored: a form
with one refused file stores nothing (no contact, no file) and says which file and why.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from hotline.auth import Actor
from hotline.validators import validate_application, validate_phone
from workspace.attachments import Attachment, Attachments
from workspace.model import Category, Contact, ContactChannel, ContactDraft
from workspace.registry import ContactRegistry
from workspace.scanning import AttachmentRefused, CheckedFile, check_file
from workspace.settings import WorkspaceSettings

__all__ = ["FIELD_LIMITS", "FeedbackDesk", "FeedbackForm", "FormProblems", "read_form"]

FIELD_LIMITS: Final = {"name": 200, "phone": 32, "application": 32, "description": 4000}
_LONGEST_WAIT: Final = timedelta(days=366)


@dataclass(frozen=True)
class FeedbackForm:
    name: str
    phone: str  # normalised 7XXXXXXXXXX
    application: str | None
    description: str
    category: Category
    expected_by: date | None


class FormProblems(Exception):
    """The form's problems: field name -> Russian text."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def _controls(text: str, allow_lines: bool) -> bool:
    allowed = "\n\r\t" if allow_lines else ""
    return any(unicodedata.category(c) in ("Cc", "Cf") and c not in allowed for c in text)


def _text(fields: Mapping[str, object], name: str, problems: dict[str, str]) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str):
        problems[name] = "Ожидается текст."
        return ""
    if len(value) > FIELD_LIMITS[name]:
        problems[name] = f"Не длиннее {FIELD_LIMITS[name]} знаков."
        return ""
    if _controls(value, allow_lines=name == "description"):
        problems[name] = "Недопустимые управляющие символы."
        return ""
    return value.strip()


def read_form(fields: Mapping[str, object], today: date) -> FeedbackForm:
    """The checked form, or `FormProblems` naming every field that is wrong."""
    problems: dict[str, str] = {}
    name = _text(fields, "name", problems)
    if not name and "name" not in problems:
        problems["name"] = "Укажите имя."
    phone = _phone(_text(fields, "phone", problems), problems)
    application = _application(_text(fields, "application", problems), problems)
    description = _text(fields, "description", problems)
    if not description and "description" not in problems:
        problems["description"] = "Опишите обращение."
    category = _category(fields.get("category"), problems)
    expected_by = _expected_by(fields.get("expected_by"), today, problems)
    if problems:
        raise FormProblems(problems)
    assert category is not None
    return FeedbackForm(name, phone, application, description, category, expected_by)


def _phone(raw: str, problems: dict[str, str]) -> str:
    if "phone" in problems:
        return ""
    if not raw:
        problems["phone"] = "Укажите телефон."
        return ""
    verdict = validate_phone(raw)
    if not verdict:
        problems["phone"] = f"Неверный телефон: {verdict.reason}."
    return verdict.normalized


def _application(raw: str, problems: dict[str, str]) -> str | None:
    if "application" in problems or not raw:
        return None
    verdict = validate_application(raw)
    if not verdict:
        problems["application"] = f"Неверный номер заявления: {verdict.reason}."
        return None
    return verdict.normalized


def _category(raw: object, problems: dict[str, str]) -> Category | None:
    if raw in {c.value for c in Category}:
        return Category(str(raw))
    problems["category"] = "Выберите категорию обращения."
    return None


def _expected_by(raw: object, today: date, problems: dict[str, str]) -> date | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) != 10:
        problems["expected_by"] = "Дата в виде ГГГГ-ММ-ДД."
        return None
    try:
        chosen = date.fromisoformat(raw)
    except ValueError:
        problems["expected_by"] = "Дата в виде ГГГГ-ММ-ДД."
        return None
    if not today <= chosen <= today + _LONGEST_WAIT:
        problems["expected_by"] = "Дата — не раньше сегодняшней и не позже чем через год."
        return None
    return chosen


@dataclass(frozen=True)
class Submitted:
    contact: Contact
    attachments: list[Attachment]


class FeedbackDesk:
    """Turns a checked form and its files into a contact with encrypted attachments."""

    def __init__(
        self, registry: ContactRegistry, attachments: Attachments, settings: WorkspaceSettings
    ) -> None:
        self.registry = registry
        self.attachments = attachments
        self.settings = settings

    def check_files(self, files: Sequence[tuple[str, bytes]]) -> list[CheckedFile]:
        """Size, count and type of every file (`AttachmentRefused` at the first refused)."""
        if len(files) > self.settings.max_attachments:
            raise AttachmentRefused(f"Не больше {self.settings.max_attachments} файлов.", "count")
        return [check_file(n, c, self.settings.max_attachment_bytes) for n, c in files]

    async def submit(
        self,
        form: FeedbackForm,
        files: Sequence[tuple[str, bytes]],
        *,
        actor: Actor,
        source: str,
    ) -> Submitted:
        """Check and scan every file, then open the contact and keep the files."""
        checked = self.check_files(files)
        await self.attachments.scan(checked)  # nothing is stored before every file passed
        draft = ContactDraft(
            ContactChannel.FEEDBACK,
            caller_phone=form.phone,
            caller_name=form.name,
            application_number=form.application,
            category=form.category,
            topic="форма обратной связи",
            description=form.description,
            operator_id=actor.user_id if actor.kind != "service" else None,
            expected_by=form.expected_by,
        )
        contact = await self.registry.open(draft, actor=actor, source=source)
        kept = [
            await self.attachments.keep(contact.number, f, self.registry.now()) for f in checked
        ]
        return Submitted(contact, kept)
