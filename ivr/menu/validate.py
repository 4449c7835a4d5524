"""Checks of a parsed menu beyond its syntax, each problem with file:line:

* graph: a target that names no node, a node the start never reaches, a loop no caller can
  leave (no path from it to a queue, a transfer or a hang-up);
* prompts: a prompt file neither the project nor Asterisk's sound set has;
* schedule: an ``hours``/``calendar`` file that is missing or broken, or hour conditions in a
  menu that names no hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ivr.menu.model import Location, Menu, MenuProblem
from ivr.nodes import EXITS
from ivr.nodes.condition import ConditionNode


def graph_problems(menu: Menu) -> list[MenuProblem]:
    problems = list(_dangling(menu))
    if menu.start not in menu.nodes:
        at = menu.start_at or Location(menu.file, 1)
        problems.append(MenuProblem(at, f"start '{menu.start}' is not a node of this menu"))
        return problems
    reached = _reach(menu.start, _successors(menu))
    for node_id, node in menu.nodes.items():
        if node_id not in reached:
            problems.append(
                MenuProblem(node.at, f"node '{node_id}' is unreachable from start '{menu.start}'")
            )
    problems.extend(_stuck_loops(menu, reached))
    return problems


def _successors(menu: Menu) -> dict[str, list[str]]:
    return {
        node_id: [t for t, _ in node.targets() if t in menu.nodes]
        for node_id, node in menu.nodes.items()
    }


def _dangling(menu: Menu) -> Iterable[MenuProblem]:
    for node_id, node in menu.nodes.items():
        for target, at in node.targets():
            if target not in menu.nodes:
                yield MenuProblem(at, f"node '{node_id}' goes to '{target}', which is not a node")


def _reach(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _stuck_loops(menu: Menu, reached: set[str]) -> Iterable[MenuProblem]:
    """Reachable nodes from which no exit can be reached, reported once per loop."""
    edges = _successors(menu)
    backwards: dict[str, list[str]] = {n: [] for n in menu.nodes}
    for source, targets in edges.items():
        for target in targets:
            backwards[target].append(source)
    exits = [n for n, node in menu.nodes.items() if node.kind in EXITS]
    can_leave: set[str] = set()
    for exit_id in exits:
        can_leave |= _reach(exit_id, backwards)
    stuck = {n for n in reached if n not in can_leave}
    reported: set[str] = set()
    for node_id in sorted(stuck, key=lambda n: menu.nodes[n].at.line):
        if node_id in reported:
            continue
        loop = _reach(node_id, edges) & {n for n in stuck if node_id in _reach(n, edges)}
        if node_id not in loop or not _on_cycle(node_id, edges):
            continue
        reported |= loop
        members = sorted(loop, key=lambda n: menu.nodes[n].at.line)
        yield MenuProblem(
            menu.nodes[node_id].at,
            f"loop with no exit: {' -> '.join(members)} never reaches a queue, transfer or hang-up",
        )


def _on_cycle(node_id: str, edges: Mapping[str, Iterable[str]]) -> bool:
    return any(node_id in _reach(nxt, edges) for nxt in edges.get(node_id, ()))


def prompt_problems(menu: Menu, exists: Callable[[str], bool]) -> list[MenuProblem]:
    problems = []
    for node_id, node in menu.nodes.items():
        for name, at in node.prompts():
            if "${" not in name and not exists(name):
                problems.append(
                    MenuProblem(at, f"node '{node_id}' plays '{name}', which is no prompt file")
                )
    return problems


def schedule_problems(
    menu: Menu, load: Callable[[Path, Path], Any]
) -> tuple[list[MenuProblem], Any | None]:
    """Check the menu's hours (and their calendar) by loading them with `load(hours,
    calendar)`; return the problems and the loaded hours (None if none or broken)."""
    users = [n.uses_hours for n in menu.nodes.values() if isinstance(n, ConditionNode)]
    first_use = next((at for at in users if at is not None), None)
    if menu.hours_ref is None:
        if first_use is None:
            return [], None
        return [
            MenuProblem(first_use, "bad schedule ref: hour conditions need 'hours:' in the menu")
        ], None
    base = Path(menu.file).parent
    hours_name, hours_at = menu.hours_ref
    calendar_name, calendar_at = menu.calendar_ref or ("calendar.yaml", hours_at)
    hours_path, calendar_path = base / hours_name, base / calendar_name
    for path, at, what in (
        (hours_path, hours_at, "hours"),
        (calendar_path, calendar_at, "calendar"),
    ):
        if not path.is_file():
            return [
                MenuProblem(at, f"bad schedule ref: {what} file '{path.name}' does not exist")
            ], None
    try:
        return [], load(hours_path, calendar_path)
    except ValueError as error:
        # The schedule's own errors already carry their file and line: pass them on as such.
        found = [
            MenuProblem(Location(p.path, p.line), f"bad schedule: {p.message}")
            for p in getattr(error, "problems", ())
        ]
        return found or [MenuProblem(hours_at, f"bad schedule ref: '{hours_name}': {error}")], None
