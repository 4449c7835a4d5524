"""The back-office groups file: the shipped one loads; a broken one is refused at its line; a
running controller keeps the last good file when an edit breaks it."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from yamlfiles import assert_refused_at_line

from workspace.backoffice import BackOfficeFile, load_backoffice
from workspace.model import Category

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
groups:
  technical:
    name: Технический отдел
    due_hours: 48
    members: [sidorov]
categories:
  default: technical
"""


def test_the_shipped_file_sends_technical_faults_to_the_48_hour_department() -> None:
    office = load_backoffice(ROOT / "dialplans" / "backoffice.yaml")
    technical = office.group_for(Category.TECHNICAL_FAULT)
    assert technical.id == "technical" and technical.due == timedelta(hours=48)
    assert office.group_for(Category.PAYMENTS).id == office.default_group
    assert "technical" in office.groups_of("sidorov")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (GOOD.replace("due_hours: 48", "due_hours: двое суток"), 4, "due_hours must be a number"),
        (GOOD.replace("due_hours: 48", "due_hours: 0"), 4, "at least 0.1"),
        (GOOD.replace("due_hours: 48", "due_hours: 99999"), 4, "at most"),
        (GOOD.replace("    members: [sidorov]\n", ""), 3, "missing field(s): members"),
        (GOOD.replace("[sidorov]", "[sidorov, 'a b']"), 5, "not a user name"),
        (GOOD.replace("  technical:\n", "  Tech Dept:\n"), 2, "group id"),
        (GOOD.replace("default: technical", "default: nobody"), 7, "no group 'nobody'"),
        (GOOD.replace("default: technical", "tehnical_fault: technical"), 7, "unknown category"),
        (GOOD.replace("  default: technical\n", "  payments: technical\n"), 7, "missing `default`"),
        (GOOD.replace("[sidorov]\n", "[sidorov]\n    email: x@\n"), 6, "e-mail"),
        (
            GOOD.replace("    name: Технический отдел\n", "    name: Т\n    name: Т\n"),
            4,
            "duplicate",
        ),
        ("groups: {}\ncategories:\n  default: x\n", 1, "no groups"),
        ("groups:\n  a: [\n", 3, "not valid YAML"),
        ("", 1, "empty"),
    ],
)
def test_a_broken_file_is_refused_at_its_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    assert_refused_at_line(load_backoffice, tmp_path / "backoffice.yaml", text, line, says)


def test_a_running_controller_keeps_the_last_good_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "backoffice.yaml"
    path.write_text(GOOD, encoding="utf-8")
    live = BackOfficeFile(path)
    path.write_text(GOOD.replace("due_hours: 48", "due_hours: -1\n"), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a stamp surely different from the first write's
    with caplog.at_level(logging.ERROR):
        assert live.current.groups["technical"].due == timedelta(hours=48)
    assert f"{path}:4: " in caplog.text
    path.write_text(GOOD.replace("due_hours: 48", "due_hours: 72"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    assert live.current.groups["technical"].due == timedelta(hours=72)
