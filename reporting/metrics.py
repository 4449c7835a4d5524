"""Prometheus metrics of the call facts' writer (served on the controller's `/metrics`).

What waits, what of it is journaled on disk and whether the database is away are read from the
live writers when `/metrics` is scraped, so they cost nothing per fact. A writer that keeps its
writes while the database is away loses nothing (past its memory bound they go to its journal)
unless the journal fills, but the reports lag: the on-call engineer must know
(`HotlineCallFactsDatabaseAway`, `HotlineCallFactsJournalFilling`, `HotlineCallFactsLost` in
monitoring/rules.yml), and whether the journal's disk refuses to flush it
(`HotlineCallFactsJournalNotFlushed`).
"""

from __future__ import annotations

import weakref
from typing import Protocol

from prometheus_client import Counter, Gauge

__all__ = ["CALL_FACTS_JOURNAL_SYNC_FAILURES", "CALL_FACTS_LOST", "watch_fact_writer"]


class WatchedWriter(Protocol):
    @property
    def waiting(self) -> int: ...

    @property
    def waiting_for_database(self) -> bool: ...

    @property
    def journaled(self) -> int: ...

    @property
    def journal_bytes(self) -> int: ...

    @property
    def journal_limit_bytes(self) -> int: ...


_WRITERS: weakref.WeakSet[WatchedWriter] = weakref.WeakSet()

CALL_FACTS_WAITING = Gauge(
    "hotline_call_facts_waiting", "Call-fact writes noted and not yet committed to the database"
)
CALL_FACTS_WAITING.set_function(lambda: float(sum(writer.waiting for writer in list(_WRITERS))))
CALL_FACTS_DATABASE_AWAY = Gauge(
    "hotline_call_facts_database_away",
    "1 while the call facts' writer keeps its batch because the database is away",
)
CALL_FACTS_DATABASE_AWAY.set_function(
    lambda: float(any(writer.waiting_for_database for writer in list(_WRITERS)))
)
CALL_FACTS_JOURNALED = Gauge(
    "hotline_call_facts_journaled",
    "Call-fact writes kept in the journal on disk while the database is away, not yet committed",
)
CALL_FACTS_JOURNALED.set_function(lambda: float(sum(writer.journaled for writer in list(_WRITERS))))
CALL_FACTS_JOURNAL_BYTES = Gauge(
    "hotline_call_facts_journal_bytes", "Bytes of the call facts' journal on disk"
)
CALL_FACTS_JOURNAL_BYTES.set_function(
    lambda: float(sum(writer.journal_bytes for writer in list(_WRITERS)))
)
CALL_FACTS_JOURNAL_LIMIT = Gauge(
    "hotline_call_facts_journal_limit_bytes",
    "Bytes the call facts' journal may take; past them writes are lost (0: no journal)",
)
CALL_FACTS_JOURNAL_LIMIT.set_function(
    lambda: float(sum(writer.journal_limit_bytes for writer in list(_WRITERS)))
)
CALL_FACTS_LOST = Counter(
    "hotline_call_facts_lost_total",
    "Call-fact writes lost, by why",
    # refused (the database refused the write) | away_at_stop (no journal) | journal_full |
    # journal_error (the disk refused it) | journal_corrupt (a record unreadable on replay)
    ["reason"],
)

CALL_FACTS_JOURNAL_SYNC_FAILURES = Counter(
    "hotline_call_facts_journal_sync_failures",
    "Flushes of the call facts' journal to disk (fsync) the disk refused: its records may not "
    "survive a crash of the machine",
)


def watch_fact_writer(writer: WatchedWriter) -> None:
    """Count `writer` in the gauges while it exists."""
    _WRITERS.add(writer)
