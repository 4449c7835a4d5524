"""How the simulated PBX stamps what it prints: AMI time formats and channel identities.

Everything the simulator prints that depends on time (``Timestamp``, ``EventTV``, ``Uptime``)
reads one `hotline.clock.EpochClock`; this module owns the formats Asterisk prints them in, and
`IdSource`, the counters of uniqueids and Local channels that both halves of one simulated PBX
must share (every `EpochClock` is one), or their uniqueids collide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

_US = 1_000_000


class IdSource(Protocol):
    """Where channel identities come from; every `hotline.clock.EpochClock` is one. Both halves
    of the simulator must draw from the same source, or their uniqueids collide."""

    def uniqueid(self) -> str: ...

    def local_sequence(self) -> str: ...


def format_timestamp(us: int) -> str:
    """``1795563319.843714``: the ``Timestamp`` of a Ping response."""
    return f"{us // _US}.{us % _US:06d}"


def format_event_tv(us: int) -> str:
    """``2026-11-24T23:35:19.342+0000``: security events' ``EventTV``/``SessionTV``. Asterisk
    prints local time; the simulator always runs in UTC so that its bytes do not depend on the
    host's time zone."""
    moment = datetime.fromtimestamp(us // _US, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{us % _US // 1000:03d}+0000"
