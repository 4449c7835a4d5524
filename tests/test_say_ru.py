"""Russian numbers, digits, dates and times as sound files that really exist."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from hotline.say_ru import (
    PROJECT,
    date_files,
    digit_files,
    number_files,
    plural_form,
    project_say_ids,
    time_files,
)
from ivr.prompts import DEFAULT_CORE_SOUNDS_DIR, load_prompt_texts

ROOT = Path(__file__).resolve().parent.parent
PROJECT_IDS = set(load_prompt_texts(ROOT / "prompts"))


def assert_all_exist(files: list[str]) -> None:
    for name in files:
        if name.startswith(PROJECT):
            assert name.removeprefix(PROJECT) in PROJECT_IDS, name
        else:
            assert (DEFAULT_CORE_SOUNDS_DIR / f"{name}.wav").is_file(), name


def d(*names: str) -> list[str]:
    return [f"digits/{name}" for name in names]


@pytest.mark.parametrize(
    ("n", "gender", "files"),
    [
        (0, "m", d("0")),
        (1, "m", d("1")),
        (1, "f", d("1n")),
        (1, "n", [f"{PROJECT}say-1-neuter"]),
        (2, "f", d("2n")),
        (2, "n", d("2")),
        (11, "f", d("11")),  # teens have no gender
        (20, "m", d("20")),
        (21, "f", d("20", "1n")),
        (100, "m", d("hundred")),
        (115, "m", d("hundred", "15")),
        (342, "f", [f"{PROJECT}say-300", "digits/40", "digits/2n"]),
        (1000, "m", d("1n", "thousand")),  # одна тысяча
        (2000, "m", [*d("2n"), f"{PROJECT}say-thousands-few"]),  # две тысячи
        (5000, "m", [*d("5"), f"{PROJECT}say-thousands-many"]),
        (11000, "m", [*d("11"), f"{PROJECT}say-thousands-many"]),
        (21001, "m", [*d("20", "1n", "thousand", "1")]),
        (2026, "m", [*d("2n"), f"{PROJECT}say-thousands-few", "digits/20", "digits/6"]),
        (1_000_000, "m", d("1", "million")),
        (2_000_000, "m", [*d("2"), f"{PROJECT}say-millions-few"]),
        (3_000_000_000, "m", [*d("3"), f"{PROJECT}say-billions-few"]),
        (-7, "m", d("minus", "7")),
    ],
)
def test_number_files(n: int, gender: str, files: list[str]) -> None:
    assert number_files(n, gender) == files  # type: ignore[arg-type]
    assert_all_exist(files)


def test_every_number_up_to_a_hundred_thousand_exists() -> None:
    for gender in ("m", "f", "n"):
        for n in [*range(0, 2100), *range(2100, 100_000, 997)]:
            assert_all_exist(number_files(n, gender))


def test_number_limits() -> None:
    with pytest.raises(ValueError):
        number_files(10**12)
    with pytest.raises(ValueError):
        number_files(1, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (1, "one"),
        (21, "one"),
        (101, "one"),
        (2, "few"),
        (4, "few"),
        (22, "few"),
        (5, "many"),
        (11, "many"),
        (12, "many"),
        (14, "many"),
        (111, "many"),
        (0, "many"),
        (-1, "one"),
    ],
)
def test_plural_form(n: int, form: str) -> None:
    assert plural_form(n, "one", "few", "many") == form


def test_digit_files() -> None:
    assert digit_files("80*#") == d("8", "0", "star", "pound")
    assert_all_exist(digit_files("0123456789*#"))
    with pytest.raises(ValueError):
        digit_files("12a")
    with pytest.raises(ValueError):
        digit_files("١")


def test_date_files() -> None:
    assert date_files(date(2026, 11, 27)) == d("20", "h-7", "mon-10")  # двадцать седьмое ноября
    assert date_files(date(2026, 1, 1)) == d("h-1", "mon-0")
    assert date_files(date(2026, 3, 30)) == d("h-30", "mon-2")
    assert date_files(date(2026, 12, 31)) == d("30", "h-1", "mon-11")
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert_all_exist(date_files(day))
        day = day.fromordinal(day.toordinal() + 1)


def test_time_files() -> None:
    assert time_files(time(14, 30)) == [
        *d("14"),
        f"{PROJECT}say-hours-many",
        *d("30"),
        f"{PROJECT}say-minutes-many",
    ]
    assert time_files(time(21, 1)) == [
        *d("20", "1"),
        f"{PROJECT}say-hour",
        *d("1n"),
        f"{PROJECT}say-minute",
    ]
    assert time_files(time(2, 22)) == [
        *d("2"),
        f"{PROJECT}say-hours-few",
        *d("20", "2n"),
        f"{PROJECT}say-minutes-few",
    ]
    assert time_files(time(0, 0)) == [*d("0"), f"{PROJECT}say-hours-many"]
    for hour in range(24):
        for minute in range(60):
            assert_all_exist(time_files(time(hour, minute)))


def test_project_words_are_all_in_the_prompt_texts() -> None:
    assert project_say_ids() <= PROJECT_IDS
