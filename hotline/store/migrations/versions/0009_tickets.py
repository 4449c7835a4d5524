"""Create the back office's tickets and their comments (the workspace's tickets branch).

Revision ID: 0009_tickets
Revises: 0007_contacts
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models. A ticket carries a
contact the operator could not resolve on the call (one ticket per contact); it belongs to a
back-office group, has a due time, a state and an escalation mark (near, overdue) that the
periodic job sets once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tickets"
# Built on the contact registry (its foreign key needs `contacts`): Alembic's `depends_on` would
# work too but hides 0007_contacts from the database's list of heads.
down_revision: str | Sequence[str] | None = "0007_contacts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False, unique=True
        ),
        sa.Column("group_name", sa.String(), nullable=False),
        sa.Column("assignee", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("escalation", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_email", sa.String(), nullable=True),
    )
    op.create_index("ix_tickets_due", "tickets", ["due_at", "id"])
    op.create_index("ix_tickets_group_due", "tickets", ["group_name", "due_at"])
    op.create_table(
        "ticket_comments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
    )
    op.create_index("ix_ticket_comments_ticket", "ticket_comments", ["ticket_id", "at"])


def downgrade() -> None:
    op.drop_table("ticket_comments")
    op.drop_table("tickets")
