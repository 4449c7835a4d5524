"""``say``: numbers, digits, dates and times as files of the Russian sound set."""

from __future__ import annotations

import pytest

from hotline import say_ru

SAY = """\
  a: {{kind: set, values: {{value: "{value}"}}, next: b}}
  b: {{kind: say, what: {what}, value: "${{value}}", gender: {gender}, next: c}}
  c: {{kind: hangup}}
"""


@pytest.mark.parametrize(
    ("what", "value", "gender", "expected"),
    [
        ("number", "21", "f", say_ru.number_files(21, "f")),
        ("digits", "305", "m", say_ru.digit_files("305")),
        ("date", "2026-11-25T10:15:00+03:00", "m", None),
        ("time", "08:30", "m", None),
    ],
)
async def test_values_are_spoken_with_the_sound_set(
    run_menu, what: str, value: str, gender: str, expected: list[str] | None
) -> None:
    from datetime import date, time

    if expected is None:
        expected = (
            say_ru.date_files(date(2026, 11, 25))
            if what == "date"
            else say_ru.time_files(time(8, 30))
        )
    result, channel = await run_menu(SAY.format(what=what, value=value, gender=gender))
    assert channel.played == expected and expected
    assert str(result.end) == "hangup"


async def test_one_is_feminine_when_asked(run_menu) -> None:
    _, feminine = await run_menu(SAY.format(what="number", value="1", gender="f"))
    _, masculine = await run_menu(SAY.format(what="number", value="1", gender="m"))
    assert feminine.played != masculine.played


@pytest.mark.parametrize("value", ["", "завтра", "12:99"])
async def test_a_value_that_cannot_be_spoken_is_skipped_not_fatal(run_menu, path_of, value) -> None:
    what = "time" if ":" in value else "number"
    result, channel = await run_menu(SAY.format(what=what, value=value, gender="m"))
    assert channel.played == []
    assert str(result.end) == "hangup"
    assert path_of(result, "skip")
