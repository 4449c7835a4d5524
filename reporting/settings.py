"""`ReportingSettings`: the ``[reporting]`` section: the targets file, the report's time zone,
the personal-data term of call facts and how often it is applied, and where and how much the
facts' writer keeps while the database is away."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.settings import StoreSettings

__all__ = ["ReportingSettings", "WithReportingSettings", "locate"]

_REPOSITORY: Final = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReportingSettings:
    # The KPI targets (reporting.targets); relative paths from the working directory, else
    # the repository's shipped dialplans/.
    targets_file: str = "dialplans/targets.yaml"
    # The retention file the recorder and the workspace read; call facts use its category
    # `call_facts` (else `contacts`, else `default_days`) as their personal-data term.
    retention_file: str = "dialplans/retention.yaml"
    # Days and hours of the reports are this zone's (the hotline's clock).
    timezone: str = "Europe/Moscow"
    # seconds between runs of the facts' anonymisation (0: never; then run it from outside)
    retention_interval_seconds: float = 3600.0
    # The call facts' writer keeps at most this many writes waiting in memory (the database
    # away, or slower than the calls), then journals them in this private directory (0700;
    # relative: from the working directory), at most journal_max_mb of it; past that,
    # writes are lost (counted, logged). The journal's writes reach the disk in one flush
    # (fsync) at most journal_sync_seconds after the first of them: what a crash of the
    # machine may lose of it (a crash of the controller alone loses nothing).
    memory_writes: int = 10_000
    journal_dir: Path = Path("var/reporting/journal")
    journal_max_mb: int = 256
    journal_sync_seconds: float = 1.0

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from error
        if self.retention_interval_seconds < 0:
            raise ValueError("retention_interval_seconds must be 0 (never) or more")
        for name in ("memory_writes", "journal_max_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.journal_sync_seconds <= 60:
            raise ValueError("journal_sync_seconds must be more than 0 and at most 60")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class WithReportingSettings(Protocol):
    """What `hotline report` reads of the whole configuration."""

    @property
    def reporting(self) -> ReportingSettings: ...

    @property
    def store(self) -> StoreSettings: ...


def locate(path: str) -> Path:
    """A settings path: absolute as given; relative from the working directory when it is
    there, else from the repository (the shipped dialplans/)."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    return _REPOSITORY / given
