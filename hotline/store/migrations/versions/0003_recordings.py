"""Create the recordings table: one row per recorded call (the recorder's branch).

Revision ID: 0003_recordings
Revises: 0001
Create Date: 2026-11-27

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_recordings"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("recorder",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("dialled_number", sa.String(), nullable=False),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("plain_size", sa.Integer(), nullable=True),
        sa.Column("plain_sha256", sa.String(), nullable=True),
        sa.Column("cipher_size", sa.Integer(), nullable=True),
        sa.Column("cipher_sha256", sa.String(), nullable=True),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("key_version", sa.Integer(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("key_destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("storage_backend", sa.String(), nullable=True),
        sa.Column("storage_key", sa.String(), nullable=True),
        sa.Column("retention_category", sa.String(), nullable=False),
        sa.Column("retention_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("call_id", name="uq_recordings_call_id"),
    )
    op.create_index("ix_recordings_state", "recordings", ["state"])
    op.create_index("ix_recordings_retention_until", "recordings", ["retention_until"])
    op.create_index("ix_recordings_operator_started", "recordings", ["operator", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_recordings_operator_started", table_name="recordings")
    op.drop_index("ix_recordings_retention_until", table_name="recordings")
    op.drop_index("ix_recordings_state", table_name="recordings")
    op.drop_table("recordings")
