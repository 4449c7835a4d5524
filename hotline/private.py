"""Files and directories that hold citizens' data or keys: readable by the service's user only.

The process umask (022 on most systems) would make them 0644 and 0755: anyone with a shell on
the machine could copy the database with its unmasked phone numbers. Rather than changing the
umask of the whole process (prompts and generated Asterisk files must stay readable by
Asterisk's user), each place that creates such a file says so: `private_dir` and
`open_private`, or `tighten` for a file another library creates (SQLite's database).

Modes are set explicitly (not through the umask) and only ever narrowed: a directory an
administrator made stricter stays so, and a shared parent such as /tmp is never touched:
only the directories created here and the ones the service owns outright are.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO, Final, cast

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "create_parents",
    "open_private",
    "private_dir",
    "tighten",
]

PRIVATE_DIR: Final = 0o700
PRIVATE_FILE: Final = 0o600

log = logging.getLogger(__name__)


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """Make `path` a directory with at most `mode`: missing parents are created with `mode`
    too, the directory itself is narrowed to `mode` if it already existed wider."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=mode, exist_ok=True)
        os.chmod(directory, mode)  # mkdir's mode goes through the umask
    tighten(path, mode)
    return path


def create_parents(path: Path) -> None:
    """Create the missing parents of file `path` as private directories; existing ones are
    left as they are (the file may live in a shared directory such as /tmp)."""
    missing = [p for p in path.parents if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(directory, PRIVATE_DIR)


def tighten(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Narrow an existing file's or directory's permissions to `mode`; missing is fine, and a
    path owned by someone else is logged rather than fatal (the service may still read it)."""
    try:
        current = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return
    narrowed = current & mode
    if narrowed != current:
        try:
            os.chmod(path, narrowed)
        except PermissionError:
            log.warning("cannot narrow %s to %o: not ours; it stays %o", path, mode, current)


def open_private(path: Path, *, exclusive: bool = False) -> BinaryIO:
    """Open `path` for writing (truncated), created 0600 and narrowed to 0600 if it existed;
    `exclusive` refuses an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE)
    try:
        os.fchmod(fd, os.fstat(fd).st_mode & PRIVATE_FILE)
        return cast(BinaryIO, os.fdopen(fd, "wb"))
    except BaseException:
        os.close(fd)
        raise
