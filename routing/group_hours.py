"""Opening hours of the skill groups: a group's ``schedule: NAME`` names the hours file
``<schedules_dir>/NAME.yaml`` (the IVR's hours format, with ``calendar.yaml`` from the same
directory classifying days). A name with no such file leaves the group always open to the ACD;
those names are logged so a typo does not go unnoticed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from routing.groups import Group

if TYPE_CHECKING:
    from hotline.hours import OpenHours

__all__ = ["IsOpen", "hours_checker", "load_group_hours", "schedule_checker"]

log = logging.getLogger("hotline.routing")

IsOpen = Callable[[Group, float], bool]


def load_group_hours(groups: Mapping[str, Group], directory: Path) -> dict[str, OpenHours]:
    """Each schedule name the groups use -> its opening hours (``<directory>/<name>.yaml``).
    Broken hours or calendar files raise `hotline.hours.YamlFileError` (every problem at
    file:line); names with no file are logged and left out (always open)."""
    from hotline.hours import load_calendar, load_hours

    hours: dict[str, OpenHours] = {}
    unnamed: set[str] = set()
    for group in groups.values():
        path = directory / f"{group.schedule}.yaml"
        if group.schedule in hours or group.schedule in unnamed:
            continue
        if path.is_file():
            hours[group.schedule] = load_hours(path, load_calendar(directory / "calendar.yaml"))
        else:
            unnamed.add(group.schedule)
    if unnamed:
        log.warning(
            "ACD schedules with no hours file are always open: %s (looked in %s)",
            ", ".join(sorted(unnamed)),
            directory,
        )
    return hours


def schedule_checker(groups: Mapping[str, Group], directory: Path) -> IsOpen:
    """`Acd`'s ``is_open``: each group's schedule file through `hotline.hours`."""
    return hours_checker(load_group_hours(groups, directory))


def hours_checker(hours: Mapping[str, OpenHours]) -> IsOpen:
    """`Acd`'s ``is_open`` reading `hours` (schedule name -> hours) at each call, so an edit
    of that very dict (routing.admin) applies at once; a schedule not in it is always open."""

    def is_open(group: Group, now: float) -> bool:
        schedule = hours.get(group.schedule)
        return schedule is None or bool(schedule.status(datetime.fromtimestamp(now, UTC)).open)

    return is_open
