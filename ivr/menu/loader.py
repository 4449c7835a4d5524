"""Menu files: YAML read with its line numbers, turned into a `Menu`, every mistake reported as
``file:line: sentence``.

A menu file::

    number: "88001000001"
    title: общая линия
    group: general          # operator group of last resort
    hours: hours.yaml       # opening hours (beside this file); needed by hour conditions
    calendar: calendar.yaml # public holidays (default: calendar.yaml beside this file)
    start: welcome
    nodes:
      welcome: {kind: play, prompts: [hotline/general-welcome], next: main-menu}
      ...

The graph checks (dangling targets, unreachable nodes, loops with no exit) are in
`ivr.menu.validate`; `load_menu` runs them, so a `Menu` it returns is safe to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from hotline.yamldoc import YamlFileError, compose_text
from ivr.menu.fields import FieldError, Fields, location
from ivr.menu.model import Location, Menu, MenuError, MenuProblem
from ivr.menu.model import Node as MenuNode
from ivr.nodes import KINDS

TOP_KEYS = ("number", "title", "group", "hours", "calendar", "start", "nodes")


def load_menu(path: Path) -> Menu:
    """Read and check one menu file; `MenuError` lists every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MenuError(
            [MenuProblem(Location(str(path), 1), f"cannot read the file: {error}")]
        ) from None
    return parse_menu(text, str(path))


def parse_menu(text: str, file: str) -> Menu:
    """`load_menu` on text already read; `file` names it in messages."""
    menu, problems = check_menu(text, file)
    if problems or menu is None:
        raise MenuError(problems)
    return menu


def check_menu(text: str, file: str) -> tuple[Menu | None, list[MenuProblem]]:
    """The menu (None if it could not be read at all) and every problem found in it."""
    from ivr.menu.validate import graph_problems

    menu, problems = _parse(text, file)
    # Graph checks on a menu with a node missing would only echo that node's own error.
    if menu is not None and not problems:
        problems.extend(graph_problems(menu))
    return menu, problems


def _parse(text: str, file: str) -> tuple[Menu | None, list[MenuProblem]]:
    try:
        root = compose_text(text, file)
    except YamlFileError as error:
        return None, [MenuProblem(Location(p.path, p.line), p.message) for p in error.problems]
    if not isinstance(root, MappingNode):
        return None, [
            MenuProblem(location(file, root), "a menu file is a mapping (number, nodes...)")
        ]
    try:
        top = Fields(file, "menu", root, reserved=())
        header = _header(top)
        node_pairs = top.mapping("nodes")
        top.done(TOP_KEYS)
    except FieldError as error:
        return None, [MenuProblem(error.at, _plain(str(error)))]
    nodes, problems = _nodes(file, node_pairs)
    if not node_pairs:
        problems.append(MenuProblem(top.key_at("nodes"), "the menu has no nodes"))
    menu = Menu(nodes=nodes, file=file, **header)
    return menu, problems


def _header(top: Fields) -> dict[str, Any]:
    number = top.text("number")
    if not number.isdigit():
        raise top.error("number", f"'{number}' is not a telephone number")
    start, start_at = top.target("start")
    return {
        "number": number,
        "title": top.text("title", number),
        "group": top.text("group"),
        "start": start,
        "start_at": start_at,
        "hours_ref": _ref(top, "hours"),
        "calendar_ref": _ref(top, "calendar"),
    }


def _ref(top: Fields, key: str) -> tuple[str, Location] | None:
    return (top.text(key), top.key_at(key)) if top.has(key) else None


def _nodes(
    file: str, pairs: list[tuple[ScalarNode, Node]]
) -> tuple[dict[str, MenuNode], list[MenuProblem]]:
    nodes: dict[str, MenuNode] = {}
    problems: list[MenuProblem] = []
    for key, body in pairs:
        node_id = str(key.value)
        try:
            if node_id in nodes:
                raise FieldError(location(file, key), f"node '{node_id}' is defined twice")
            nodes[node_id] = _node(file, node_id, body, location(file, key))
        except FieldError as error:
            problems.append(MenuProblem(error.at, str(error)))
    return nodes, problems


def _node(file: str, node_id: str, body: Node, at: Location) -> MenuNode:
    if not isinstance(body, MappingNode):
        raise FieldError(at, f"node '{node_id}' must be a mapping with a kind")
    fields = Fields(file, node_id, body, at=at)
    kind = fields.text("kind") if fields.has("kind") else ""
    if not kind:
        raise FieldError(fields.at, f"node '{node_id}' has no kind")
    parser = KINDS.get(kind)
    if parser is None:
        raise FieldError(
            fields.key_at("kind"),
            f"node '{node_id}' has an unknown kind '{kind}' (known: {', '.join(KINDS)})",
        )
    node = parser(node_id, fields)
    fields.done()
    return node


def _plain(message: str) -> str:
    return message.removeprefix("node 'menu': ")
