"""The voice menus' Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MENU_ENDS = Counter(
    "hotline_ivr_calls_total",
    "Calls that left a menu, by dialled number and how (queue, transfer, hangup, caller_hangup)",
    ["number", "end"],
)
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
