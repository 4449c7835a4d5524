"""Opening hours of the hotline in Moscow time: the holiday calendar, the hours, the surge switch.

Shared by the menus (hour conditions, what a caller hears out of hours), the ACD (a group's
schedule, when callbacks may be placed) and its admin API, so it lives in the core.

Two admin-edited files, each validated with file:line errors (`validate_calendar_file`,
`validate_hours_file`):

- `dialplans/calendar.yaml`: per year, the non-working public holidays (Labour Code art. 112),
  the weekdays made days off by a transfer, and the weekend days made working days by a transfer.
- `dialplans/hours.yaml`: opening hours per kind of day and where the surge switch lives.

How a day is classified (`Calendar.day_kind`):
- a public holiday, or a weekday made a day off by a transfer -> "holiday" (holiday hours: the
  country is resting, but a short shift answers);
- a Saturday or Sunday made a working day by a transfer -> "workday" (workday hours);
- otherwise Mon-Fri -> "workday", Sat -> "saturday", Sun -> "sunday".
A year the file does not list falls back to the fixed statutory holidays with no transfers, so
the hotline keeps sensible hours on 1 January even if nobody updated the file (`hotline menus lint`
reports the missing year: see `Calendar.missing_years`).

Surge mode (24/7) is a file holding "on" or "off" (`SurgeSwitch`), looked at again at most a
second after it was last looked at, so that `hotline hours surge on` takes effect within a
second without a reload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import Final, Literal
from zoneinfo import ZoneInfo

import yaml

from hotline.yamldoc import (
    Problem,
    YamlFileError,
    compose,
    line_of,
    mapping_items,
    scalar,
    write_atomically,
)

log = logging.getLogger(__name__)

MOSCOW: Final = ZoneInfo("Europe/Moscow")
DayKind = Literal["workday", "saturday", "sunday", "holiday"]
DAY_KINDS: Final[tuple[DayKind, ...]] = ("workday", "saturday", "sunday", "holiday")
DEFAULT_CALENDAR_PATH: Final = Path("dialplans/calendar.yaml")
DEFAULT_HOURS_PATH: Final = Path("dialplans/hours.yaml")
DEFAULT_SURGE_PATH: Final = Path("var/surge")
# How stale the surge switch may be: another process's flip counts for the calls that begin
# at most this long after it.
SURGE_LOOK_SECONDS: Final = 1.0

# Fixed non-working holidays (month, day) of Labour Code art. 112, used for years the file lacks.
STATUTORY_HOLIDAYS: Final = (
    *((1, day) for day in range(1, 9)),
    (2, 23),
    (3, 8),
    (5, 1),
    (5, 9),
    (6, 12),
    (11, 4),
)


# --- the calendar -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calendar:
    """Public holidays and working-day transfers, by date."""

    holidays: frozenset[date] = frozenset()
    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()
    provisional_years: frozenset[int] = frozenset()

    def day_kind(self, day: date) -> DayKind:
        if day.year not in self.years:
            return self._statutory_kind(day)
        if day in self.holidays or day in self.days_off:
            return "holiday"
        if day in self.working_days:
            return "workday"
        return _weekday_kind(day)

    def missing_years(self, years: Iterable[int]) -> list[int]:
        """Which of these years the file does not cover (the fallback rules apply to them)."""
        return [year for year in years if year not in self.years]

    @staticmethod
    def _statutory_kind(day: date) -> DayKind:
        if (day.month, day.day) in STATUTORY_HOLIDAYS:
            return "holiday"
        return _weekday_kind(day)


def _weekday_kind(day: date) -> DayKind:
    weekday = day.weekday()
    if weekday == 5:
        return "saturday"
    if weekday == 6:
        return "sunday"
    return "workday"


@dataclass(slots=True)
class _CalendarBuilder:
    path: Path
    problems: list[Problem]
    holidays: set[date] = field(default_factory=set)
    days_off: set[date] = field(default_factory=set)
    working_days: set[date] = field(default_factory=set)
    years: set[int] = field(default_factory=set)
    provisional: set[int] = field(default_factory=set)
    where: dict[date, tuple[str, int]] = field(default_factory=dict)

    def error(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(str(self.path), line_of(node), message))

    def add_year(self, key: str, key_node: yaml.Node, value: yaml.Node) -> None:
        if not key.isdigit() or not 2000 <= int(key) <= 2100:
            self.error(key_node, f"«{key}» — не год (ожидалось, например, 2026)")
            return
        year = int(key)
        self.years.add(year)
        for section, section_key, section_value in mapping_items(
            value, self.path, self.problems, f"год {year}"
        ):
            if section == "status":
                status = scalar(section_value)
                if status not in ("official", "provisional"):
                    self.error(section_value, "status: допустимо official или provisional")
                elif status == "provisional":
                    self.provisional.add(year)
            elif section == "source":
                continue
            elif section in ("holidays", "days_off", "working_days"):
                self.add_dates(year, section, section_value)
            else:
                self.error(
                    section_key,
                    f"неизвестный раздел «{section}» "
                    "(допустимы status, source, holidays, days_off, working_days)",
                )

    def add_dates(self, year: int, section: str, node: yaml.Node) -> None:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{section}: ожидался список дат")
            return
        for item in node.value:
            date_node = item
            if isinstance(item, yaml.MappingNode):
                fields = {
                    key: value
                    for key, _, value in mapping_items(item, self.path, self.problems, section)
                }
                unknown = set(fields) - {"date", "note"}
                if unknown:
                    self.error(
                        item,
                        f"{section}: неизвестные поля {', '.join(sorted(unknown))} "
                        "(допустимы date, note)",
                    )
                if "date" not in fields:
                    self.error(item, f"{section}: у записи нет поля date")
                    continue
                date_node = fields["date"]
            self.add_date(year, section, date_node)

    def add_date(self, year: int, section: str, node: yaml.Node) -> None:
        text = scalar(node)
        try:
            day = date.fromisoformat(text or "")
        except ValueError:
            self.error(node, f"{section}: «{text}» — не дата ГГГГ-ММ-ДД")
            return
        if day.year != year:
            self.error(node, f"{section}: дата {day} не из {year} года")
            return
        if day in self.where:
            other_section, other_line = self.where[day]
            self.error(
                node, f"{section}: дата {day} уже указана в {other_section} (строка {other_line})"
            )
            return
        weekend = day.weekday() >= 5
        if section == "days_off" and weekend:
            self.error(
                node,
                f"days_off: {day} и так выходной (суббота или воскресенье); "
                "перенос на него невозможен",
            )
            return
        if section == "working_days" and not weekend:
            self.error(
                node,
                f"working_days: {day} и так рабочий день; "
                "рабочими делают только субботу или воскресенье",
            )
            return
        self.where[day] = (section, line_of(node))
        {"holidays": self.holidays, "days_off": self.days_off, "working_days": self.working_days}[
            section
        ].add(day)

    def build(self) -> Calendar:
        return Calendar(
            frozenset(self.holidays),
            frozenset(self.days_off),
            frozenset(self.working_days),
            frozenset(self.years),
            frozenset(self.provisional),
        )


def _parse_calendar(path: Path) -> tuple[Calendar, list[Problem]]:
    problems: list[Problem] = []
    builder = _CalendarBuilder(path, problems)
    root = compose(path, problems)
    if root is not None:
        for key, key_node, value in mapping_items(root, path, problems, "календарь"):
            if key != "years":
                problems.append(
                    Problem(
                        str(path), line_of(key_node), f"неизвестный ключ «{key}» (ожидался years)"
                    )
                )
                continue
            for year, year_node, year_value in mapping_items(value, path, problems, "years"):
                builder.add_year(year, year_node, year_value)
        if not builder.years and not problems:
            problems.append(
                Problem(str(path), line_of(root), "в календаре нет ни одного года (ключ years)")
            )
    return builder.build(), problems


def validate_calendar_file(path: Path) -> list[Problem]:
    """Every error in a calendar file; empty when it is fine."""
    return _parse_calendar(path)[1]


def load_calendar(path: Path) -> Calendar:
    """The calendar from its file; raises YamlFileError listing every error with file:line."""
    calendar, problems = _parse_calendar(Path(path))
    if problems:
        raise YamlFileError(problems)
    return calendar


# --- the surge switch -------------------------------------------------------------------------


class SurgeSwitch:
    """24/7 surge mode, kept in a small file ("on"/"off") that admins flip with
    `hotline hours surge`.

    Written atomically (temporary file + rename) so a call reading it never sees half a word.
    Anything but "on" (a missing file, an unreadable or garbled one) means off: hours then apply
    as usual, which is the safe default for a switch meant to open the line longer, not shut it.

    Every call asks it, so the file is looked at (`stat`) at most once a `SURGE_LOOK_SECONDS`
    and read again only when it changed: its inode, size or modification time differ from the
    last read's. Reading it at every call cost some 11 µs (a tenth of a core at 10,000 calls
    a second) and 36k instructions, nearly half the menu engine's own work a call; a `stat`
    at every call still 2 µs and 9k. A flip by this switch counts at once; one by
    `hotline hours surge` (another process: a new file, always seen) within a second; so does
    an admin's edit, unless it keeps the size within the file system's timestamp tick (a few
    ms), and then at the next change.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = monotonic) -> None:
        self.path = Path(path)
        self._name = str(self.path)  # (a Path is turned into one at every stat)
        self._clock = clock
        self._looked_at = -SURGE_LOOK_SECONDS  # never
        self._on = False  # what the file said when last looked at
        # The file as last read (inode, device, size, modification time) and what it said.
        self._read_as: tuple[tuple[int, int, int, int], bool] | None = None

    def on(self) -> None:
        self._write("on")
        self._looked_at = -SURGE_LOOK_SECONDS  # its own flip counts at once

    def off(self) -> None:
        self._write("off")
        self._looked_at = -SURGE_LOOK_SECONDS

    def is_on(self) -> bool:
        now = self._clock()
        if now - self._looked_at < SURGE_LOOK_SECONDS:
            return self._on
        self._looked_at = now
        self._on = self._look()
        return self._on

    # A switch is also the plain `() -> bool` flag source OpenHours takes (the same function:
    # no second frame at every call).
    __call__ = is_on

    def _look(self) -> bool:
        try:
            seen = os.stat(self._name)
        except FileNotFoundError:
            return False
        except OSError as error:
            log.warning(
                "surge switch unreadable, treated as off",
                extra={"path": str(self.path), "error": str(error)},
            )
            return False
        identity = (seen.st_ino, seen.st_dev, seen.st_size, seen.st_mtime_ns)
        read_as = self._read_as
        if read_as is None or read_as[0] != identity:
            # (replaced between the stat and the read: the next look's stat sees it changed)
            read_as = self._read_as = (identity, self._read())
        return read_as[1]

    def _read(self) -> bool:
        try:
            content = self.path.read_text(encoding="utf-8").strip().lower()
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError) as error:
            log.warning(
                "surge switch unreadable, treated as off",
                extra={"path": str(self.path), "error": str(error)},
            )
            return False
        if content not in ("on", "off"):
            log.warning(
                "surge switch garbled, treated as off",
                extra={"path": str(self.path), "content": content[:20]},
            )
        return content == "on"

    def _write(self, state: str) -> None:
        write_atomically(self.path, (state + "\n").encode("utf-8"))


