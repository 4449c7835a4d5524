"""Opening hours in Moscow time: calendar, hours, surge switch, and broken files with file:line."""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline.clock import ManualClock
from hotline.hours import (
    MOSCOW,
    SURGE_LOOK_SECONDS,
    Calendar,
    OpenHours,
    SurgeSwitch,
    load_calendar,
    load_hours,
    validate_calendar_file,
    validate_hours_file,
)
from hotline.yamldoc import YamlFileError
from ivr.hours_speech import describe_hours_ru, genitive_ru

ROOT = Path(__file__).resolve().parent.parent
CALENDAR = ROOT / "dialplans" / "calendar.yaml"
HOURS = ROOT / "dialplans" / "hours.yaml"


@pytest.fixture
def calendar() -> Calendar:
    return load_calendar(CALENDAR)


def msk(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (date(2026, 11, 27), "workday"),  # a Friday
        (date(2026, 11, 28), "saturday"),
        (date(2026, 11, 29), "sunday"),
        (date(2026, 1, 1), "holiday"),
        (date(2026, 1, 9), "holiday"),  # Friday made a day off (from Sat 3 Jan)
        (date(2026, 1, 10), "saturday"),  # plain weekend after the holidays
        (date(2026, 3, 8), "holiday"),  # Sunday holiday
        (date(2026, 3, 9), "holiday"),  # Monday it moved to
        (date(2026, 5, 11), "holiday"),
        (date(2026, 11, 4), "holiday"),
        (date(2026, 12, 31), "holiday"),
        (date(2027, 1, 1), "holiday"),
        (date(2027, 6, 14), "holiday"),
        (date(2027, 11, 13), "workday"),  # working Saturday by transfer
        (date(2027, 11, 5), "holiday"),
        (date(2028, 1, 3), "holiday"),  # not in the file: statutory fallback
        (date(2028, 1, 10), "workday"),
    ],
)
def test_day_kinds(calendar: Calendar, day: date, kind: str) -> None:
    assert calendar.day_kind(day) == kind


def test_missing_years_and_provisional(calendar: Calendar) -> None:
    assert calendar.missing_years([2026, 2027, 2028]) == [2028]
    assert calendar.provisional_years == frozenset({2027})


def hours_with(calendar: Calendar, surge: bool = False):  # type: ignore[no-untyped-def]
    return load_hours(HOURS, calendar, lambda: surge)


@pytest.mark.parametrize(
    ("at", "is_open", "kind"),
    [
        (msk(2026, 11, 27, 7, 59), False, "workday"),
        (msk(2026, 11, 27, 8, 0), True, "workday"),
        (msk(2026, 11, 27, 19, 59), True, "workday"),
        (msk(2026, 11, 27, 20, 0), False, "workday"),
        (msk(2026, 11, 28, 8, 30), False, "saturday"),
        (msk(2026, 11, 28, 17, 0), True, "saturday"),
        (msk(2026, 11, 29, 15, 59), True, "sunday"),
        (msk(2026, 11, 29, 16, 0), False, "sunday"),
        (msk(2026, 11, 4, 9, 0), False, "holiday"),
        (msk(2026, 11, 4, 13, 0), True, "holiday"),
        (msk(2026, 11, 4, 15, 0), False, "holiday"),
        (msk(2027, 11, 13, 19, 0), True, "workday"),  # working Saturday keeps workday hours
    ],
)
def test_open_or_closed(calendar: Calendar, at: datetime, is_open: bool, kind: str) -> None:
    status = hours_with(calendar).status(at)
    assert (status.open, status.kind, status.surge) == (is_open, kind, False)


def test_opens_and_closes_at(calendar: Calendar) -> None:
    hours = hours_with(calendar)
    open_now = hours.status(msk(2026, 11, 27, 12, 0))
    assert open_now.opens_at == msk(2026, 11, 27, 8, 0)
    assert open_now.closes_at == msk(2026, 11, 27, 20, 0)
    friday_night = hours.status(msk(2026, 11, 27, 21, 0))
    assert friday_night.opens_at == msk(2026, 11, 28, 9, 0)  # Saturday hours
    assert friday_night.closes_at is None
    new_year_eve = hours.status(msk(2026, 12, 30, 20, 30))
    assert new_year_eve.opens_at == msk(2026, 12, 31, 10, 0)  # 31 Dec is a day off in 2026


def test_other_time_zones_are_converted_and_naive_rejected(calendar: Calendar) -> None:
    hours = hours_with(calendar)
    # 05:30 UTC is 08:30 in Moscow; 23:00 in Vladivostok (+10) is 16:00 Moscow
    assert hours.status(datetime(2026, 11, 27, 5, 30, tzinfo=UTC)).open
    assert hours.status(datetime(2026, 11, 27, 23, 0, tzinfo=timezone(timedelta(hours=10)))).open
    late = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # 20:30 Moscow
    assert not hours.status(late).open
    with pytest.raises(ValueError, match="часового пояса"):
        hours.status(datetime(2026, 11, 27, 12, 0))


