"""Prometheus collectors of the workspace (labels: back-office group ids, a small closed set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TICKETS_OVERDUE = Gauge(
    "hotline_tickets_overdue",
    "Open tickets past their due time, by back-office group (set by the escalation job)",
    ["group"],
)
TICKETS_ESCALATED = Counter(
    "hotline_tickets_escalated_total",
    "Tickets marked by the escalation job, by group and level (near | overdue)",
    ["group", "level"],
)
CITIZEN_NOTICES = Counter(
    "hotline_ticket_notices_total",
    "Notices to citizens of resolved tickets, by channel and outcome",
    ["channel", "outcome"],  # channel: email | callback; outcome: sent | failed | refused | none
)
