"""The numbers a callback may call: the allow-list file an admin edits, its mistakes at
file:line, and the numbers people write in every form."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from controllers import controller_environment

from hotline.yamldoc import YamlFileError
from routing.callbacks.numbers import (
    DEFAULT_RULES,
    NumbersFile,
    load_number_rules,
    normalise_phone,
)

SHIPPED = Path(__file__).resolve().parents[2] / "dialplans" / "callback-numbers.yaml"


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("8 916 123-45-67", "79161234567"),
        ("+7 (916) 123-45-67", "79161234567"),
        ("7 916 123 45 67", "79161234567"),
        ("916 123 45 67", "79161234567"),
        ("8 (495) 123-45-67", "74951234567"),
        ("+7 383 222-33-44", "73832223344"),
        ("8 812 555-66-77", "78125556677"),
    ],
)
def test_callers_real_numbers_in_every_form_are_allowed(written: str, number: str) -> None:
    assert normalise_phone(written) == number
    assert DEFAULT_RULES.permits(number)
    assert load_number_rules(SHIPPED).permits(number)


@pytest.mark.parametrize(
    "written",
    [
        "8 809 505-00-00",  # premium-rate (the example)
        "+7 809 505 00 00",
        "8 803 100-20-30",  # premium-rate
        "8 800 100-00-01",  # free-phone: a hotline, not a caller
        "8 804 333-22-11",
        "+7 700 123 45 67",  # Kazakhstan (the example)
        "8 727 250-00-00",  # Almaty
        "+7 601 000 00 00",  # Kazakhstan's 6xx
        "+7 940 999 88 77",  # Abkhazia's mobiles
        "8 840 226-00-00",  # Abkhazia
        "+7 500 123 45 67",  # no Russian range
        "8 880 123-45-67",  # no geographic 88x
    ],
)
def test_premium_international_and_service_ranges_are_refused(written: str) -> None:
    number = normalise_phone(written)
    assert number is not None
    assert not DEFAULT_RULES.permits(number)
    assert not load_number_rules(SHIPPED).permits(number)


@pytest.mark.parametrize(
    "written", ["+1 916 123 45 67", "+8 916 123 45 67", "+44 20 7946 0958", "12", "916-12"]
)
def test_what_is_no_russian_number_is_not_normalised(written: str) -> None:
    assert normalise_phone(written) is None


def test_the_shipped_file_says_what_the_built_in_defaults_say() -> None:
    assert load_number_rules(SHIPPED) == DEFAULT_RULES


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("allow:\n  - {prefix: '79', name: a}\n  - {prefix: '79', name: b}\n", 3, "twice"),
        ("allow:\n  - {prefix: '79', name: a}\nrefuse:\n  - {prefix: '79', name: b}\n", 4, "twice"),
        ("allow:\n  - prefix: '8916'\n    name: a\n", 2, "starting with 7"),
        ("allow:\n  - prefix: 79\n    name: a\n  - prefix: '7 9'\n    name: b\n", 4, "1 to 11"),
        ("allow:\n  - {prefix: '79'}\n", 2, "missing field(s): name"),
        ("allow:\n  - {prefix: '79', name: a, note: b}\n", 2, "unknown field 'note'"),
        ("allowed:\n  - {prefix: '79', name: a}\n", 1, "unknown field 'allowed'"),
        ("refuse:\n  - {prefix: '7809', name: a}\n", 1, "missing field(s): allow"),
        ("allow: '79'\n", 1, "must be a list"),
        ("allow:\n  - [79]\n", 2, "must be a mapping"),
        ("allow: [\n", 2, "not valid YAML"),
    ],
)
def test_a_broken_file_is_refused_at_its_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "callback-numbers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as error:
        load_number_rules(path)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert says in str(error.value)


def test_an_edit_applies_without_a_restart_and_a_broken_one_keeps_the_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "callback-numbers.yaml"
    path.write_text("allow:\n  - {prefix: '79', name: mobiles}\n", encoding="utf-8")
    numbers = NumbersFile(path)
    assert numbers.rules.permits("79161234567") and not numbers.rules.permits("74951234567")

    path.write_text(
        "allow:\n  - {prefix: '79', name: mobiles}\n  - {prefix: '74', name: 4xx}\n"
        "refuse:\n  - {prefix: '7916', name: not this one}\n",
        encoding="utf-8",
    )
    assert numbers.rules.permits("74951234567") and not numbers.rules.permits("79161234567")

    with caplog.at_level(logging.ERROR, logger="hotline.routing.callbacks"):
        path.write_text("allow:\n  - {prefix: 'x', name: typo}\n# a longer file\n")
        assert numbers.rules.permits("74951234567")  # the rules in force stay
    assert f"{path}:2: prefix 'x'" in caplog.text


def test_a_broken_numbers_file_stops_serve_with_its_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "callback-numbers.yaml"
    broken.write_text("allow:\n  - {prefix: '79', name: a}\n  - {prefix: '+7 9', name: b}\n")
    env = {
        **os.environ,
        **controller_environment(tmp_path),
        "HOTLINE_RECORDER_ENABLED": "false",
        "HOTLINE_CALLBACKS_NUMBERS_FILE": str(broken),
    }
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"hotline serve: {broken}:3: prefix '+7 9'" in done.stderr
    assert "Traceback" not in done.stderr
