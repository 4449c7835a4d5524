"""Security events: one call that both logs a line with a category and counts it for Prometheus.

Every part that refuses, throttles or notices something an incident responder must see calls
`security_event(category, message, **fields)`. The log line goes to the `hotline.security`
logger (so a log shipper can route it apart) with `security_category` among its fields, and
`hotline_security_events_total{category}` is what the alert rules in `monitoring/rules.yml`
watch. Categories are a small closed set (`SecurityCategory`), never a caller's data, so the
metric's labels stay bounded; `fields` go through the log masking like any other extra field.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, Final

from prometheus_client import Counter, Gauge

__all__ = [
    "AUDIT_ANCHOR_AGE",
    "AUDIT_CHAIN_OK",
    "KEY_EXPIRY",
    "SECURITY_EVENTS",
    "SecurityCategory",
    "security_event",
]

_log: Final = logging.getLogger("hotline.security")


class SecurityCategory(StrEnum):
    LOGIN_FAILED = "login_failed"  # a wrong password or second factor
    LOGIN_THROTTLED = "login_throttled"  # a login refused while backing off
    ACCESS_DENIED = "access_denied"  # 401/403 on a route
    CSRF_REFUSED = "csrf_refused"  # a state change without the form's token
    RATE_LIMITED = "rate_limited"  # a request over its rate limit (callbacks, API keys)
    PEER_REFUSED = "peer_refused"  # a FastAGI or AMI peer not on the allow-list, or over its cap
    BAD_INPUT = "bad_input"  # malformed or hostile input refused (JSON depth, AGI replies)
    KEY_EXPIRING = "key_expiring"  # a service key or master key near its end
    AUDIT_BROKEN = "audit_broken"  # the audit chain failed verification
    ACCOUNT_CHANGED = "account_changed"  # an account created, reset, disabled, role changed


SECURITY_EVENTS: Final = Counter(
    "hotline_security_events_total",
    "Security events by category (see hotline.security.SecurityCategory)",
    ["category"],
)
for _category in SecurityCategory:  # every series exists from the start, so rate() sees 0
    SECURITY_EVENTS.labels(category=_category.value)


# Set by whoever knows a key's term: the audit watch for the audit and recorder master keys
# (`hotline.audit_watch`), the accounts for service keys (kind="service_key", the soonest one).
# Seconds left until the key should be replaced; 0 or less: overdue (or missing).
KEY_EXPIRY: Final = Gauge(
    "hotline_key_expiry_seconds",
    "Seconds until the soonest key of this kind expires or is due for rotation",
    ["kind"],
)
# 1 when the last verification of the audit chain (against the exported anchors) held, else 0.
AUDIT_CHAIN_OK: Final = Gauge(
    "hotline_audit_chain_ok", "1 if the last audit chain verification held, 0 if it broke"
)
# NaN until a verification has run: neither "ok" nor "broken" before there is an answer.
AUDIT_CHAIN_OK.set(float("nan"))
# Seconds since the newest anchor in the object-locked bucket was taken (export lagging or off).
AUDIT_ANCHOR_AGE: Final = Gauge(
    "hotline_audit_anchor_age_seconds", "Age of the newest exported audit chain anchor"
)
AUDIT_ANCHOR_AGE.set(float("nan"))  # no export configured (or not yet checked): no alert


def security_event(
    category: SecurityCategory, message: str, *, level: int = logging.WARNING, **fields: Any
) -> None:
    """Count the event and log `message` with its category and `fields` (masked as usual)."""
    SECURITY_EVENTS.labels(category=category.value).inc()
    _log.log(level, message, extra={"security_category": category.value, **fields})
