"""Bounds on what one audit entry, and a flood of refused requests, can add to the log.

The audit log is append-only: whatever lands in it stays for its whole term. An attacker who
can make us write a row (any unauthenticated request) must not be able to make that row large
or the rows many. Hence:

* every text field is capped (`cap_field`): a longer value keeps a prefix, its length and a
  SHA-256 prefix of the whole, so repeated values can still be told apart and matched;
* the detail JSON is capped (`cap_detail`): strings inside it are capped, and a detail still
  too large is replaced by its size, digest and first keys;
* refusals are aggregated (`RefusalWindow`): the first refusal of an action from a source in
  a minute is written at once with its detail; further ones of that source and action in the
  same minute are only counted and written as one summary row when the minute is over. At
  most `max_sources` (source, action) pairs are tracked per minute; the rest share one "other
  sources" summary. So a flood adds at most about (2 * max_sources + 2) capped rows a minute,
  whatever its rate and however many addresses it comes from.

Counts still in memory when the process dies are lost (the first row of each source was
written, so the flood itself is on record).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "DETAIL_CAP",
    "FIELD_CAP",
    "OTHER_SOURCES",
    "RefusalSummary",
    "RefusalWindow",
    "cap_detail",
    "cap_field",
]

FIELD_CAP: Final = 128  # characters of user_id, role, action, recording_id, source, outcome
DETAIL_CAP: Final = 1024  # characters of the detail's canonical JSON
_STRING_IN_DETAIL_CAP: Final = 160
_KEPT_PREFIX: Final = 48
_MAX_DETAIL_KEYS: Final = 16
_MAX_DEPTH: Final = 4
OTHER_SOURCES: Final = "(other sources)"


def cap_field(value: str, limit: int = FIELD_CAP) -> str:
    """`value` if short enough, else a prefix with the full length and a digest prefix."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:_KEPT_PREFIX]}…[truncated {len(value)} chars sha256:{digest}]"


def _cap_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return cap_field(value, _STRING_IN_DETAIL_CAP)
    if depth >= _MAX_DEPTH and isinstance(value, dict | list):
        return f"[{type(value).__name__} nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_DETAIL_KEYS]
        return {cap_field(str(key), 64): _cap_value(item, depth + 1) for key, item in items}
    if isinstance(value, list):
        return [_cap_value(item, depth + 1) for item in value[:_MAX_DETAIL_KEYS]]
    return value


def cap_detail(detail: Mapping[str, Any], canonical: Any) -> dict[str, Any]:
    """The detail with long strings capped, or a summary of it if still over DETAIL_CAP.

    `canonical` is the JSON spelling function (passed in to keep one spelling for the chain).
    """
    capped = _cap_value(dict(detail), 0)
    text = canonical(capped)
    if len(text) <= DETAIL_CAP:
        return dict(capped)
    whole = canonical(dict(detail)) if len(text) < 4 * DETAIL_CAP else text
    return {
        "truncated": True,
        "chars": len(whole),
        "sha256": hashlib.sha256(whole.encode("utf-8", "surrogatepass")).hexdigest(),
        "keys": [cap_field(str(key), 64) for key in list(detail)[:_MAX_DETAIL_KEYS]],
    }


@dataclass
class RefusalSummary:
    """Refusals from one source in one window beyond the first (which was written at once)."""

    source: str
    first_at: datetime
    last_at: datetime
    count: int = 0
    sources: set[str] = field(default_factory=set)  # for OTHER_SOURCES only
    actions: dict[str, int] = field(default_factory=dict)

    def detail(self, window_seconds: int) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "count": self.count,
            "first_at": self.first_at.isoformat(timespec="seconds"),
            "last_at": self.last_at.isoformat(timespec="seconds"),
            "window_seconds": window_seconds,
            "actions": dict(sorted(self.actions.items())[:_MAX_DETAIL_KEYS]),
        }
        if self.source == OTHER_SOURCES:
            detail["distinct_sources"] = len(self.sources)
        return detail


class RefusalWindow:
    """Which refusals to write now and which to count, per source and fixed time window."""

    def __init__(self, window_seconds: int = 60, max_sources: int = 100) -> None:
        self.window_seconds = window_seconds
        self.max_sources = max_sources
        self._window: int | None = None
        self._seen: dict[tuple[str, str], RefusalSummary] = {}
        self._closed: list[RefusalSummary] = []

    def note(self, source: str, action: str, at: datetime) -> bool:
        """Count one refusal; True if it is the first of its source and action this window
        (write it now)."""
        self._roll(at)
        summary = self._seen.get((source, action))
        if summary is None and len(self._seen) >= self.max_sources:
            summary = self._seen.get((OTHER_SOURCES, ""))
            if summary is None:
                summary = self._seen[(OTHER_SOURCES, "")] = RefusalSummary(OTHER_SOURCES, at, at)
            if len(summary.sources) < 10 * self.max_sources:  # memory stays bounded too
                summary.sources.add(source)
        elif summary is None:
            self._seen[(source, action)] = RefusalSummary(source, at, at)
            return True
        summary.count += 1
        summary.last_at = at
        if action in summary.actions or len(summary.actions) < _MAX_DETAIL_KEYS:
            summary.actions[action] = summary.actions.get(action, 0) + 1
        return False

    def due(self, now: datetime, *, everything: bool = False) -> list[RefusalSummary]:
        """Summaries of windows that ended before `now` (all of them if `everything`)."""
        self._roll(now)
        closed, self._closed = self._closed, []
        if everything:
            closed.extend(self._seen.values())
            self._seen = {}
        return [summary for summary in closed if summary.count]

    def _roll(self, at: datetime) -> None:
        window = int(at.timestamp() // self.window_seconds)
        if self._window is None:
            self._window = window
        if window != self._window:
            self._closed.extend(self._seen.values())
            self._seen = {}
            self._window = window
