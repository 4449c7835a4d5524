"""What an operator must see when the recorder cannot keep up: alarms and the back-off.

* `Alarm`: a condition logged once when raised and once when cleared, with a gauge (1/0).
* `Backoff`: exponential back-off for one dependency (storage), raising its alarm once
  failures have lasted a grace period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import Gauge

from recorder import metrics
from recorder.settings import RecorderSettings
from recorder.spool import spool_space

__all__ = ["Alarm", "Backoff", "check_spool_space"]

# The logger the alarm lines have always come from: alerting rules match on it.
log = logging.getLogger("recorder.pipeline")


class Alarm:
    """A condition an operator must see: logged once when raised and once when cleared."""

    def __init__(self, name: str, gauge: Gauge) -> None:
        self.name = name
        self.gauge = gauge
        self.active = False
        gauge.set(0)

    def raise_(self, message: str) -> None:
        if not self.active:
            log.error("ALARM %s: %s", self.name, message, extra={"alarm": self.name})
        self.active = True
        self.gauge.set(1)

    def clear(self, message: str) -> None:
        if self.active:
            log.warning("alarm %s cleared: %s", self.name, message, extra={"alarm": self.name})
        self.active = False
        self.gauge.set(0)


class Backoff:
    """Exponential back-off for one dependency, with the alarm raised after a grace period."""

    def __init__(
        self, initial: float, ceiling: float, alarm_after: float, alarm: Alarm,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.initial, self.ceiling, self.alarm_after = initial, ceiling, alarm_after
        self.alarm = alarm
        self.clock = clock
        self.failures = 0
        self.failing_since: float | None = None

    def failed(self, reason: str, backlog: int) -> float:
        """Record one failure; returns how long to wait before the next attempt."""
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        metrics.STORAGE_FAILURES.inc()
        if now - self.failing_since >= self.alarm_after:
            self.alarm.raise_(
                f"storage failing for {now - self.failing_since:.0f} s, {backlog} recordings "
                f"waiting in the spool: {reason}"
            )
        return float(min(self.ceiling, self.initial * 2 ** min(self.failures - 1, 30)))

    def succeeded(self) -> None:
        if self.failing_since is not None:
            self.alarm.clear(f"storage back after {self.failures} failed attempts")
        self.failures = 0
        self.failing_since = None


def check_spool_space(spool_dir: Path, settings: RecorderSettings, alarm: Alarm) -> None:
    """Export what waits in the spool and its free space; raise `alarm` below the threshold."""
    space = spool_space(spool_dir)
    metrics.SPOOL_FILES.set(space.files)
    metrics.SPOOL_BYTES.set(space.bytes)
    metrics.SPOOL_FREE_BYTES.set(space.free_bytes)
    low = (
        space.free_bytes < settings.spool_alarm_free_bytes
        or space.free_percent < settings.spool_alarm_free_percent
    )
    if low:
        alarm.raise_(
            f"spool {spool_dir} has {space.free_bytes} bytes "
            f"({space.free_percent:.1f} %) free, {space.files} recordings waiting"
        )
    else:
        alarm.clear(f"spool {spool_dir} has {space.free_bytes} bytes free")
