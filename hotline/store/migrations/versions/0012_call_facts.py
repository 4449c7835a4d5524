"""Call facts and operators' time: what the KPI reports aggregate (the reporting part's branch).

Revision ID: 0012_call_facts
Revises: 0011_contact_search
Create Date: 2026-12-05

Written by hand and frozen: it must not import the application's models, which will move on.

`call_facts`: one row per call, written as the call ends (`reporting.facts.CallFacts`). The
report's day and hour are the hotline's local ones, stored (`local_day`, `local_hour`) when the
call started, so a call across midnight counts on the day it started and grouping needs no
time-zone arithmetic on either database. A month is a range of `local_day`
(`ix_call_facts_day_group`, which also serves a report of one group); the repeat rule looks a
caller or an application up over 7 days (`ix_call_facts_caller`, `ix_call_facts_application`);
the retention job walks `started_at`. `caller_number` and `application` are cleared past the
personal-data term (`anonymised_at`); the rest stays for statistics.

`call_slices` and `operator_slices`: the facts' rollups (`reporting.rollups`), a row per local
day, hour, line and group, and per day, group and answering operator, every measure a sum kept
up to date as facts are written: a month's report reads these, not a million facts.

`operator_time`: how long each operator was busy (ringing, talking, wrap-up), at work (ready or
busy) and paused in each local hour, one row per operator, day and hour, added to as stays end
(a stay across an hour is split at the hour): occupancy's numerator and denominator, its size
bounded by the staff and the calendar, not by the number of calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012_call_facts"
down_revision: str | Sequence[str] | None = "0011_contact_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The rollups' measures (reporting.rollups.MEASURES as of this migration), each a sum.
SL_CHOICES = (10, 15, 20, 30, 45, 60, 90, 120)
MEASURES = (
    "calls",
    "queued",
    "answered",
    *(f"answered_in_{seconds}" for seconds in SL_CHOICES),
    "wait_total",
    "abandoned",
    "abandoned_ringing",
    "self_service",
    "overflowed",
    "callbacks",
    "transferred",
    "escalated",
    "talk_total",
    "hold_total",
    "wrap_total",
    "rated",
    "rating_total",
    *(f"rating_{mark}" for mark in range(1, 6)),
    "fcr_known",
    "fcr_yes",
    "repeats",
)


def _slices(name: str, keys: dict[str, Any]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        *(sa.Column(key, kind, nullable=False) for key, kind in keys.items()),
        *(sa.Column(measure, sa.Float(), nullable=False) for measure in MEASURES),
        sa.UniqueConstraint(*keys, name=f"uq_{name}_slice"),
    )


def upgrade() -> None:
    op.create_table(
        "call_facts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("line", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("local_hour", sa.Integer(), nullable=False),
        sa.Column("menu_path", sa.String(), nullable=False),
        sa.Column("menu_exit", sa.String(), nullable=False),
        sa.Column("menu_seconds", sa.Float(), nullable=True),
        sa.Column("topic", sa.String(), nullable=True),
        sa.Column("group_name", sa.String(), nullable=True),
        sa.Column("queued", sa.Boolean(), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("overflowed", sa.Boolean(), nullable=False),
        sa.Column("overflow_reason", sa.String(), nullable=True),
        sa.Column("widened", sa.Boolean(), nullable=False),
        sa.Column("ringing_operators", sa.String(), nullable=True),
        sa.Column("operator_id", sa.String(), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=True),
        sa.Column("wrap_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("abandoned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("abandoned_ringing", sa.Boolean(), nullable=False),
        sa.Column("callback_booked", sa.Boolean(), nullable=False),
        sa.Column("transferred", sa.Boolean(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("contact_number", sa.String(), nullable=True),
        sa.Column("fcr_operator", sa.Boolean(), nullable=True),
        sa.Column("came_back", sa.Boolean(), nullable=False),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("caller_number", sa.String(), nullable=True),
        sa.Column("application", sa.String(), nullable=True),
        sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("call_id", name="uq_call_facts_call_id"),
    )
    op.create_index("ix_call_facts_day_group", "call_facts", ["local_day", "group_name"])
    op.create_index("ix_call_facts_caller", "call_facts", ["caller_number", "started_at"])
    op.create_index("ix_call_facts_application", "call_facts", ["application", "started_at"])
    op.create_index("ix_call_facts_started_at", "call_facts", ["started_at"])
    op.create_table(
        "operator_time",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("operator_id", sa.String(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("local_hour", sa.Integer(), nullable=False),
        sa.Column("busy_seconds", sa.Float(), nullable=False),
        sa.Column("work_seconds", sa.Float(), nullable=False),
        sa.Column("paused_seconds", sa.Float(), nullable=False),
        sa.UniqueConstraint("operator_id", "local_day", "local_hour", name="uq_operator_time_slot"),
    )
    op.create_index("ix_operator_time_day", "operator_time", ["local_day", "operator_id"])
    day, hour, text = sa.Date(), sa.Integer(), sa.String()
    _slices("call_slices", {"local_day": day, "local_hour": hour, "line": text, "group_name": text})
    _slices("operator_slices", {"local_day": day, "group_name": text, "operator_id": text})


def downgrade() -> None:
    op.drop_table("operator_slices")
    op.drop_table("call_slices")
    op.drop_table("operator_time")
    op.drop_table("call_facts")