# --- opening hours ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Opening time and closing time within one day; None for a kind of day that stays closed."""

    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class HoursStatus:
    """The hotline at one moment.

    open: calls are answered by operators now (always true in surge mode).
    kind: the kind of day in Moscow ("workday", "saturday", "sunday", "holiday").
    opens_at: when open, the start of the current shift; when closed, the start of the next one
    (None in surge mode or when no shift is found in the next 31 days).
    closes_at: when open, the end of the current shift; None when closed or in surge mode.
    """

    open: bool
    kind: DayKind
    surge: bool
    opens_at: datetime | None
    closes_at: datetime | None


class OpenHours:
    """Opening hours per kind of day, the calendar that classifies days, and the surge switch.

    Every call asks for the status, and the answer stays the same for hours on end, so the
    last answer with surge off and the last with surge on are kept, each with the stretch of
    local time it holds for (`_decide`); the surge switch is still read on every check."""

    def __init__(
        self,
        windows: dict[DayKind, Window | None],
        calendar: Calendar,
        surge_source: Callable[[], bool],
        tz: ZoneInfo = MOSCOW,
    ) -> None:
        self.windows = windows
        self.calendar = calendar
        self.tz = tz
        self._surge_source = surge_source
        # By surge switch: (from, until, status) with `status` the answer for any local
        # time from <= t < until (compared as wall-clock times, as `_decide` compares).
        self._held: dict[bool, tuple[datetime, datetime, HoursStatus]] = {}

    @property
    def surge(self) -> bool:
        return self._surge_source()

    def status(self, at: datetime) -> HoursStatus:
        local = at
        # A moment in the schedule's own zone (every call's: the engine's clock) has an
        # offset and needs no conversion; only others are checked and converted.
        if at.tzinfo is not self.tz:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("время без часового пояса: укажите его (например, +03:00)")
            local = at.astimezone(self.tz)
        surge = self._surge_source()  # `surge`, read on every check
        held = self._held.get(surge)
        if held is not None and held[0] <= local < held[1]:
            return held[2]
        start, until, status = self._decide(local, surge)
        self._held[surge] = (start, until, status)
        return status

    def _decide(self, local: datetime, surge: bool) -> tuple[datetime, datetime, HoursStatus]:
        """The status at `local` (in `self.tz`) and the stretch [from, until) of the same day
        it holds for: the shift while open; while closed, from midnight or the shift's end
        to the next opening or midnight (the kind of day, the shift and the next opening
        are all the same within it)."""
        day = local.date()
        kind = self.calendar.day_kind(day)
        midnight = datetime.combine(day, time(), self.tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(), self.tz)
        if surge:
            return midnight, next_midnight, HoursStatus(True, kind, True, None, None)
        opens, closes = self._shift_on(day)
        if opens is not None and closes is not None and opens <= local < closes:
            return opens, closes, HoursStatus(True, kind, False, opens, closes)
        next_opening = self._next_opening(local)
        start = closes if closes is not None and closes <= local else midnight
        until = next_midnight if next_opening is None else min(next_opening, next_midnight)
        return start, until, HoursStatus(False, kind, False, next_opening, None)

    def window_for(self, kind: DayKind) -> Window | None:
        return self.windows.get(kind)

    def _shift_on(self, day: date) -> tuple[datetime | None, datetime | None]:
        window = self.windows.get(self.calendar.day_kind(day))
        if window is None:
            return None, None
        return datetime.combine(day, window.opens, self.tz), datetime.combine(
            day, window.closes, self.tz
        )

    def _next_opening(self, local: datetime) -> datetime | None:
        for offset in range(32):
            opens, _ = self._shift_on(local.date() + timedelta(days=offset))
            if opens is not None and opens > local:
                return opens
        return None


