"""All the menus of the hotline, loaded from the dialplans directory: one ``<number>.yaml`` per
number, each with the services its nodes use (its opening hours among them).

A file that fails its checks is left out (logged, counted in ``hotline_ivr_menu_errors_total``)
and its number is served by the general menu, so a broken edit never drops calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ivr.menu.loader import load_menu
from ivr.menu.model import Menu, MenuError, Problem, Services
from ivr.menu.validate import schedule_problems
from ivr.metrics import MENU_LOAD_ERRORS

log = logging.getLogger(__name__)

Surge = Callable[[], bool]


def menu_files(directory: Path) -> list[Path]:
    """The menu files of a dialplans directory: those named after a number."""
    return sorted(p for p in directory.glob("*.yaml") if p.stem.isdigit())


def hours_loader(surge: Surge | None = None) -> Callable[[Path, Path], Any]:
    """Load opening hours with `ivr.schedule`; `surge` overrides the surge switch file."""
    from ivr.schedule import load_calendar, load_hours

    def load(hours: Path, calendar: Path) -> Any:
        return load_hours(hours, load_calendar(calendar), surge)

    return load


@dataclass(frozen=True)
class MenuLibrary:
    menus: Mapping[str, tuple[Menu, Services]]
    general: str

    def pick(self, number: str) -> tuple[Menu, Services] | None:
        """The number's menu, the general one for a number without a menu, or None."""
        return self.menus.get(number) or self.menus.get(self.general)


def load_library(
    directory: Path, base: Services, general: str, surge: Surge | None = None
) -> tuple[MenuLibrary, list[Problem]]:
    """Every good menu of `directory`, and the problems of the files left out."""
    load_hours = hours_loader(surge)
    menus: dict[str, tuple[Menu, Services]] = {}
    problems: list[Problem] = []
    for path in menu_files(directory):
        try:
            menu = load_menu(path)
        except MenuError as error:
            _reject(path, error.problems, problems)
            continue
        trouble, hours = schedule_problems(menu, load_hours)
        if trouble:
            _reject(path, trouble, problems)
            continue
        if menu.number in menus:
            _reject(path, [_duplicate(menu, menus[menu.number][0])], problems)
            continue
        menus[menu.number] = (menu, replace(base, hours=hours))
    return MenuLibrary(menus, general), problems


def _duplicate(menu: Menu, first: Menu) -> Problem:
    from ivr.menu.model import Location

    return Problem(Location(menu.file, 1), f"number {menu.number} already has {first.file}")


def _reject(path: Path, found: list[Problem], into: list[Problem]) -> None:
    MENU_LOAD_ERRORS.labels(path.name).inc()
    for problem in found:
        log.error("menu file rejected", extra={"problem": str(problem)})
    into.extend(found)
