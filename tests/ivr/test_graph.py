"""``hotline menus graph``: the SVG picture of a menu is well-formed, shows every node and every way
between them with what takes the caller there, and is the same bytes for the same file."""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.cli import add_commands
from ivr.graph import edges, render_svg
from ivr.menu.loader import load_menu, parse_menu
from ivr.menu.model import Menu
from ivr.nodes.condition import ConditionNode
from ivr.nodes.menu import MenuNode

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
NUMBERS = ["88001000001", "88002000002", "88003000003", "88004000004", "88005000005"]
SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def drawn_edges(root: ET.Element) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> the labels of the arrows and badges between them."""
    found: dict[tuple[str, str], list[str]] = {}
    for group in root.iter(f"{SVG}g"):
        if "edge" in group.get("class", "").split():
            key = (group.get("data-from", ""), group.get("data-to", ""))
            found.setdefault(key, []).extend(group.get("data-label", "").split(", "))
    return found


@pytest.mark.parametrize("number", NUMBERS)
def test_every_node_and_every_key_of_each_shipped_menu_is_drawn(number: str) -> None:
    menu = load_menu(DIALPLANS / f"{number}.yaml")
    root = parsed(render_svg(menu))
    ids = {g.get("data-id") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert ids == set(menu.nodes)
    shown = drawn_edges(root)
    texts = "".join(root.itertext())
    for node_id, node in menu.nodes.items():
        assert node_id in texts
        for target, _ in node.targets():
            assert (node_id, target) in shown, f"{node_id} -> {target} not drawn"
        if isinstance(node, MenuNode):
            for key, (target, _) in node.options.items():
                assert key in shown[(node_id, target)], f"key {key} of {node_id} not drawn"


def test_keys_time_branches_and_ends_are_labelled_in_russian() -> None:
    menu = load_menu(DIALPLANS / "88001000001.yaml")
    svg = render_svg(menu)
    shown = drawn_edges(parsed(svg))
    assert shown[("hours", "surge-note")] == ["усиленный режим"]
    assert shown[("hours", "after-hours")] == ["закрыто"]
    assert shown[("hours", "holiday-note")] == ["праздник"]
    assert shown[("main-menu", "operator")] == ["0", "иначе"]
    assert shown[("check-status", "status-unavailable")] == ["сбой"]
    assert shown[("queue-general", "rate")] == ["после оператора"]
    for end in ("очередь: application-status, приоритет 1", "отбой", "очередь: general"):
        assert end in svg
    # the picture says where each branch continues even when it goes back up the menu
    assert shown[("after-info", "main-menu")] == ["9"]


def test_transfer_and_open_branch_are_drawn() -> None:
    text = """\
number: "1000"
group: general
start: when
nodes:
  when:
    kind: condition
    branches: [{when: open, goto: menu}]
    otherwise: bye
  menu:
    kind: menu
    prompts: [hotline/x]
    options: {"1": police, "#": bye}
    fallback: bye
  police: {kind: transfer, number: "102"}
  bye: {kind: hangup}
"""
    menu = parse_menu(text, "test.yaml")
    svg = render_svg(menu)
    shown = drawn_edges(parsed(svg))
    assert shown[("when", "menu")] == ["открыто"]
    assert shown[("menu", "police")] == ["1"]
    assert shown[("menu", "bye")] == ["#", "иначе"]
    assert "перевод на 102" in svg


def test_same_menu_same_bytes_and_hostile_text_is_escaped() -> None:
    text = """\
number: "1000"
title: "<script>alert(1)</script> & «кавычки»"
group: general
start: a
nodes:
  a:
    kind: condition
    branches: [{when: {variable: topic, equals: "a<b & \\"c\\""}, goto: q}]
    otherwise: q
  q: {kind: queue, group: "x&y"}
"""
    menu = parse_menu(text, "test.yaml")
    first, second = render_svg(menu), render_svg(parse_menu(text, "test.yaml"))
    assert first == second
    root = parsed(first)  # parses: nothing of the file's text broke the XML
    assert "<script>" not in first
    assert "<script>alert(1)</script> & «кавычки»" in "".join(root.itertext())
    assert drawn_edges(root)[("a", "q")] == ['topic = a<b & "c"', "иначе"]


def test_every_condition_branch_has_its_own_label() -> None:
    menu = load_menu(DIALPLANS / "88001000001.yaml")
    for node in menu.nodes.values():
        if isinstance(node, ConditionNode):
            labels = [e.label for e in edges(node)]
            assert all(labels), f"{node.id}: a branch without a label"


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


async def test_graph_command_writes_the_svg_file(tmp_path: Path) -> None:
    out = tmp_path / "general.svg"
    args = _cli(["menus", "graph", "88001000001", "-o", str(out), "--dialplans", str(DIALPLANS)])
    assert await args.run(args, None) == 0
    menu: Menu = load_menu(DIALPLANS / "88001000001.yaml")
    assert out.read_bytes() == render_svg(menu).encode("utf-8")


async def test_graph_command_on_a_broken_or_missing_menu_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "1000.yaml").write_text('number: "1000"\nnodes: [\n', "utf-8")
    args = _cli(["menus", "graph", "1000", "--dialplans", str(tmp_path)])
    assert await args.run(args, None) == 1
    assert f"{tmp_path / '1000.yaml'}:3: not valid YAML" in capsys.readouterr().err
    args = _cli(["menus", "graph", "2000", "--dialplans", str(tmp_path)])
    assert await args.run(args, None) == 1
    assert "no menu file for 2000" in capsys.readouterr().err
