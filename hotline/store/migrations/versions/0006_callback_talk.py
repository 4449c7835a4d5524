"""Callbacks remember when the conversation began and ended, and reach a final state.

Revision ID: 0006_callback_talk
Revises: 0005_callback_lease
Create Date: 2026-12-04

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_callback_talk"
down_revision: str | Sequence[str] | None = "0005_callback_lease"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: callbacks connected before this migration have no times; they stay as they are.
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("ended_at")
        batch.drop_column("connected_at")
