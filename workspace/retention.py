"""Retention of contacts and their attachments, like recordings'.

Terms come from the same file as recordings' (`dialplans/retention.yaml`), as two categories
of its `categories:` (the recorder reads that file too and ignores what it does not record):

    categories:
      contacts: 1095       # a contact's personal fields, from its closing (else opening)
      attachments: 365     # attachments' files, from their upload

A missing category takes the file's `default_days`; a missing file, `DEFAULT_DAYS`.

`ContactRetention.run()` (the root runs it on a schedule; tests drive it with a hand clock):

1. contacts past their term are **anonymised**: name, phone, identity documents, application
   number, description and resolution are cleared; what statistics need stays (channel, line,
   category, topic, group, operator, state, first-contact resolution, rating, repeat flag,
   times). Their attachments are shredded with them, whatever the attachments' own term;
2. attachments past their term are **crypto-shredded** (wrapped key cleared, file deleted);
3. spent and expired call-intent codes are deleted.

Each step is idempotent: a run that stopped midway is finished by the next one. One audit
entry per run names what was anonymised and shredded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import wall_clock
from hotline.yamldoc import YamlDoc
from workspace.attachments import Attachments, attachments_table
from workspace.intents import CallIntents
from workspace.numbers import ContactNumber
from workspace.store import contacts

__all__ = ["DEFAULT_DAYS", "ContactRetention", "ContactRetentionTerms", "RetentionRun"]

DEFAULT_DAYS: Final = 365
_MAX_DAYS: Final = 100 * 366
_BATCH: Final = 500
CONTACTS_JOB: Final = Actor("contacts-retention", "system", kind="system")


@dataclass(frozen=True)
class ContactRetentionTerms:
    contacts_days: int = DEFAULT_DAYS
    attachments_days: int = DEFAULT_DAYS

    @classmethod
    def load(cls, path: Path) -> ContactRetentionTerms:
        """The terms in `path` (`YamlFileError` with file:line when broken); defaults
        without the file."""
        if not path.exists():
            return cls()
        doc = YamlDoc(path)
        top = doc.mapping(doc.root, "the retention file")
        default = DEFAULT_DAYS
        if "default_days" in top:
            default = doc.integer(top["default_days"][1], "default_days", low=1, high=_MAX_DAYS)
        days = {"contacts": default, "attachments": default}
        if "categories" in top:
            listed = doc.mapping(top["categories"][1], "categories")
            for name in days:
                if name in listed:
                    node = listed[name][1]
                    days[name] = doc.integer(node, f"categories.{name}", low=1, high=_MAX_DAYS)
        return cls(days["contacts"], days["attachments"])


@dataclass
class RetentionRun:
    anonymised: list[str] = field(default_factory=list)  # contact numbers
    shredded: list[str] = field(default_factory=list)  # attachment ids
    codes_deleted: int = 0


_CLEARED: Final = {
    "caller_phone": "",
    "caller_name": "",
    "identifiers": "{}",
    "application_number": None,
    "description": "",
    "resolution": "",
}


class ContactRetention:
    def __init__(
        self,
        engine: AsyncEngine,
        attachments: Attachments,
        intents: CallIntents,
        audit: AuditLog,
        terms: ContactRetentionTerms,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self._engine = engine
        self._attachments = attachments
        self._intents = intents
        self._audit = audit
        self.terms = terms
        self._clock = clock

    async def run(self) -> RetentionRun:
        now = datetime.fromtimestamp(self._clock(), UTC)
        done = RetentionRun()
        await self._anonymise(now, done)
        await self._shred(now, done)
        done.codes_deleted = await self._intents.purge_spent()
        if done.anonymised or done.shredded:
            await self._audit.record(
                CONTACTS_JOB, "contact.retention", recording_id=None, source="retention",
                outcome="ok",
                detail={"anonymised": done.anonymised, "shredded": done.shredded},
            )  # fmt: skip
        return done

    async def _anonymise(self, now: datetime, done: RetentionRun) -> None:
        cutoff = now - timedelta(days=self.terms.contacts_days)
        ended = func.coalesce(contacts.c.closed_at, contacts.c.opened_at)
        due = select(contacts.c.id, contacts.c.year, contacts.c.sequence, contacts.c.topic).where(
            contacts.c.anonymised_at.is_(None), ended < cutoff
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(due.limit(_BATCH))).all()
        for row in rows:
            # the files first: a crash in between leaves a contact the next run finishes
            await self._shred_where(
                and_(
                    attachments_table.c.contact_year == row.year,
                    attachments_table.c.contact_sequence == row.sequence,
                ),
                now,
                done,
            )
            values = {**_CLEARED, "search_text": row.topic.casefold(), "anonymised_at": now}
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(contacts).where(contacts.c.id == row.id).values(**values)
                )
            done.anonymised.append(str(ContactNumber(row.year, row.sequence)))

    async def _shred(self, now: datetime, done: RetentionRun) -> None:
        cutoff = now - timedelta(days=self.terms.attachments_days)
        await self._shred_where(attachments_table.c.stored_at < cutoff, now, done)

    async def _shred_where(self, which: object, now: datetime, done: RetentionRun) -> None:
        live = or_(
            attachments_table.c.wrapped_key.is_not(None), attachments_table.c.shredded_at.is_(None)
        )
        statement = select(attachments_table.c.id).where(which, live).limit(_BATCH)  # type: ignore[arg-type]
        async with self._engine.connect() as connection:
            ids = [row.id for row in (await connection.execute(statement)).all()]
        for attachment_id in ids:
            await self._attachments.shred(attachment_id, now)
            done.shredded.append(attachment_id)
