"""Audit entries say how they are linked: plain SHA-256 (every row so far) or HMAC-SHA-256 with
a named key version (every row written once an audit key exists).

Revision ID: 0009_audit_keyed
Revises: 0004_audit
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.
Existing rows keep their SHA-256 links untouched: the columns are added with a default that
says so (`ADD COLUMN` rewrites no row and fires no row trigger, so the append-only triggers
stay as they are), and the chain continues keyed from the first keyed row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_audit_keyed"
down_revision: str | Sequence[str] | None = "0004_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "recording_audit",
        sa.Column("scheme", sa.String(16), nullable=False, server_default="sha256"),
    )
    op.add_column("recording_audit", sa.Column("key_id", sa.String(64), nullable=True))
    op.add_column("recording_audit", sa.Column("key_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Keyed rows cannot be expressed without these columns: refuse rather than lose the proof.
    bind = op.get_bind()
    keyed = bind.execute(sa.text("SELECT count(*) FROM recording_audit WHERE scheme <> 'sha256'"))
    if keyed.scalar_one():
        raise RuntimeError("recording_audit holds keyed entries: downgrading would orphan them")
    op.drop_column("recording_audit", "key_version")
    op.drop_column("recording_audit", "key_id")
    op.drop_column("recording_audit", "scheme")
