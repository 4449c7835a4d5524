"""Quality scores: an auditor's marks for one sampled recording (the quality part's branch).

Revision ID: 0013_quality_scores
Revises: 0012_call_facts
Create Date: 2026-12-06

Written by hand and frozen: it must not import the application's models, which will move on.

`quality_scores`: one row per scoring (a recording scored again gets another row). `points` is
the JSON of criterion -> points given, `total_percent` the weighted total the form computed
against the criteria file of the day; `period` is the sample's period name (`2026-11`), which
the per-operator averages group by (`ix_quality_scores_period_operator`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_quality_scores"
down_revision: str | Sequence[str] | None = "0012_call_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quality_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(), nullable=False),
        sa.Column("operator_id", sa.String(), nullable=False),
        sa.Column("auditor_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("points", sa.Text(), nullable=False),
        sa.Column("total_percent", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_quality_scores_period_operator", "quality_scores", ["period", "operator_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_quality_scores_period_operator", table_name="quality_scores")
    op.drop_table("quality_scores")
