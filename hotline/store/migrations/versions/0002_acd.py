"""Create the callbacks table: callers the ACD is to call back (the ACD's branch).

Revision ID: 0002_acd
Revises: 0001
Create Date: 2026-11-27

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_acd"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("acd",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("application_id", sa.String(), nullable=True),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queue_seq", sa.BigInteger(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_result", sa.String(), nullable=True),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_callbacks_state_next", "callbacks", ["state", "next_attempt_at"])
    op.create_index("ix_callbacks_phone", "callbacks", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_phone", table_name="callbacks")
    op.drop_index("ix_callbacks_state_next", table_name="callbacks")
    op.drop_table("callbacks")
