"""Staff accounts, their sessions and recovery codes, and the systems' service keys.

Revision ID: 0007_accounts
Revises: 0001
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.
Its own branch (``accounts``), like each part's, so it merges with any other new migration.
Nothing secret is stored in clear: passwords and the phone PIN are argon2id hashes, session
tokens, recovery codes and service keys SHA-256 digests, the TOTP secret is encrypted with a key
kept outside the database (`hotline.accounts.secrets`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_accounts"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("accounts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.String(), nullable=True),
        sa.Column("totp_enrolled", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("pin_hash", sa.String(), nullable=True),
        sa.Column("last_login_address", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            sa.String(),
            sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_staff_recovery_codes_account", "staff_recovery_codes", ["account_id"])
    op.create_table(
        "staff_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(),
            sa.ForeignKey("staff_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_staff_sessions_account", "staff_sessions", ["account_id"])
    op.create_table(
        "service_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key_sha256", name="uq_service_keys_key_sha256"),
    )
    op.create_index("ix_service_keys_name", "service_keys", ["name"])


def downgrade() -> None:
    op.drop_index("ix_service_keys_name", table_name="service_keys")
    op.drop_table("service_keys")
    op.drop_index("ix_staff_sessions_account", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index("ix_staff_recovery_codes_account", table_name="staff_recovery_codes")
    op.drop_table("staff_recovery_codes")
    op.drop_table("staff_accounts")