def test_a_schedule_reads_its_own_zone_as_is_and_converts_any_other(calendar: Calendar) -> None:
    # `OpenHours.status` takes a moment in the schedule's own zone (every call's) as it is,
    # and converts one of any other zone, even another named zone, first.
    vladivostok = ZoneInfo("Asia/Vladivostok")  # +10, seven hours ahead of Moscow
    hours = OpenHours(hours_with(calendar).windows, calendar, lambda: False, vladivostok)
    # 09:00 in Vladivostok is open, 07:30 not yet; 09:00 in Moscow is 16:00 there, open
    assert hours.status(datetime(2026, 11, 27, 9, 0, tzinfo=vladivostok)).open
    assert not hours.status(datetime(2026, 11, 27, 7, 30, tzinfo=vladivostok)).open
    assert hours.status(msk(2026, 11, 27, 9, 0)).open
    # 20:00 on Friday in Moscow is already Saturday there
    assert hours.status(datetime(2026, 11, 27, 20, 0, tzinfo=vladivostok)).kind == "workday"
    assert hours.status(msk(2026, 11, 27, 20, 0)).kind == "saturday"


def test_surge_opens_everything(calendar: Calendar, tmp_path: Path) -> None:
    switch = SurgeSwitch(tmp_path / "var" / "surge")
    hours = load_hours(HOURS, calendar, switch)
    night = msk(2026, 1, 1, 3, 0)
    assert not hours.status(night).open
    switch.on()
    assert switch.is_on()
    status = hours.status(night)
    assert (status.open, status.surge, status.kind) == (True, True, "holiday")
    switch.off()
    assert not hours.status(night).open


def test_a_kept_answer_is_not_served_past_the_minute_it_changes(calendar: Calendar) -> None:
    # One schedule asked again and again, as every call asks it: each answer is the one for
    # its own moment, on both sides of an opening, a closing and a midnight into a holiday.
    hours = hours_with(calendar)
    just_before = timedelta(microseconds=1)
    assert not hours.status(msk(2026, 11, 27, 7, 30)).open
    early = hours.status(msk(2026, 11, 27, 8, 0) - just_before)
    assert (early.open, early.opens_at) == (False, msk(2026, 11, 27, 8, 0))
    assert hours.status(msk(2026, 11, 27, 8, 0)).open
    late = hours.status(msk(2026, 11, 27, 20, 0) - just_before)
    assert (late.open, late.closes_at) == (True, msk(2026, 11, 27, 20, 0))
    closed = hours.status(msk(2026, 11, 27, 20, 0))
    saturday = msk(2026, 11, 28, 9, 0)
    assert (closed.open, closed.opens_at, closed.closes_at) == (False, saturday, None)
    eve = hours.status(msk(2026, 11, 4, 0, 0) - just_before)
    assert (eve.kind, eve.opens_at) == ("workday", msk(2026, 11, 4, 10, 0))
    unity_day = hours.status(msk(2026, 11, 4, 0, 0))
    assert (unity_day.open, unity_day.kind) == (False, "holiday")
    # and back in time: an earlier moment is not answered with a later one's status
    assert hours.status(msk(2026, 11, 27, 8, 0) - just_before).open is False


def test_a_surge_switched_between_two_calls_counts_for_the_second(
    calendar: Calendar, tmp_path: Path
) -> None:
    switch = SurgeSwitch(tmp_path / "surge")
    hours = load_hours(HOURS, calendar, switch)
    night = msk(2026, 11, 27, 23, 0)
    assert (hours.status(night).open, hours.status(night).surge) == (False, False)
    switch.on()
    assert (hours.status(night).open, hours.status(night).surge) == (True, True)
    switch.off()
    assert (hours.status(night).open, hours.status(night).surge) == (False, False)
    switch.on()
    daytime = hours.status(msk(2026, 11, 27, 12, 0))
    assert (daytime.open, daytime.surge, daytime.closes_at) == (True, True, None)


