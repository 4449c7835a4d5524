"""Create the recordings audit log: append-only and hash-chained.

Revision ID: 0004_audit
Revises: 0001
Create Date: 2026-11-27

Written by hand and frozen: it must not import the application's models, which will move on.
Both databases get triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL), so the
append-only rule holds for every client of the database, not only for our code. Someone with
the rights to drop the triggers can still tamper; `hotline audit verify` catches that.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_audit"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION recording_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recording_audit is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "recording_audit",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("recording_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash", name="uq_recording_audit_hash"),
    )
    op.create_index("ix_recording_audit_recording_id", "recording_audit", ["recording_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER recording_audit_no_change BEFORE UPDATE OR DELETE "
            "ON recording_audit FOR EACH ROW EXECUTE FUNCTION recording_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER recording_audit_no_truncate BEFORE TRUNCATE "
            "ON recording_audit FOR EACH STATEMENT EXECUTE FUNCTION recording_audit_append_only()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER recording_audit_no_{operation.lower()} BEFORE {operation} "
                "ON recording_audit BEGIN "
                f"SELECT RAISE(ABORT, 'recording_audit is append-only: {operation} refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER recording_audit_no_truncate ON recording_audit")
        op.execute("DROP TRIGGER recording_audit_no_change ON recording_audit")
        op.execute("DROP FUNCTION recording_audit_append_only()")
    else:
        op.execute("DROP TRIGGER recording_audit_no_update")
        op.execute("DROP TRIGGER recording_audit_no_delete")
    op.drop_index("ix_recording_audit_recording_id", table_name="recording_audit")
    op.drop_table("recording_audit")
