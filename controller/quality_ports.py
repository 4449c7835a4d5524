"""The quality part's port, as the composition root fills it from the recorder.

* `RecorderSamples`: `quality.http.SampledRecordings` over the recorder's tables: the sample is
  `recorder.sampling.draw_sample` (the one the `hotline recordings sample` command draws: same
  period, seed and picks, audited as `sample`), the operator is the recording's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from recorder.models import RecordingStore
from recorder.sampling import draw_sample, parse_period

__all__ = ["RecorderSamples"]


@dataclass
class RecorderSamples:
    engine: AsyncEngine
    audit: AuditLog

    async def sample(
        self, actor: Actor, period: str, per_operator: int, source: str
    ) -> dict[str, list[str]]:
        drawn = await draw_sample(
            self.engine,
            self.audit,
            actor,
            period=parse_period(period),
            per_operator=per_operator,
            source=source,
        )
        return drawn.picks

    async def operator_of(self, recording_id: str) -> str | None:
        recording = await RecordingStore(self.engine).get(recording_id)
        return None if recording is None else recording.operator
