"""``hotline menus lint``: each kind of broken menu file is rejected with file:line and a sentence;
the shipped menus pass; exit status 1 on any error."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from ivr.cli import add_commands
from ivr.menu.library import menu_files
from ivr.nodes import KINDS

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"

GOOD = """\
number: "1000"
group: general
hours: hours.yaml
start: welcome
nodes:
  welcome:
    kind: play
    prompts: [hotline/greeting-general]
    next: hours
  hours:
    kind: condition
    branches:
      - {when: closed, goto: bye}
    otherwise: operator
  operator:
    kind: queue
    group: general
  bye:
    kind: hangup
    prompts: [hotline/goodbye]
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


async def lint(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    args = parse(["menus", "lint", str(path)])
    code = await args.run(args, None)
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("hours.yaml", "calendar.yaml"):
        shutil.copy(DIALPLANS / name, tmp_path / name)
    return tmp_path


async def broken(workdir: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    path = workdir / "1000.yaml"
    path.write_text(text, encoding="utf-8")
    code, lines = await lint(path, capsys)
    assert code == 1, lines
    return lines


async def test_the_shipped_menus_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = await lint(DIALPLANS, capsys)
    assert code == 0, lines
    assert len(menu_files(DIALPLANS)) == 5


async def test_a_good_file_passes(workdir: Path, capsys) -> None:
    (workdir / "1000.yaml").write_text(GOOD, encoding="utf-8")
    code, lines = await lint(workdir / "1000.yaml", capsys)
    assert code == 0, lines


async def test_unknown_node_kind(workdir: Path, capsys) -> None:
    text = GOOD.replace("kind: hangup", "kind: hangupp")
    assert await broken(workdir, text, capsys) == [
        f"{workdir}/1000.yaml:19: node 'bye' has an unknown kind 'hangupp' (known: "
        + ", ".join(KINDS)
        + ")"
    ]


async def test_dangling_target(workdir: Path, capsys) -> None:
    text = GOOD.replace("otherwise: operator", "otherwise: operater")
    lines = await broken(workdir, text, capsys)
    assert f"{workdir}/1000.yaml:14: node 'hours' goes to 'operater', which is not a node" in lines


async def test_unreachable_node(workdir: Path, capsys) -> None:
    text = GOOD + "  orphan:\n    kind: hangup\n"
    assert await broken(workdir, text, capsys) == [
        f"{workdir}/1000.yaml:21: node 'orphan' is unreachable from start 'welcome'"
    ]


async def test_loop_with_no_exit(workdir: Path, capsys) -> None:
    text = (
        GOOD.replace("otherwise: operator", "otherwise: ask")
        + """\
  ask:
    kind: menu
    prompts: [hotline/general-main-menu]
    options: {"1": again, "0": operator}
    fallback: again
  again:
    kind: goto
    to: ask
"""
    )
    text = text.replace('options: {"1": again, "0": operator}', 'options: {"1": again}')
    lines = await broken(workdir, text, capsys)
    assert lines[-1] == (
        f"{workdir}/1000.yaml:21: loop with no exit: ask -> again never reaches a queue, "
        "transfer or hang-up"
    )
    assert f"{workdir}/1000.yaml:15: node 'operator' is unreachable from start 'welcome'" in lines


async def test_missing_prompt_file(workdir: Path, capsys) -> None:
    text = GOOD.replace("hotline/goodbye", "hotline/good-bye")
    assert await broken(workdir, text, capsys) == [
        f"{workdir}/1000.yaml:20: node 'bye' plays 'hotline/good-bye', which is no prompt file"
    ]


async def test_asterisk_core_sounds_count_as_prompts(workdir: Path, capsys) -> None:
    (workdir / "1000.yaml").write_text(GOOD.replace("hotline/goodbye", "vm-goodbye"), "utf-8")
    code, lines = await lint(workdir / "1000.yaml", capsys)
    assert code == 0, lines


async def test_missing_hours_file(workdir: Path, capsys) -> None:
    (workdir / "hours.yaml").unlink()
    assert await broken(workdir, GOOD, capsys) == [
        f"{workdir}/1000.yaml:3: bad schedule ref: hours file 'hours.yaml' does not exist"
    ]


async def test_broken_hours_file_points_at_its_own_line(workdir: Path, capsys) -> None:
    hours = (workdir / "hours.yaml").read_text(encoding="utf-8")
    (workdir / "hours.yaml").write_text(hours.replace('"09:00-18:00"', '"18:00-09:00"'), "utf-8")
    lines = await broken(workdir, GOOD, capsys)
    assert len(lines) == 1 and lines[0].startswith(f"{workdir}/hours.yaml:"), lines
    assert "bad schedule" in lines[0]


async def test_hour_conditions_without_hours(workdir: Path, capsys) -> None:
    text = GOOD.replace("hours: hours.yaml\n", "")
    assert await broken(workdir, text, capsys) == [
        f"{workdir}/1000.yaml:12: bad schedule ref: hour conditions need 'hours:' in the menu"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("kind: queue", "kind: queue\n    groop: x"),
            "17: node 'operator': unknown key 'groop' (did you mean 'group'?)",
        ),
        (
            ("    next: hours\n", "    next: hours\n    next: bye\n"),
            "10: node 'welcome': 'next' is given twice",
        ),
        (
            ("      - {when: closed, goto: bye}", "      - {when: weekend, goto: bye}"),
            "13: node 'hours': when: unknown test 'weekend'",
        ),
        (("nodes:\n", "nodes:\n  bye: {kind: hangup}\n"), "19: node 'bye' is defined twice"),
        (
            (
                "  operator:\n    kind: queue\n    group: general\n",
                "  operator:\n    kind: queue\n",
            ),
            "15: node 'operator' needs 'group'",
        ),
        (('number: "1000"', "number: hotline"), "1: number: 'hotline' is not a telephone number"),
        (("start: welcome", "start: [welcome"), "not valid YAML"),
    ],
)
async def test_other_mistakes_point_at_their_line(workdir: Path, capsys, change, expected) -> None:
    old, new = change
    lines = await broken(workdir, GOOD.replace(old, new), capsys)
    assert any(expected in line and line.startswith(f"{workdir}/1000.yaml:") for line in lines), (
        lines
    )


