"""The voice menus' Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter

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
