"""Contact search reads a stored tsvector; a call's contact keeps the caller's wait (the
workspace's branch).

Revision ID: 0011_contact_search
Revises: 0010_feedback
Create Date: 2026-12-05

Written by hand and frozen. On PostgreSQL the Russian full-text search used to match
`to_tsvector('russian', search_text)` computed at query time: the GIN index finds the rows,
but every candidate row is re-checked by computing its vector again, and a common word
(a tenth of a million contacts) took over a second (bench/contact_search.py). A generated,
stored column holds the vector once per row; the GIN index is on it, and the planner can also
walk `opened_at` backwards and test the stored vector cheaply for "newest first". SQLite
keeps scanning `search_text` (it has no tsvector).

`waited_seconds`: how long the caller waited in the queue before their operator's phone rang
(the pop shows it; the contact keeps it for the shift's figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_contact_search"
down_revision: str | Sequence[str] | None = "0010_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("waited_seconds", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":  # the column the model names, unused
        op.add_column("contacts", sa.Column("search_vector", sa.String(), nullable=True))
        op.create_index("ix_contacts_search_vector", "contacts", ["search_vector"])
        return
    op.execute(
        "ALTER TABLE contacts ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS (to_tsvector('russian', search_text)) STORED"
    )
    op.execute("DROP INDEX ix_contacts_search")
    op.execute("CREATE INDEX ix_contacts_search_vector ON contacts USING gin (search_vector)")


def downgrade() -> None:
    op.drop_column("contacts", "waited_seconds")
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_contacts_search_vector", "contacts")
        op.drop_column("contacts", "search_vector")
        return
    op.execute("DROP INDEX ix_contacts_search_vector")
    op.execute("ALTER TABLE contacts DROP COLUMN search_vector")
    op.execute(
        "CREATE INDEX ix_contacts_search ON contacts "
        "USING gin (to_tsvector('russian', search_text))"
    )