SWEEP_HOURS = """\
timezone: {zone}
surge_file: surge
hours:
  workday: "08:00:30-20:00:15"
  saturday: "00:00-03:30"
  sunday: closed
  holiday: "10:00-14:00"
"""


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        ("Europe/Moscow", datetime(2026, 12, 27, tzinfo=MOSCOW)),  # into the new year's days
        # a zone with summer time, across the night its clocks go forward
        ("Europe/Berlin", datetime(2026, 3, 25, tzinfo=UTC)),
    ],
)
def test_kept_answers_match_a_fresh_schedule_at_every_moment(
    calendar: Calendar, tmp_path: Path, zone: str, first: datetime
) -> None:
    path = write(tmp_path, "hours.yaml", SWEEP_HOURS.format(zone=zone))
    surge = [False]
    kept = load_hours(path, calendar, lambda: surge[0])
    moments = [first + timedelta(seconds=433 * n) for n in range(4000)]  # ~20 days
    # every second around each opening and closing the fresh schedule reports
    fresh = load_hours(path, calendar, lambda: False)
    edges = {t for at in moments for t in (fresh.status(at).opens_at, fresh.status(at).closes_at)}
    moments += [t + timedelta(seconds=s) for t in edges if t is not None for s in (-1, 0, 1)]
    moments += [t - timedelta(microseconds=1) for t in edges if t is not None]
    for n, at in enumerate([*sorted(moments), *sorted(moments, reverse=True), *moments]):
        surge[0] = n % 97 == 0
        reference = OpenHours(kept.windows, calendar, lambda: surge[0], kept.tz).status(at)
        assert kept.status(at) == reference, at


def test_surge_garbled_or_missing_file_means_off(tmp_path: Path) -> None:
    clock = ManualClock()
    switch = SurgeSwitch(tmp_path / "surge", clock)
    assert not switch.is_on()
    switch.path.write_bytes(b"\xff\xfe garbage")
    clock.advance(SURGE_LOOK_SECONDS)
    assert not switch.is_on()
    switch.path.write_text("ON\n")
    clock.advance(SURGE_LOOK_SECONDS)
    assert switch.is_on()


