"""All the menus of the hotline, loaded from the dialplans directory: one ``<number>.yaml`` per
number, each with the services its nodes use (its opening hours among them).

A file that fails its checks is left out (logged, counted in ``hotline_ivr_menu_errors_total``)
and its number is served by the general menu, so a broken edit never drops calls. While the
controller runs, `ivr.menu.watch` swaps in a new library when a file changes (`with_menu`,
`without`); a library is never changed in place, so a call keeps the menu it started with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ivr.menu.loader import load_menu, parse_menu
from ivr.menu.model import Location, Menu, MenuError, MenuProblem, Services
from ivr.menu.resume import walk_of
from ivr.menu.validate import schedule_problems
from ivr.metrics import MENU_LOAD_ERRORS

log = logging.getLogger(__name__)

Surge = Callable[[], bool]


def menu_files(directory: Path) -> list[Path]:
    """The menu files of a dialplans directory: those named after a number."""
    return sorted(p for p in directory.glob("*.yaml") if p.stem.isdigit())


def hours_loader(surge: Surge | None = None) -> Callable[[Path, Path], Any]:
    """Load opening hours with `hotline.hours`; `surge` overrides the surge switch file."""
    from hotline.hours import load_calendar, load_hours

    def load(hours: Path, calendar: Path) -> Any:
        return load_hours(hours, load_calendar(calendar), surge)

    return load


@dataclass(frozen=True)
class MenuLibrary:
    """The menus by number; `base` and `surge` are what a reloaded file is loaded with."""

    menus: Mapping[str, tuple[Menu, Services]]
    general: str
    base: Services = field(default_factory=Services)
    surge: Surge | None = None

    def pick(self, number: str) -> tuple[Menu, Services] | None:
        """The number's menu, the general one for a number without a menu, or None."""
        return self.menus.get(number) or self.menus.get(self.general)

    def with_menu(self, menu: Menu, services: Services) -> MenuLibrary:
        """A new library where `menu` serves its number (the old one is left untouched)."""
        return replace(self, menus={**self.menus, menu.number: (menu, services)})

    def without(self, number: str) -> MenuLibrary:
        """A new library where `number` has no menu of its own (the general one serves it)."""
        return replace(self, menus={k: v for k, v in self.menus.items() if k != number})


def load_one(
    path: Path, base: Services, surge: Surge | None = None, text: str | None = None
) -> tuple[Menu, Services]:
    """One menu file with its opening hours, ready to serve; `MenuError` if it is not.

    `text`, when given, is used instead of the file's content (an older version of the file,
    checked against the hours and calendar beside it)."""
    menu = load_menu(path) if text is None else parse_menu(text, str(path))
    trouble, hours = schedule_problems(menu, hours_loader(surge))
    if trouble:
        raise MenuError(trouble)
    walk_of(menu)  # what every call asks of each node, worked out now rather than mid-call
    return menu, replace(base, hours=hours)


def load_library(
    directory: Path, base: Services, general: str, surge: Surge | None = None
) -> tuple[MenuLibrary, list[MenuProblem]]:
    """Every good menu of `directory`, and the problems of the files left out."""
    menus: dict[str, tuple[Menu, Services]] = {}
    problems: list[MenuProblem] = []
    for path in menu_files(directory):
        try:
            menu, services = load_one(path, base, surge)
        except MenuError as error:
            _reject(path, error.problems, problems)
            continue
        if menu.number in menus:
            _reject(path, [duplicate(menu, menus[menu.number][0])], problems)
            continue
        menus[menu.number] = (menu, services)
    return MenuLibrary(menus, general, base, surge), problems


def duplicate(menu: Menu, first: Menu) -> MenuProblem:
    """The problem of a second file claiming a number another file already serves."""
    return MenuProblem(Location(menu.file, 1), f"number {menu.number} already has {first.file}")


def _reject(path: Path, found: list[MenuProblem], into: list[MenuProblem]) -> None:
    MENU_LOAD_ERRORS.labels(path.name).inc()
    for problem in found:
        log.error("menu file rejected", extra={"problem": str(problem)})
    into.extend(found)
