"""The ACD's snapshot per controller node: operators' states and the callers waiting, so a node
restarted on the embedded default (no Redis) takes its operators back and knows whom to wait
for (routing/snapshot.py).

Revision ID: 0009_acd_snapshot
Revises: 0008_callback_public_id
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_acd_snapshot"
down_revision: str | Sequence[str] | None = "0008_callback_public_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acd_snapshots",
        sa.Column("node", sa.String(), primary_key=True),
        sa.Column("taken_at", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("acd_snapshots")
