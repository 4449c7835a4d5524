"""Attachments of contacts: checked, scanned, encrypted, stored, read under audit, shredded.

A file reaches storage only after `workspace.scanning` accepted its size and type and ClamAV
found it clean. It is stored encrypted (`workspace.sealing`: its own data key, wrapped by a
master key outside the database) under a random 128-bit id in a private directory (0700,
files 0600): the file on disk is never the plaintext. The row keeps the name, type, size and
wrapped key; shredding clears the key (from then on no copy opens) and deletes the file.
Every download is audited (`contact.attachment.read`), refusals too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.private import open_private, private_dir
from hotline.store.db import Base, UTCDateTime
from workspace.numbers import ContactNumber
from workspace.scanning import CheckedFile, ClamScanner
from workspace.sealing import MasterKeys, SealError, WrappedDataKey, open_sealed, seal

__all__ = ["Attachment", "AttachmentFiles", "Attachments", "attachments_table"]

_ID_BYTES: Final = 16

attachments_table = Table(
    "contact_attachments",
    Base.metadata,
    Column("id", String, primary_key=True),
    Column("contact_year", Integer, nullable=False),
    Column("contact_sequence", Integer, nullable=False),
    Column("name", String, nullable=False),
    Column("media_type", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
    Column("key_id", String, nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL: shredded
    Column("shredded_at", UTCDateTime, nullable=True),
    Index("ix_contact_attachments_contact", "contact_year", "contact_sequence"),
    Index("ix_contact_attachments_stored_at", "stored_at"),
)


@dataclass(frozen=True)
class Attachment:
    id: str
    contact: ContactNumber
    name: str
    media_type: str
    size: int
    stored_at: datetime
    shredded: bool


class AttachmentFiles:
    """The ciphertext files: one per attachment id, in a private directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, attachment_id: str) -> Path:
        if not attachment_id.isalnum():  # ids are hex: nothing else ever becomes a path
            raise ValueError("not an attachment id")
        return self.root / attachment_id[:2] / attachment_id

    def write(self, attachment_id: str, ciphertext: bytes) -> None:
        path = self.path(attachment_id)
        private_dir(path.parent)
        with open_private(path, exclusive=True) as handle:
            handle.write(ciphertext)

    def read(self, attachment_id: str) -> bytes:
        return self.path(attachment_id).read_bytes()

    def delete(self, attachment_id: str) -> None:
        self.path(attachment_id).unlink(missing_ok=True)  # missing: an earlier run got here


class Attachments:
    """The attachments of contacts, for the feedback form, the desk and the retention job."""

    def __init__(
        self,
        engine: AsyncEngine,
        audit: AuditLog,
        files: AttachmentFiles,
        keys: MasterKeys,
        scanner: ClamScanner,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self.files = files
        self.keys = keys
        self.scanner = scanner

    async def scan(self, checked: list[CheckedFile]) -> None:
        """ClamAV on every file; the first refusal raises `AttachmentRefused`."""
        for file in checked:
            await self.scanner.scan(file)

    async def keep(self, contact: ContactNumber, file: CheckedFile, at: datetime) -> Attachment:
        """Encrypt and store one scanned file for `contact`."""
        attachment_id = secrets.token_hex(_ID_BYTES)
        self.keys.ensure()
        ciphertext, wrapped = seal(self.keys, attachment_id, file.content)
        self.files.write(attachment_id, ciphertext)
        values = {
            "id": attachment_id,
            "contact_year": contact.year,
            "contact_sequence": contact.sequence,
            "name": file.name,
            "media_type": file.media_type,
            "size": len(file.content),
            "stored_at": at,
            "key_id": wrapped.key_id,
            "key_version": wrapped.key_version,
            "wrapped_key": wrapped.wrapped,
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(attachments_table).values(**values))
        except BaseException:
            self.files.delete(attachment_id)  # no row: no orphan ciphertext either
            raise
        return Attachment(attachment_id, contact, file.name, file.media_type,
                          len(file.content), at, shredded=False)  # fmt: skip

    async def of_contact(self, contact: ContactNumber) -> list[Attachment]:
        statement = (
            select(attachments_table)
            .where(
                attachments_table.c.contact_year == contact.year,
                attachments_table.c.contact_sequence == contact.sequence,
            )
            .order_by(attachments_table.c.stored_at, attachments_table.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_attachment(row._mapping) for row in rows]

    async def read(
        self, attachment_id: str, *, actor: Actor, source: str
    ) -> tuple[Attachment, bytes] | None:
        """The attachment and its plaintext (audited); None when missing or shredded."""
        row = await self._row(attachment_id)
        if row is None or row["wrapped_key"] is None:
            await self._record(actor, attachment_id, source, "not_found")
            return None
        wrapped = WrappedDataKey(row["key_id"], row["key_version"], row["wrapped_key"])
        try:
            plaintext = open_sealed(
                self.keys, attachment_id, wrapped, self.files.read(attachment_id)
            )
        except (SealError, FileNotFoundError):
            await self._record(actor, attachment_id, source, "error")
            raise
        await self._record(actor, attachment_id, source, "ok")
        return _attachment(row), plaintext

    async def shred(self, attachment_id: str, at: datetime) -> None:
        """Crypto-shred: the wrapped key goes first (committed), then the file."""
        statement = (
            update(attachments_table)
            .where(attachments_table.c.id == attachment_id)
            .values(wrapped_key=None, shredded_at=at)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
        self.files.delete(attachment_id)

    async def _row(self, attachment_id: str) -> Any:
        if not attachment_id.isalnum() or len(attachment_id) != 2 * _ID_BYTES:
            return None
        statement = select(attachments_table).where(attachments_table.c.id == attachment_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else row._mapping

    async def _record(self, actor: Actor, attachment_id: str, source: str, outcome: str) -> None:
        await self._audit.record(
            actor, "contact.attachment.read", recording_id=attachment_id, source=source,
            outcome=outcome,
        )  # fmt: skip


def _attachment(row: Any) -> Attachment:
    return Attachment(
        id=row["id"],
        contact=ContactNumber(row["contact_year"], row["contact_sequence"]),
        name=row["name"],
        media_type=row["media_type"],
        size=row["size"],
        stored_at=row["stored_at"],
        shredded=row["wrapped_key"] is None,
    )
