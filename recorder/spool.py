"""The spool directory, where MixMonitor writes each call's audio before the pipeline runs.

* `<spool_dir>/<call id>.wav`, where the call id is the channel's Asterisk uniqueid
  (`1795563226.1`); `valid_call_id` says which ids are safe as a file name and an object key.
* `mixmonitor_args(call_id, spool_dir)`: the arguments for `AgiSession.exec("MixMonitor", ...)`
  when the call is answered (`recorder.agi`).
* `spool_space`: free space and what waits there, for the spool alarm (`recorder.pipeline`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SPOOL_DIR_MODE",
    "SPOOL_SUFFIX",
    "SpoolSpace",
    "mixmonitor_args",
    "spool_path",
    "spool_space",
    "valid_call_id",
]

SPOOL_SUFFIX = ".wav"
# Asterisk's MixMonitor writes here, as its own user when that is not ours: the group (shared
# with Asterisk) may write, others may not even list the calls' audio.
SPOOL_DIR_MODE = 0o770
_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def valid_call_id(call_id: str) -> bool:
    """Asterisk uniqueids and similar: safe as a file name and an object key component."""
    return bool(_CALL_ID.match(call_id)) and ".." not in call_id


def spool_path(spool_dir: Path, call_id: str) -> Path:
    if not valid_call_id(call_id):
        raise ValueError(f"unusable call id {call_id!r}")
    return Path(spool_dir) / f"{call_id}{SPOOL_SUFFIX}"


def mixmonitor_args(call_id: str, spool_dir: Path) -> tuple[str, ...]:
    """Arguments of `EXEC MixMonitor` for this call: the spool file's absolute path.

    No options: both directions mixed, from the moment the call is answered to hang-up.
    The path must be the spool directory as Asterisk sees it (same host or shared mount).
    """
    return (str(spool_path(Path(spool_dir).resolve(), call_id)),)


@dataclass(frozen=True)
class SpoolSpace:
    free_bytes: int
    total_bytes: int
    files: int
    bytes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0


def spool_space(spool_dir: Path) -> SpoolSpace:
    """Free space (for unprivileged writers like Asterisk) and what waits in the spool."""
    stats = os.statvfs(spool_dir)
    files = size = 0
    for entry in os.scandir(spool_dir):
        if entry.is_file(follow_symlinks=False) and entry.name.endswith(SPOOL_SUFFIX):
            files += 1
            size += entry.stat(follow_symlinks=False).st_size
    return SpoolSpace(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize, files, size)
