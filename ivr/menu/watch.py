"""Live reload of the menu files while the controller runs.

Every `interval` seconds the watcher looks at the dialplans directory (a SHA-256 of each menu
file and of the hours and calendars they use: no inotify, works on any filesystem).
A changed menu file is loaded and checked exactly as at start-up; if it passes, a new
`MenuLibrary` with it replaces the holder's (the `CallEntry`), so new calls get it while calls
in progress keep the `Menu` object they started with. The accepted bytes are kept as a new
version (`hotline.versions`) with the file owner as author.

A file that fails its checks never replaces the last good version: each problem is logged at
ERROR as ``file:line: sentence``, ``hotline_ivr_menu_rejected_total{number}`` counts it and
``hotline_ivr_menu_broken{number}`` stays 1 until a good file arrives. At start-up a number
whose file is broken is served from its newest stored version when there is one.

A change to an opening-hours or calendar file re-checks the menus that use it; a removed menu
file takes the number out (the general menu serves it), as a restart would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from hotline.periodic import Periodic
from hotline.versions import Version, VersionError, VersionStore, digest, file_author
from ivr.menu.library import MenuLibrary, hours_loader, load_one, menu_files
from ivr.menu.model import Location, Menu, MenuError, MenuProblem
from ivr.menu.validate import schedule_problems
from ivr.metrics import MENU_BROKEN, MENU_REJECTED, MENU_VERSION
from ivr.settings import IvrSettings

log = logging.getLogger(__name__)


class LibraryHolder(Protocol):
    """What serves calls from a library: `ivr.entry.CallEntry` reads ``library`` per call."""

    library: MenuLibrary


@dataclass
class Report:
    """What one look found and did."""

    accepted: list[Version] = field(default_factory=list)
    rejected: list[MenuProblem] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # numbers whose file went away
    rescheduled: list[str] = field(default_factory=list)  # numbers with new opening hours

    @property
    def changed(self) -> bool:
        return bool(self.accepted or self.removed or self.rescheduled)


class MenuWatcher:
    """Polls the dialplans directory and swaps the holder's library on a good change.

    `start()` runs the polling task; `close()` stops it. `check()` is one look (the first one
    also records the files in service as their numbers' first versions)."""

    def __init__(
        self,
        holder: LibraryHolder,
        directory: Path,
        versions: VersionStore,
        interval: float = 2.0,
        author: Callable[[Path], str] = file_author,
    ) -> None:
        self.holder = holder
        self.directory = directory
        self.versions = versions
        self._author = author
        self._seen: dict[Path, str] = {}  # menu file -> SHA-256 of its content
        self._schedules_seen: dict[Path, str] = {}  # hours and calendar files
        self._numbers: dict[Path, str] = {}  # menu file -> the number it serves
        self._first = True
        self._poll = Periodic(self.check, interval, name="menu-watcher", log=log)
        self._looking = asyncio.Lock()

    @classmethod
    def from_settings(cls, holder: LibraryHolder, settings: IvrSettings) -> MenuWatcher:
        return cls(
            holder,
            settings.dialplans_dir,
            VersionStore(settings.versions_dir),
            settings.reload_interval,
        )

    def start(self) -> None:
        self._poll.start()

    async def close(self) -> None:
        await self._poll.close()

    async def check(self) -> Report:
        """Look once; a changed library is in the holder when this returns."""
        async with self._looking:  # one look at a time: the look's state is not shared
            # File reads and YAML parsing happen off the event loop; calls keep flowing.
            library, report = await asyncio.to_thread(self._look, self.holder.library)
            self.holder.library = library
        return report

    # --- one look (runs in a worker thread) -----------------------------------------------

    def _look(self, library: MenuLibrary) -> tuple[MenuLibrary, Report]:
        report = Report()
        first, self._first = self._first, False
        files = menu_files(self.directory)
        library = self._forget_removed(library, files, report)
        schedules = self._moved_schedules(library)
        for path in files:
            moved = self._moved(path, self._seen)
            if moved is None:
                library = self._reschedule(library, path, schedules, report)
                continue
            data, self._seen[path] = moved
            library = self._load(library, path, data, report, first)
        return library, report

    @staticmethod
    def _moved(path: Path, seen: dict[Path, str]) -> tuple[bytes, str] | None:
        """The file's bytes and SHA-256 if its content changed since the last look, else None.

        The content is hashed on every look rather than trusting the modification time: two
        saves within one kernel clock tick (a few ms) with the same size share an mtime, and
        a missed edit would stay missed. Menu files are a few kilobytes; hashing them costs
        microseconds."""
        try:
            data = path.read_bytes()
        except OSError:
            return None  # gone between listing and reading: the next look sees it removed
        sha = digest(data)
        return None if seen.get(path) == sha else (data, sha)

    def _load(
        self, library: MenuLibrary, path: Path, data: bytes, report: Report, first: bool
    ) -> MenuLibrary:
        number = self._numbers.get(path, path.stem)
        try:
            menu, services = load_one(path, library.base, library.surge, _text(path, data))
            self._check_unique(menu, path)
        except MenuError as error:
            self._refuse(number, error.problems, report)
            if first and number not in library.menus:
                library = self._serve_stored(library, path, number)
            return library
        if number != menu.number:  # the file now serves another number
            library = library.without(number)
        version = self.versions.record(menu.number, data, self._author(path))
        self._numbers[path] = menu.number
        report.accepted.append(version)
        MENU_BROKEN.labels(menu.number).set(0)
        MENU_VERSION.labels(menu.number).set(self.versions.sequence(menu.number, version))
        if not first:
            log.info(
                "menu reloaded: new calls get version %s of %s",
                version.id,
                path.name,
                extra={"dialled": menu.number, "version": version.id, "author": version.author},
            )
        return library.with_menu(menu, services)

    def _check_unique(self, menu: Menu, path: Path) -> None:
        for other, number in self._numbers.items():
            if number == menu.number and other != path and other.exists():
                claim = MenuProblem(Location(menu.file, 1), f"number {number} already has {other}")
                raise MenuError([claim])

    def _refuse(self, number: str, problems: list[MenuProblem], report: Report) -> None:
        MENU_REJECTED.labels(number).inc()
        MENU_BROKEN.labels(number).set(1)
        report.rejected.extend(problems)
        for problem in problems:
            log.error(
                "menu file refused, the last good version keeps serving: %s",
                problem,
                extra={"dialled": number, "problem": str(problem)},
            )

    def _serve_stored(self, library: MenuLibrary, path: Path, number: str) -> MenuLibrary:
        """At start-up, a number whose file is broken gets its newest stored version."""
        try:
            version = self.versions.latest(number)
            if version is None:
                return library
            text = self.versions.content(version).decode("utf-8")
            menu, services = load_one(path, library.base, library.surge, text)
        except (OSError, UnicodeDecodeError, VersionError, MenuError) as error:
            log.error("no stored version of %s can serve: %s", path.name, error)
            return library
        self._numbers[path] = menu.number
        MENU_VERSION.labels(number).set(self.versions.sequence(number, version))
        log.warning(
            "%s is broken: serving its stored version %s",
            path.name,
            version.id,
            extra={"dialled": number, "version": version.id},
        )
        return library.with_menu(menu, services)

    def _forget_removed(
        self, library: MenuLibrary, files: list[Path], report: Report
    ) -> MenuLibrary:
        present = set(files)
        for path in [p for p in self._seen if p not in present and p in self._numbers]:
            number = self._numbers.pop(path)
            del self._seen[path]
            library = library.without(number)
            report.removed.append(number)
            log.warning(
                "menu file removed: %s now gets the general menu",
                number,
                extra={"dialled": number, "file": str(path)},
            )
        for path in [p for p in self._seen if p not in present]:
            del self._seen[path]  # a broken file that went away
        return library

    # --- opening hours and calendars ------------------------------------------------------

    def _moved_schedules(self, library: MenuLibrary) -> set[Path]:
        """The hours and calendar files in use that changed since the last look."""
        in_use = {p for menu, _ in library.menus.values() for p in _schedule_files(menu)}
        moved = set()
        for path in sorted(in_use):
            found = self._moved(path, self._schedules_seen)
            if found is not None:
                self._schedules_seen[path] = found[1]
                moved.add(path)
        return moved

    def _reschedule(
        self, library: MenuLibrary, path: Path, moved: set[Path], report: Report
    ) -> MenuLibrary:
        """A menu whose own file is unchanged, re-checked when its hours or calendar moved."""
        number = self._numbers.get(path)
        served = library.menus.get(number) if number is not None else None
        if served is None or not moved.intersection(_schedule_files(served[0])):
            return library
        menu, services = served
        problems, hours = schedule_problems(menu, hours_loader(library.surge))
        if problems:
            self._refuse(menu.number, problems, report)
            return library
        report.rescheduled.append(menu.number)
        log.info("opening hours reloaded for %s", menu.number, extra={"dialled": menu.number})
        return library.with_menu(menu, replace(services, hours=hours))


def _schedule_files(menu: Menu) -> list[Path]:
    base = Path(menu.file).parent
    found = []
    if menu.hours_ref is not None:
        found.append(base / menu.hours_ref[0])
        calendar = menu.calendar_ref[0] if menu.calendar_ref else "calendar.yaml"
        found.append(base / calendar)
    return found


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MenuError([MenuProblem(Location(str(path), line), "not UTF-8 text")]) from None