def test_a_surge_file_an_admin_edits_counts_within_a_second_and_garbage_is_logged_once(
    calendar: Calendar, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The switch is looked at once a second, not at every call, and read again only when its
    file changed: every change counts within a second, whoever made it, and a garbled file is
    reported once, not at every look."""
    clock = ManualClock()
    switch = SurgeSwitch(tmp_path / "surge", clock)
    hours = load_hours(HOURS, calendar, switch)
    night = msk(2026, 11, 27, 23, 0)
    switch.on()
    assert hours.status(night).surge  # its own flip: at once
    switch.path.write_text("off\n")  # an admin's editor, in place
    clock.advance(SURGE_LOOK_SECONDS - 0.01)
    assert hours.status(night).surge  # not looked at again yet
    clock.advance(0.01)
    assert not hours.status(night).surge
    switch.path.write_text("on\n")
    clock.advance(SURGE_LOOK_SECONDS)
    assert hours.status(night).surge
    with caplog.at_level(logging.WARNING, logger="hotline.hours"):
        switch.path.write_text("onn\n")
        looks = []
        for _ in range(50):
            clock.advance(SURGE_LOOK_SECONDS)
            looks.append(hours.status(night).surge)
        assert looks == [False] * 50
        switch.path.unlink()
        clock.advance(SURGE_LOOK_SECONDS)
        assert not hours.status(night).surge
        switch.path.write_text("onn\n")  # the same garbage again, a new file: said again
        clock.advance(SURGE_LOOK_SECONDS)
        assert not hours.status(night).surge
    said = [record.getMessage() for record in caplog.records]
    assert said.count("surge switch garbled, treated as off") == 2
    switch.on()
    assert hours.status(night).surge


def test_hours_file_names_the_surge_file(calendar: Calendar, tmp_path: Path) -> None:
    hours_file = tmp_path / "hours.yaml"
    surge_file = tmp_path / "state" / "surge"
    text = HOURS.read_text().replace("surge_file: var/surge", f"surge_file: {surge_file}")
    hours_file.write_text(text)
    assert not load_hours(hours_file, calendar).surge
    SurgeSwitch(surge_file).on()
    assert load_hours(hours_file, calendar).surge


def test_describe_hours_ru(calendar: Calendar) -> None:
    text = describe_hours_ru(hours_with(calendar))
    assert text == (
        "Горячая линия работает по московскому времени: в будние дни с восьми до двадцати часов, "
        "в субботу с девяти до восемнадцати часов, в воскресенье с десяти до шестнадцати часов, "
        "в праздничные дни с десяти до четырнадцати часов."
    )


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "нуля"),
        (1, "одного"),
        (8, "восьми"),
        (11, "одиннадцати"),
        (20, "двадцати"),
        (21, "двадцати одного"),
        (23, "двадцати трёх"),
        (30, "тридцати"),
        (45, "сорока пяти"),
        (59, "пятидесяти девяти"),
    ],
)
def test_genitive_numbers(n: int, words: str) -> None:
    assert genitive_ru(n) == words


def test_hours_with_minutes_and_odd_closing(calendar: Calendar, tmp_path: Path) -> None:
    text = HOURS_OK.replace("08:00-20:00", "08:30-21:00").replace(
        "saturday: closed", 'saturday: "09:00-17:45"'
    )
    hours = load_hours(write(tmp_path, "hours.yaml", text), calendar, lambda: False)
    described = describe_hours_ru(hours)
    assert "в будние дни с восьми тридцати до двадцати одного" in described
    assert "в субботу с девяти до семнадцати сорока пяти," in described


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("years:\n  2026:\n    holidays: [2026-13-01]\n", 3, "не дата"),
        ("years:\n  2026:\n    holidays:\n      - 2027-01-01\n", 4, "не из 2026"),
        ("years:\n  2026:\n    days_off:\n      - 2026-01-03\n", 4, "и так выходной"),
        ("years:\n  2026:\n    working_days:\n      - 2026-01-12\n", 4, "и так рабочий"),
        (
            "years:\n  2026:\n    holidays: [2026-01-01]\n    days_off: [2026-01-01]\n",
            4,
            "уже указана",
        ),
        ("years:\n  2026:\n    holiday: []\n", 3, "неизвестный раздел"),
        ("years:\n  twenty:\n    holidays: []\n", 2, "не год"),
        ("years:\n  2026:\n    status: maybe\n", 3, "official"),
        ("years:\n  2026:\n    holidays: [\n", 4, "not valid YAML"),
        ("years:\n  2026: {}\n  2026: {}\n", 3, "duplicate key"),
        ("years:\n  2026:\n    days_off:\n      - note: без даты\n", 4, "нет поля date"),
        ("", 1, "the file is empty"),
        ("- 1\n", 1, "must be a mapping"),
    ],
)
def test_broken_calendar_points_at_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "calendar.yaml", text)
    problems = validate_calendar_file(path)
    assert problems, text
    assert problems[0].line == line
    assert fragment in problems[0].message
    with pytest.raises(YamlFileError) as raised:
        load_calendar(path)
    assert str(raised.value).startswith(f"{path}:{line}: ")


def test_calendar_file_missing_or_not_utf8(tmp_path: Path) -> None:
    assert "does not exist" in validate_calendar_file(tmp_path / "nope.yaml")[0].message
    assert (
        "cannot read the file"
        in validate_calendar_file(write_bytes(tmp_path, b"\xff\xfe\x00"))[0].message
    )


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "binary.yaml"
    path.write_bytes(data)
    return path


HOURS_OK = (
    'hours:\n  workday: "08:00-20:00"\n  saturday: closed\n  sunday: closed\n  holiday: closed\n'
)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (HOURS_OK.replace("08:00-20:00", "20:00-08:00"), 2, "раньше закрытия"),
        (HOURS_OK.replace("08:00-20:00", "8 to 20"), 2, "ЧЧ:ММ"),
        (HOURS_OK.replace("08:00-20:00", "08:00-25:00"), 2, "не в формате"),
        (HOURS_OK.replace("  sunday: closed\n", ""), 2, "«sunday»"),
        (HOURS_OK.replace("holiday", "holidays"), 5, "неизвестный вид дня"),
        ("timezone: Mars/Olympus\n" + HOURS_OK, 1, "часовой пояс"),
        ("opening: 1\n" + HOURS_OK, 1, "неизвестный ключ"),
        ("timezone: Europe/Moscow\n", 1, "нет раздела hours"),
    ],
)
def test_broken_hours_points_at_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, "hours.yaml", text)
    problems = validate_hours_file(path)
    assert problems, text
    assert problems[0].line == line, problems
    assert fragment in problems[0].message


def test_closed_kind_of_day(calendar: Calendar, tmp_path: Path) -> None:
    hours = load_hours(write(tmp_path, "hours.yaml", HOURS_OK), calendar, lambda: False)
    saturday = hours.status(msk(2026, 11, 28, 12, 0))
    assert not saturday.open
    assert saturday.opens_at == msk(2026, 11, 30, 8, 0)
    assert "в субботу — выходной" in describe_hours_ru(hours)


def test_shipped_files_are_valid() -> None:
    assert validate_calendar_file(CALENDAR) == []
    assert validate_hours_file(HOURS) == []


def test_surge_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.prompts_cli import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    surge_file = tmp_path / "surge"

    def run(*argv: str) -> int:
        args = parser.parse_args(["hours", "surge", *argv, "--surge-file", str(surge_file)])
        return int(asyncio.run(args.run(args, None)))

    assert run("status") == 0
    assert "выключен" in capsys.readouterr().out
    assert run("on") == 0
    assert SurgeSwitch(surge_file).is_on()
    assert run("status") == 0
    assert "включён" in capsys.readouterr().out
    assert run("off") == 0
    assert not SurgeSwitch(surge_file).is_on()
