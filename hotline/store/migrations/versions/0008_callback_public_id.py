"""Callbacks get an unguessable public id and remember who asked for them.

Revision ID: 0008_callback_public_id
Revises: 0006_callback_talk
Create Date: 2026-12-05

The integer key stays the internal one (claims, the ACD's ``callback-<id>`` callers, the
Originate's CALLBACK_ID); the API answers with ``public_id`` only (128 random bits, URL-safe),
so ids can no longer be guessed by counting. ``requested_by`` names the service key or staff
member who ordered the callback, so their requests are counted and only they see them. Rows
from before this migration get a fresh random public id and no requester (the menus' own
bookings keep none either).

Written by hand and frozen: it must not import the application's models, which will move on.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_callback_public_id"
down_revision: str | Sequence[str] | None = "0006_callback_talk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("public_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("requested_by", sa.String(), nullable=True))
    table = sa.table("callbacks", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(table.c.id)).all():
        public_id = secrets.token_urlsafe(16)
        connection.execute(table.update().where(table.c.id == row_id).values(public_id=public_id))
    with op.batch_alter_table("callbacks") as batch:
        batch.alter_column("public_id", existing_type=sa.String(32), nullable=False)
    op.create_index("ux_callbacks_public_id", "callbacks", ["public_id"], unique=True)
    # the rate limits count recent requests per requester and per group (routing.callbacks)
    op.create_index("ix_callbacks_requested_by", "callbacks", ["requested_by", "requested_at"])
    op.create_index("ix_callbacks_group_requested", "callbacks", ["group_id", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_group_requested", table_name="callbacks")
    op.drop_index("ix_callbacks_requested_by", table_name="callbacks")
    op.drop_index("ux_callbacks_public_id", table_name="callbacks")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("requested_by")
        batch.drop_column("public_id")
