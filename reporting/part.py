"""The reporting part inside `hotline serve`: the call facts' recorder, their retention job,
and the report's page.

`ReportingService` is what the composition root builds, wires and stops. Its ports:

* `facts` (`reporting.facts.CallFacts`): the root plugs the ACD's queue, offer, answer,
  result and operator listeners, the menus' end of call, callback booking and rating, the
  agencies' transfers and the contact registry's changes into its methods;
* `groups`: which groups the page's form offers (the root plugs in the ACD's);
* `install(app)`: ``GET /supervisor/reports``.

A broken targets file stops the start with its file:line; it is read again on each report,
so an edit needs no restart (a broken edit answers the page with the error). The facts'
writer journals what waits for an absent database in ``[reporting] journal_dir``; one it
cannot use (another process holds it) is logged, and the node runs without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.clock import wall_clock
from hotline.periodic import Periodic
from reporting.fact_journal import FactJournal
from reporting.fact_store import FactStore
from reporting.fact_writer import FactWriter
from reporting.facts import CallFacts
from reporting.http import ReportPages, add_report_routes
from reporting.retention import FactRetention, facts_term_days
from reporting.settings import ReportingSettings, locate
from reporting.targets import Targets, load_targets

log = logging.getLogger(__name__)

__all__ = ["ReportingService"]


@dataclass
class ReportingService:
    engine: AsyncEngine
    settings: ReportingSettings
    facts: CallFacts
    retention: FactRetention
    audit: AuditLog
    groups: Callable[[], list[str]] = field(default=lambda: [])
    _purges: Periodic | None = None

    @classmethod
    def build(
        cls,
        engine: AsyncEngine,
        settings: ReportingSettings,
        audit: AuditLog,
        *,
        serves: Callable[[str, str], bool] | None = None,
        clock: Callable[[], float] = wall_clock,
    ) -> ReportingService:
        """`serves(operator, group)`: whether an operator is skilled for a group (an answer
        by another is a widened one). Broken targets or retention files stop here."""
        store = FactStore(engine)
        load_targets(locate(settings.targets_file))  # file:line now, not at the first report
        days = facts_term_days(locate(settings.retention_file))
        journal = FactJournal(settings.journal_dir, settings.journal_max_mb * 1024 * 1024)
        writer = FactWriter(
            store,
            journal=journal,
            memory_writes=settings.memory_writes,
            journal_sync_seconds=settings.journal_sync_seconds,
        )
        facts = CallFacts(store, settings.zone, clock, serves, writer)
        return cls(engine, settings, facts, FactRetention(store, days, audit, clock), audit)

    def targets(self) -> Targets:
        return load_targets(locate(self.settings.targets_file))

    def install(self, app: web.Application) -> None:
        zone = self.settings.zone
        pages = ReportPages(
            self.engine,
            self.targets,
            self.audit,
            lambda: self.groups(),
            lambda: datetime.now(zone).date(),
        )
        add_report_routes(app, pages)

    async def start(self) -> None:
        self.facts.start()
        interval = self.settings.retention_interval_seconds
        if interval > 0:
            self._purges = Periodic(self.retention.run, interval, name="facts-retention", log=log)
            self._purges.start()

    async def stop(self) -> None:
        if self._purges is not None:
            await self._purges.close()
        await self.facts.stop()
