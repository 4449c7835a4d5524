"""Callbacks get a lease: a claim a dead node stops renewing is taken back by another node.

Revision ID: 0005_callback_lease
Revises: 0002_acd
Create Date: 2026-11-27

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_callback_lease"
down_revision: str | Sequence[str] | None = "0002_acd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows claimed before this migration have no lease; a restart of their node
    # releases them as before (CallbackScheduler.start).
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("lease_until")
