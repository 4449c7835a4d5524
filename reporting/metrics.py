"""Prometheus metrics of the call facts' writer (served on the controller's `/metrics`).

What waits and whether the database is away are read from the live writers when `/metrics` is
scraped, so they cost nothing per fact. A writer that keeps its batch while the database is
away loses nothing until it is stopped, but the reports lag: the on-call engineer must know
(`HotlineCallFactsDatabaseAway`, `HotlineCallFactsLost` in monitoring/rules.yml).
"""

from __future__ import annotations

import weakref
from typing import Protocol

from prometheus_client import Counter, Gauge

__all__ = ["CALL_FACTS_LOST", "watch_fact_writer"]


class WatchedWriter(Protocol):
    @property
    def waiting(self) -> int: ...

    @property
    def waiting_for_database(self) -> bool: ...


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
CALL_FACTS_LOST = Counter(
    "hotline_call_facts_lost_total",
    "Call-fact writes lost, by why",
    ["reason"],  # refused (the database refused the write) | away_at_stop
)


def watch_fact_writer(writer: WatchedWriter) -> None:
    """Count `writer` in the gauges while it exists."""
    _WRITERS.add(writer)
