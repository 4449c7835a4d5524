"""``hotline menus lint``: every problem of the menu files, as ``file:line: sentence``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.menu.library import menu_files
from ivr.menu.loader import check_menu
from ivr.menu.model import Location, MenuProblem
from ivr.menu.validate import prompt_problems, schedule_problems


def lint_paths(
    target: Path,
    prompt_exists: Callable[[str], bool],
    load_hours: Callable[[Path, Path], Any],
) -> list[MenuProblem]:
    """Check one menu file, or every menu file of a directory."""
    if target.is_dir():
        files = menu_files(target)
        if not files:
            return [MenuProblem(Location(str(target), 1), "no menu files (<number>.yaml) here")]
    elif target.is_file():
        files = [target]
    else:
        return [MenuProblem(Location(str(target), 1), "no such file or directory")]
    problems: list[MenuProblem] = []
    numbers: dict[str, str] = {}
    for path in files:
        problems.extend(lint_file(path, prompt_exists, load_hours, numbers))
    return sorted(problems, key=lambda p: (p.at.file, p.at.line, p.message))


def lint_file(
    path: Path,
    prompt_exists: Callable[[str], bool],
    load_hours: Callable[[Path, Path], Any],
    numbers: dict[str, str],
) -> list[MenuProblem]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [MenuProblem(Location(str(path), 1), f"cannot read the file: {error}")]
    menu, problems = check_menu(text, str(path))
    if menu is None:
        return problems
    problems += prompt_problems(menu, prompt_exists)
    problems += schedule_problems(menu, load_hours)[0]
    if path.stem.isdigit() and path.stem != menu.number:
        problems.append(
            MenuProblem(
                Location(str(path), 1),
                f"the file is named {path.stem} but its number is {menu.number}",
            )
        )
    if menu.number in numbers:
        problems.append(
            MenuProblem(
                Location(str(path), 1), f"number {menu.number} already has {numbers[menu.number]}"
            )
        )
    numbers.setdefault(menu.number, str(path))
    return problems