def _parse_window(text: str | None) -> Window | str | None:
    """A Window, None for "closed", or an error message."""
    if text is None:
        return "ожидалось «ЧЧ:ММ-ЧЧ:ММ» или closed"
    if text.strip().lower() == "closed":
        return None
    parts = text.replace("–", "-").split("-")
    if len(parts) != 2:
        return f"«{text}»: ожидалось «ЧЧ:ММ-ЧЧ:ММ» или closed"
    try:
        opens, closes = (time.fromisoformat(part.strip()) for part in parts)
    except ValueError:
        return f"«{text}»: время не в формате ЧЧ:ММ"
    if opens >= closes:
        return f"«{text}»: открытие должно быть раньше закрытия (смены через полночь нет)"
    return Window(opens, closes)


@dataclass(slots=True)
class HoursFile:
    """What hours.yaml says, before it is tied to a calendar."""

    windows: dict[DayKind, Window | None]
    timezone: ZoneInfo
    surge_file: Path


def _parse_hours(path: Path) -> tuple[HoursFile, list[Problem]]:
    problems: list[Problem] = []
    parsed = HoursFile({}, MOSCOW, DEFAULT_SURGE_PATH)
    root = compose(path, problems)
    if root is None:
        return parsed, problems

    def error(node: yaml.Node, message: str) -> None:
        problems.append(Problem(str(path), line_of(node), message))

    hours_node: yaml.Node | None = None
    for key, key_node, value in mapping_items(root, path, problems, "часы работы"):
        if key == "timezone":
            try:
                parsed.timezone = ZoneInfo(scalar(value) or "")
            except (ValueError, KeyError, OSError):
                error(
                    value, f"неизвестный часовой пояс «{scalar(value)}» (например, Europe/Moscow)"
                )
        elif key == "surge_file":
            parsed.surge_file = Path(scalar(value) or "")
        elif key == "hours":
            hours_node = value
        else:
            error(key_node, f"неизвестный ключ «{key}» (допустимы timezone, surge_file, hours)")
    if hours_node is None:
        error(root, "нет раздела hours")
        return parsed, problems
    for kind, kind_node, value in mapping_items(hours_node, path, problems, "hours"):
        if kind not in DAY_KINDS:
            error(kind_node, f"неизвестный вид дня «{kind}» (допустимы {', '.join(DAY_KINDS)})")
            continue
        window = _parse_window(scalar(value))
        if isinstance(window, str):
            error(value, f"hours.{kind}: {window}")
        else:
            parsed.windows[kind] = window
    for kind in DAY_KINDS:
        if kind not in parsed.windows and not any(
            p.message.startswith(f"hours.{kind}") for p in problems
        ):
            error(hours_node, f"hours: не указаны часы для «{kind}» (укажите время или closed)")
    return parsed, problems


def validate_hours_file(path: Path) -> list[Problem]:
    """Every error in an hours file; empty when it is fine."""
    return _parse_hours(Path(path))[1]


def load_hours(
    path: Path, calendar: Calendar, surge: Callable[[], bool] | SurgeSwitch | None = None
) -> OpenHours:
    """Opening hours from their file; raises YamlFileError listing every error with file:line.

    `surge` overrides where surge mode is read from (a SurgeSwitch or any callable returning a
    bool); by default it is the file named by `surge_file` (relative paths from the working dir).
    """
    parsed, problems = _parse_hours(Path(path))
    if problems:
        raise YamlFileError(problems)
    if surge is None:
        surge = SurgeSwitch(parsed.surge_file)
    return OpenHours(parsed.windows, calendar, surge, parsed.timezone)
