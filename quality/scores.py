"""Quality scores: the table (`0013_quality_scores`), saving one and per-operator averages.

Each scoring is a row, kept: a recording's history of scores stays readable. In the averages,
two auditors' scores of one call both count (two views of it), but an auditor who scores the
same recording again corrects their own: saving marks their earlier rows `superseded`
(`0014_quality_superseded`), and only the others count. Averages are the database's, per
operator of one period.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.store.db import Base, UTCDateTime, require_utc

__all__ = ["Average", "Score", "ScoreStore", "quality_scores"]

quality_scores = Table(
    "quality_scores",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", String, nullable=False),
    Column("operator_id", String, nullable=False),
    Column("auditor_id", String, nullable=False),
    Column("period", String, nullable=False),
    Column("points", Text, nullable=False),
    Column("total_percent", Float, nullable=False),
    Column("comment", Text, nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("superseded", Boolean, nullable=False, server_default=false()),
    Index("ix_quality_scores_period_operator", "period", "operator_id"),
    Index("ix_quality_scores_recording_auditor", "recording_id", "auditor_id"),
)


@dataclass(frozen=True)
class Score:
    recording_id: str
    operator_id: str
    auditor_id: str
    period: str
    points: Mapping[str, int]
    total_percent: float
    comment: str
    scored_at: datetime


@dataclass(frozen=True)
class Average:
    operator_id: str
    scores: int
    percent: float


class ScoreStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def save(self, score: Score) -> int:
        values = {
            "recording_id": score.recording_id,
            "operator_id": score.operator_id,
            "auditor_id": score.auditor_id,
            "period": score.period,
            "points": json.dumps(dict(score.points), ensure_ascii=False, sort_keys=True),
            "total_percent": score.total_percent,
            "comment": score.comment,
            "scored_at": require_utc(score.scored_at),
        }
        c = quality_scores.c
        earlier = update(quality_scores).where(
            c.recording_id == score.recording_id,
            c.auditor_id == score.auditor_id,
            c.superseded == false(),
        )
        async with self.engine.begin() as connection:  # both or neither
            await connection.execute(earlier.values(superseded=True))
            result = await connection.execute(insert(quality_scores).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def of_recording(self, recording_id: str) -> list[Score]:
        stmt = (
            select(quality_scores)
            .where(quality_scores.c.recording_id == recording_id)
            .order_by(quality_scores.c.id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(stmt)).mappings().all()
        return [
            Score(
                row["recording_id"],
                row["operator_id"],
                row["auditor_id"],
                row["period"],
                json.loads(row["points"]),
                row["total_percent"],
                row["comment"],
                row["scored_at"],
            )
            for row in rows
        ]

    async def averages(self, period: str) -> list[Average]:
        """Per operator of `period`: how many scores and their mean total, by operator, each
        auditor's latest score of a recording counted once."""
        c = quality_scores.c
        stmt = (
            select(c.operator_id, func.count(), func.avg(c.total_percent))
            .where(c.period == period, c.superseded == false())
            .group_by(c.operator_id)
            .order_by(c.operator_id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(stmt)).all()
        return [Average(str(op), int(n), float(mean)) for op, n, mean in rows]
