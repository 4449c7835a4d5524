"""Loading every menu for the controller: a broken file is left out loudly and its number is
served by the general menu; personal data stays masked in the engine's logs."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ivr.menu.library import load_library
from ivr.menu.model import Services

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"


@pytest.fixture
def dialplans(tmp_path: Path) -> Path:
    for name in ("hours.yaml", "calendar.yaml", "88001000001.yaml", "88002000002.yaml"):
        shutil.copy(DIALPLANS / name, tmp_path / name)
    return tmp_path


def rejected(file: str) -> float:
    return REGISTRY.get_sample_value("hotline_ivr_menu_errors_total", {"file": file}) or 0.0


def test_every_shipped_menu_loads() -> None:
    library, problems = load_library(DIALPLANS, Services(), "88001000001", lambda: False)
    assert problems == []
    assert sorted(library.menus) == [
        "88001000001",
        "88002000002",
        "88003000003",
        "88004000004",
        "88005000005",
    ]


def test_a_broken_menu_is_left_out_and_its_number_gets_the_general_menu(
    dialplans: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = dialplans / "88002000002.yaml"
    path.write_text(path.read_text("utf-8").replace("kind: queue", "kind: queu"), "utf-8")
    before = rejected("88002000002.yaml")
    with caplog.at_level(logging.ERROR):
        library, problems = load_library(dialplans, Services(), "88001000001", lambda: False)
    assert [p.at.file for p in problems] == [str(path)]
    assert "unknown kind 'queu'" in problems[0].message
    assert rejected("88002000002.yaml") == before + 1
    assert any("menu file rejected" in r.getMessage() for r in caplog.records)
    picked = library.pick("88002000002")
    assert picked is not None and picked[0].number == "88001000001"


def test_no_menus_at_all_picks_nothing(tmp_path: Path) -> None:
    library, problems = load_library(tmp_path, Services(), "88001000001")
    assert problems == [] and library.pick("88001000001") is None


async def test_collected_numbers_are_masked_in_the_logs(
    run_menu, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = """\
  a:
    kind: collect
    prompts: [hotline/enter-snils]
    store: snils
    length: 11
    validate: snils
    next: q
    fallback: q
  q: {kind: queue, group: social}
"""
    with caplog.at_level(logging.DEBUG, logger="ivr"):
        result, _ = await run_menu(nodes, ["11223344595"])
    assert result.variables["snils"] == "11223344595"
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "menu step" in logged and "*********95" in logged
    assert "11223344595" not in logged
