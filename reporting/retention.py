"""The call facts' personal-data term: past it a fact keeps everything statistics need and
loses the caller's number and application number (`FactStore.anonymise`).

The term is read from the retention file the recorder and the workspace read
(`dialplans/retention.yaml`): the category `call_facts`, else `contacts` (a fact holds what a
contact holds of the caller), else the file's `default_days`, else `DEFAULT_DAYS`. Each run
also forgets the marks of facts writers that last committed `MARKS_KEPT` ago.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import wall_clock
from hotline.yamldoc import YamlDoc
from reporting.fact_store import FactStore

__all__ = ["FACTS_JOB", "FactRetention", "facts_term_days"]

DEFAULT_DAYS: Final = 365
_MAX_DAYS: Final = 100 * 366
FACTS_JOB: Final = Actor("call-facts-retention", "system", kind="system")
# The facts writers' marks (`reporting.fact_marks`) outlive their process only while a journal
# may still hold its writes: a journal is bounded, and replayed as soon as the database is back.
MARKS_KEPT: Final = timedelta(days=90)


def facts_term_days(path: Path) -> int:
    """The term in days (`YamlFileError` with file:line when the file is broken)."""
    if not path.exists():
        return DEFAULT_DAYS
    doc = YamlDoc(path)
    top = doc.mapping(doc.root, "the retention file")
    days = DEFAULT_DAYS
    if "default_days" in top:
        days = doc.integer(top["default_days"][1], "default_days", low=1, high=_MAX_DAYS)
    if "categories" in top:
        listed = doc.mapping(top["categories"][1], "categories")
        for name in ("contacts", "call_facts"):  # the later wins
            if name in listed:
                node = listed[name][1]
                days = doc.integer(node, f"categories.{name}", low=1, high=_MAX_DAYS)
    return days


class FactRetention:
    """One run: clear the personal fields of facts past the term; one audit entry when any."""

    def __init__(
        self,
        store: FactStore,
        days: int,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self.store = store
        self.days = days
        self.audit = audit
        self._clock = clock

    async def run(self) -> int:
        now = datetime.fromtimestamp(self._clock(), UTC)
        cleared = await self.store.anonymise(now - timedelta(days=self.days), now)
        await self.store.forget_marks(now - MARKS_KEPT)
        if cleared and self.audit is not None:
            await self.audit.record(
                FACTS_JOB,
                "call_facts.anonymised",
                recording_id=None,
                source="retention",
                outcome="ok",
                detail={"facts": cleared, "term_days": self.days},
            )
        return cleared
