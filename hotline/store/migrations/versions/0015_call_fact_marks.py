"""Call facts: each writer's mark, the number of its last write committed.

Revision ID: 0015_call_fact_marks
Revises: 0014_quality_superseded
Create Date: 2026-12-06

Written by hand and frozen: it must not import the application's models, which will move on.

`call_fact_marks`: one row per facts writer (a process's), moved in the same transaction as
its writes, so that a batch committed twice (a crash between a replayed batch's commit and the
journal's note of it, a transaction a stop gave up on that committed after all) is written
once. `updated_at` lets the retention forget the marks of writers long gone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_call_fact_marks"
down_revision: str | Sequence[str] | None = "0014_quality_superseded"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_fact_marks",
        sa.Column("writer", sa.String(), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_fact_marks")
