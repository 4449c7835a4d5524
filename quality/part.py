"""The quality part inside `hotline serve`: sampled calls scored by criteria.

`QualityService` is what the composition root builds and installs. Its port:

* `recordings` (`quality.http.SampledRecordings`): the recorder's reproducible, audited sample
  of a period and who answered a recording (`controller.quality_ports.RecorderSamples`); the
  audio and clips are the recorder's own audited `/recordings/{id}/audio` and `/clip`.

The criteria file is read now (a broken one stops the start with its file:line) and again on
each page, so an admin's edit needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from quality.criteria import Criterion, load_criteria
from quality.http import QualityPages, SampledRecordings, add_quality_routes
from quality.scores import ScoreStore

__all__ = ["QualityService"]


@dataclass
class QualityService:
    engine: AsyncEngine
    audit: AuditLog
    criteria_file: Path
    recordings: SampledRecordings
    zone: ZoneInfo

    @classmethod
    def build(
        cls,
        engine: AsyncEngine,
        audit: AuditLog,
        criteria_file: Path,
        recordings: SampledRecordings,
        zone: ZoneInfo,
    ) -> QualityService:
        load_criteria(criteria_file)  # file:line now, not at the first page
        return cls(engine, audit, criteria_file, recordings, zone)

    def criteria(self) -> list[Criterion]:
        return load_criteria(self.criteria_file)

    def install(self, app: web.Application) -> None:
        pages = QualityPages(
            self.recordings,
            ScoreStore(self.engine),
            self.criteria,
            self.audit,
            lambda: datetime.now(self.zone).strftime("%Y-%m"),
        )
        add_quality_routes(app, pages)
