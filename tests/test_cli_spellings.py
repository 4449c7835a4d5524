"""The `hotline` command grouped by noun; the spellings of earlier releases keep working."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from controller.cli import build_parser, current_spelling


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["lint", "dialplans"], ["menus", "lint", "dialplans"]),
        (["try", "88001000001", "--at", "x"], ["menus", "try", "88001000001", "--at", "x"]),
        (["graph", "88001000001"], ["menus", "graph", "88001000001"]),
        (["surge", "on"], ["hours", "surge", "on"]),
        (["staffing", "--json"], ["acd", "staffing", "--json"]),
        (["prompts", "--force"], ["prompts", "build", "--force"]),
        (["prompts"], ["prompts", "build"]),
        (["config"], ["config", "show"]),
        (["--config", "x.toml", "lint"], ["--config", "x.toml", "menus", "lint"]),
    ],
)
def test_an_earlier_spelling_becomes_todays(old: list[str], new: list[str]) -> None:
    assert current_spelling(old) == new
    build_parser().parse_args(new)  # and today's spelling is a command


@pytest.mark.parametrize(
    "argv",
    [["menus", "lint"], ["prompts", "build"], ["config", "show"], ["prompts", "--help"], []],
)
def test_todays_spelling_is_left_alone(argv: list[str]) -> None:
    assert current_spelling(argv) == argv


def every_help(parser: argparse.ArgumentParser) -> list[str]:
    """The help of `parser` and of every subcommand under it, all levels down."""
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                texts.extend(every_help(sub))
    return texts


def test_help_is_in_one_language() -> None:
    texts = every_help(build_parser())
    assert len(texts) > 30  # every noun and verb was reached
    lines = [line for text in texts for line in text.splitlines()]
    assert [line for line in lines if re.search("[а-яё]", line, re.IGNORECASE)] == []


def test_the_installed_command_accepts_an_old_spelling() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "controller.cli", "staffing", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "usage: hotline acd staffing" in shown.stdout
