"""Feedback attachments, the app's call intents, and contacts' anonymisation mark.

Revision ID: 0010_feedback
Revises: 0009_tickets
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.
`contact_attachments` keeps each file's name, type, size and wrapped data key (NULL once
crypto-shredded); the ciphertext lives in the attachments directory. `call_intents` keeps the
app's one-time codes as hashes. `contacts.anonymised_at` marks a contact whose personal fields
the retention job has cleared (its statistics stay); `contacts.expected_by` is the
feedback form's expected resolution date.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_feedback"
down_revision: str | Sequence[str] | None = "0009_tickets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_attachments",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("contact_year", sa.Integer(), nullable=False),
        sa.Column("contact_sequence", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_contact_attachments_contact",
        "contact_attachments",
        ["contact_year", "contact_sequence"],
    )
    op.create_index("ix_contact_attachments_stored_at", "contact_attachments", ["stored_at"])
    op.create_table(
        "call_intents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("application_number", sa.String(), nullable=False),
        sa.Column("code_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wrong_codes", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
    )
    op.create_index("ix_call_intents_phone", "call_intents", ["phone", "created_at"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expected_by", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("expected_by")
        batch.drop_column("anonymised_at")
    op.drop_index("ix_call_intents_phone", table_name="call_intents")
    op.drop_table("call_intents")
    op.drop_index("ix_contact_attachments_stored_at", table_name="contact_attachments")
    op.drop_index("ix_contact_attachments_contact", table_name="contact_attachments")
    op.drop_table("contact_attachments")
