"""Quality scores: an auditor's new score of a recording supersedes their earlier one.

Revision ID: 0014_quality_superseded
Revises: 0013_quality_scores
Create Date: 2026-12-06

Written by hand and frozen: it must not import the application's models, which will move on.

The per-operator averages count each auditor's latest score of a recording only (scoring the
same call again corrects one's own score; another auditor's score is another view and counts).
`superseded` is set on the earlier rows when the new one is saved, so the averages stay one
aggregate over `ix_quality_scores_period_operator`; `ix_quality_scores_recording_auditor`
finds the rows to supersede. Rows already there are marked as the rule says.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_quality_superseded"
down_revision: str | Sequence[str] | None = "0013_quality_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "quality_scores",
        sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_quality_scores_recording_auditor", "quality_scores", ["recording_id", "auditor_id"]
    )
    op.execute(
        "UPDATE quality_scores SET superseded = TRUE WHERE EXISTS ("
        " SELECT 1 FROM quality_scores AS later"
        " WHERE later.recording_id = quality_scores.recording_id"
        " AND later.auditor_id = quality_scores.auditor_id AND later.id > quality_scores.id)"
    )


def downgrade() -> None:
    op.drop_index("ix_quality_scores_recording_auditor", table_name="quality_scores")
    with op.batch_alter_table("quality_scores") as batch:
        batch.drop_column("superseded")
