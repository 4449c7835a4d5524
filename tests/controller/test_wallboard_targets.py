"""The wallboard judges the floor by the reports' targets file (dialplans/targets.yaml), so a
supervisor sees the same targets live as in the month's report; an edit shows on the next
board, and a file broken while running keeps the last good targets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.supervision_ports import FileTargets
from supervision.targets import FloorTargets


def write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))  # a new mtime whatever the file system's resolution


def test_without_the_file_the_board_shows_the_built_in_targets(tmp_path: Path) -> None:
    targets = FileTargets(tmp_path / "targets.yaml")()
    assert targets.asa_seconds == 20 and targets.service_level == pytest.approx(0.80)
    assert targets.abandon_rate == pytest.approx(0.05)  # the reports' 5 %, one figure for both
    assert targets.csat == 4.7 and targets.first_contact_resolution == pytest.approx(0.85)


def test_the_boards_targets_follow_the_file_and_survive_a_broken_edit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "targets.yaml"
    write(path, "asa_seconds: 15\nabandon_percent: 3\nservice_level_percent: 90\n", 10**18)
    source = FileTargets(path)
    first = source()
    assert (first.asa_seconds, first.abandon_rate, first.service_level) == (
        15,
        pytest.approx(0.03),
        pytest.approx(0.90),
    )

    write(path, "asa_seconds: 25\nrepeat_percent: null\n", 10**18 + 10**9)
    second = source()
    assert second.asa_seconds == 25
    assert second.abandon_rate == pytest.approx(0.05)  # no longer set: the built-in value
    assert second.repeat_rate == FloorTargets().repeat_rate  # removed: the seed's on the board

    write(path, "asa_seconds: [oops\n", 10**18 + 2 * 10**9)
    assert source() == second  # the last good targets
    assert "targets file broken" in caplog.text and "targets.yaml:2" in caplog.text