async def test_unreadable_and_empty_files(workdir: Path, capsys) -> None:
    (workdir / "1000.yaml").write_bytes(b"\xff\xfe garbage")
    code, lines = await lint(workdir / "1000.yaml", capsys)
    assert code == 1 and lines[0].startswith(f"{workdir}/1000.yaml:1: cannot read the file")
    assert (await broken(workdir, "", capsys)) == [f"{workdir}/1000.yaml:1: the file is empty"]
    code, lines = await lint(workdir / "nothing.yaml", capsys)
    assert code == 1 and lines == [f"{workdir}/nothing.yaml:1: no such file or directory"]


async def test_a_file_named_for_another_number(workdir: Path, capsys) -> None:
    (workdir / "2000.yaml").write_text(GOOD, encoding="utf-8")
    code, lines = await lint(workdir, capsys)
    assert code == 1
    assert lines == [f"{workdir}/2000.yaml:1: the file is named 2000 but its number is 1000"]


# --- the published schema agrees with the loader -------------------------------------------


def schema() -> dict[str, object]:
    return json.loads((DIALPLANS / "schema.json").read_text(encoding="utf-8"))


def test_the_schema_names_every_node_kind() -> None:
    defs = schema()["$defs"]
    assert isinstance(defs, dict)
    assert set(defs) - {"node"} == set(KINDS)


@pytest.mark.parametrize("path", menu_files(DIALPLANS), ids=lambda p: p.name)
def test_the_shipped_menus_follow_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema())


def test_the_schema_rejects_what_the_loader_rejects() -> None:
    bad = yaml.safe_load(GOOD.replace("kind: hangup", "kind: hangupp"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    typo = yaml.safe_load(GOOD.replace("kind: queue", "kind: queue\n    groop: x"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema())
