"""Create the contact registry: every request a citizen makes, numbered (the workspace's branch).

Revision ID: 0007_contacts
Revises: 0001
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.
`contact_counters` hands out each year's sequence numbers atomically (one row per year), so
two controller nodes never give the same number. `search_text` is the case-folded text the
full-text search reads; PostgreSQL indexes it with a Russian GIN index, SQLite scans it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_contacts"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("workspace",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_counters",
        sa.Column("year", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer(), nullable=False),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("call_id", sa.String(), nullable=True),
        sa.Column("caller_phone", sa.String(), nullable=False),
        sa.Column("caller_name", sa.String(), nullable=False),
        sa.Column("identifiers", sa.String(), nullable=False),
        sa.Column("application_number", sa.String(), nullable=True),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("group_name", sa.String(), nullable=False),
        sa.Column("operator_id", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("resolution", sa.String(), nullable=False),
        sa.Column("first_contact_resolution", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.String(), nullable=False),
        sa.UniqueConstraint("year", "sequence", name="uq_contacts_number"),
    )
    op.create_index("ix_contacts_caller_phone", "contacts", ["caller_phone", "opened_at"])
    op.create_index(
        "ix_contacts_application_number", "contacts", ["application_number", "opened_at"]
    )
    op.create_index("ix_contacts_opened_at", "contacts", ["opened_at"])
    op.create_index("ix_contacts_call_id", "contacts", ["call_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_contacts_search ON contacts "
            "USING gin (to_tsvector('russian', search_text))"
        )


def downgrade() -> None:
    op.drop_table("contacts")
    op.drop_table("contact_counters")
