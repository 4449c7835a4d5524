"""The voice menus' Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class MenuEnds(Collector):
    """``hotline_ivr_calls_total``: calls that left a menu, by number and how. Counted in a
    plain dict as each call ends and read when ``/metrics`` is scraped: `Counter.inc` takes
    a lock and goes through several calls, a few percent of a whole call's engine work."""

    def __init__(self) -> None:
        # By number, then by how (no key to make per call).
        self._counts: dict[str, dict[str, int]] = {}

    def count(self, number: str, end: str) -> None:
        """One call left `number`'s menu so (queue, transfer, hangup, caller_hangup)."""
        ends = self.ends_of(number)
        ends[end] = ends.get(end, 0) + 1

    def ends_of(self, number: str) -> dict[str, int]:
        """The counts of `number`'s menu by how calls left it, to add to in place: the engine
        keeps it with the menu (`ivr.menu.resume.MenuWalk.ends`), so that a call's end is
        counted with no call of `count` (a frame and a bound method a call)."""
        ends = self._counts.get(number)
        if ends is None:
            ends = self._counts.setdefault(number, {})
        return ends

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "hotline_ivr_calls",
            "Calls that left a menu, by dialled number and how"
            " (queue, transfer, hangup, caller_hangup)",
            labels=["number", "end"],
        )
        # A copy first: the scrape may run in another thread while calls end.
        for number, ends in list(self._counts.items()):
            for end, count in list(ends.items()):
                family.add_metric([number, end], count)
        yield family


MENU_ENDS = MenuEnds()
REGISTRY.register(MENU_ENDS)
MENU_STEP_LIMIT = Counter(
    "hotline_ivr_step_limit_total",
    "Calls the engine took out of a menu because they passed max_steps nodes",
    ["number"],
)
MENU_LOAD_ERRORS = Counter(
    "hotline_ivr_menu_errors_total",
    "Menu files rejected at load (the number then uses the general menu)",
    ["file"],
)
MENU_VERSION = Gauge(
    "hotline_ivr_menu_version",
    "Sequence number (in the versions store) of the menu version new calls get, by number",
    ["number"],
)
MENU_REJECTED = Counter(
    "hotline_ivr_menu_rejected_total",
    "Changed menu files the live reload refused (the last good version keeps serving)",
    ["number"],
)
MENU_BROKEN = Gauge(
    "hotline_ivr_menu_broken",
    "1 while the number's file on disk is refused and an older version serves its calls",
    ["number"],
)
