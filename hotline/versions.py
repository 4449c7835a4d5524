"""Every accepted version of each admin-edited file, with when it was accepted and by whom.

Used by the menus (per number) and by the ACD's files (groups, operators, schedules).

Layout under the versions directory (``IvrSettings.versions_dir``)::

    <number>/20261127T193200Z-1a2b3c4d.yaml   the file's bytes as accepted
    <number>/index.json                       [{id, number, saved_at, author, sha256, note}, ...]

The live reload (`ivr.menu.watch`) records a version each time it accepts a changed file;
``hotline menus rollback`` writes an older one back to the dialplans directory (where the
reload picks it up) and records that as a new version. Writes are atomic (temporary file +
rename) and the index is updated under an exclusive lock, so the CLI and a running controller
may record at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import pwd
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from hotline.private import PRIVATE_FILE, private_dir
from hotline.yamldoc import write_atomically

INDEX = "index.json"
LOCK = ".lock"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Version:
    """One accepted version of a number's menu file."""

    id: str  # "<UTC time>-<sha8>", also the stored file's name without .yaml
    number: str
    saved_at: str  # ISO 8601, UTC
    author: str
    sha256: str
    note: str = ""  # e.g. "rollback to 20261127T193200Z-1a2b3c4d"

    @property
    def file_name(self) -> str:
        return f"{self.id}.yaml"


class VersionError(LookupError):
    """A version that does not exist or cannot be told apart from another."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_author(path: Path) -> str:
    """Who changed a file, as far as a git-less host can tell: the owner's user name."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return "unknown"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no account on this host (a mounted volume)
        return f"uid {uid}"


class VersionStore:
    """The versions directory."""

    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self._clock = clock or (lambda: datetime.now(UTC))

    def versions(self, number: str) -> list[Version]:
        """The number's versions, oldest first (empty when none was ever recorded)."""
        path = self.root / number / INDEX
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            raise VersionError(f"{path}: the versions index cannot be read: {error}") from None
        return [Version(**entry) for entry in raw]

    def latest(self, number: str) -> Version | None:
        found = self.versions(number)
        return found[-1] if found else None

    def sequence(self, number: str, version: Version) -> int:
        """1 for the number's first version, 2 for the second..."""
        ids = [v.id for v in self.versions(number)]
        return ids.index(version.id) + 1

    def find(self, number: str, ref: str) -> Version:
        """A version by its id, or by an unambiguous start of it, or by its sha8."""
        found = self.versions(number)
        exact = [v for v in found if v.id == ref]
        matches = exact or [v for v in found if v.id.startswith(ref) or v.id.endswith(ref)]
        if not ref or not matches:
            raise VersionError(f"{number}: no version '{ref}' (see `hotline menus versions`)")
        if len({v.sha256 for v in matches}) > 1:
            names = ", ".join(v.id for v in matches)
            raise VersionError(f"{number}: '{ref}' could be any of {names}")
        return matches[-1]

    def content(self, version: Version) -> bytes:
        return (self.root / version.number / version.file_name).read_bytes()

    def record(self, number: str, data: bytes, author: str, note: str = "") -> Version:
        """Keep `data` as the number's newest version; nothing new if it already is."""
        folder = private_dir(self.root / number)  # operators' files name staff: not for all
        sha = digest(data)
        with self._locked(folder):
            found = self.versions(number)
            if found and found[-1].sha256 == sha:
                return found[-1]
            now = self._clock().astimezone(UTC)  # once: the id and saved_at tell one time
            version = Version(
                id=_new_id(now, sha, {v.id for v in found}),
                number=number,
                saved_at=now.isoformat(timespec="seconds"),
                author=author,
                sha256=sha,
                note=note,
            )
            write_atomically(folder / version.file_name, data, mode=PRIVATE_FILE)
            index = json.dumps([asdict(v) for v in (*found, version)], ensure_ascii=False, indent=1)
            write_atomically(folder / INDEX, index.encode("utf-8"), mode=PRIVATE_FILE)
        return version

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        with (folder / LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _new_id(now: datetime, sha: str, taken: set[str]) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    candidate, n = f"{stamp}-{sha[:8]}", 1
    while candidate in taken:  # the same bytes twice within a second (A, B, A again)
        n += 1
        candidate = f"{stamp}.{n}-{sha[:8]}"
    return candidate
