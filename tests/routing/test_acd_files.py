"""Groups and operators files: the shipped ones load, and mistakes point at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from yamlfiles import assert_refused_at_line

from hotline.yamldoc import YamlFileError
from routing.groups import load_groups
from routing.operators import load_operators

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_groups_and_operators_load() -> None:
    groups = load_groups(ROOT / "dialplans/groups.yaml")
    assert len(groups) == 10
    assert groups["tech1"].widen_to == ("tech2",)
    assert groups["emergency"].name.startswith("Дежурная")
    operators = load_operators(ROOT / "dialplans/operators.yaml", set(groups))
    assert operators["kuznetsov"].skills == {"tech1": 6, "tech2": 9}


GOOD = """groups:
  a:
    name: A
    schedule: s
    wrap_up_seconds: 5
    ring_seconds: 10
    max_wait_seconds: 60
    widen_after_seconds: 30
"""


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("ring_seconds: 10", "ring_seconds: ten"), 6, "must be a number"),
        (GOOD.replace("ring_seconds: 10", "ring_seconds: 0"), 6, "at least 1"),
        (GOOD + "    overflow_group: nowhere\n", 9, "unknown group 'nowhere'"),
        (GOOD + "    widen_to: [a]\n", 9, "must not name the group itself"),
        (GOOD + "    colour: red\n", 9, "unknown field 'colour'"),
        (GOOD.replace("    schedule: s\n", ""), 3, "missing field(s): schedule"),
        (GOOD + "  a:\n    name: again\n", 9, "duplicate key 'a'"),
        (GOOD.replace("  a:", "  Bad Id:"), 2, "group id"),
        ("groups: [\n", 2, "not valid YAML"),
        ("", 1, "empty"),
    ],
)
def test_group_file_errors_point_at_the_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    assert_refused_at_line(load_groups, tmp_path / "groups.yaml", text, line, words)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("    device: PJSIP/1\n    skills: {nosuch: 3}\n", 5, "not a known group"),
        ("    device: PJSIP/1\n    skills: {a: 11}\n", 5, "between 1 and 10"),
        ("    device: 'PJSIP/1;evil'\n    skills: {a: 1}\n", 4, "must look like"),
        # the ACD dials the device: nothing but the operator's own PJSIP seat
        (
            "    device: Local/78095050000@hotline-callback-out\n    skills: {a: 1}\n",
            4,
            "PJSIP/1001",
        ),
        ("    device: PJSIP/1@trunk\n    skills: {a: 1}\n", 4, "own PJSIP seat"),
        ("    device: PJSIP/1&PJSIP/2\n    skills: {a: 1}\n", 4, "own PJSIP seat"),
        ("    device: 'PJSIP/1,30'\n    skills: {a: 1}\n", 4, "own PJSIP seat"),
        ("    device: PJSIP/1/sip:7809@trunk\n    skills: {a: 1}\n", 4, "own PJSIP seat"),
        ("    device: PJSIP/1\n    skills: {}\n", 5, "at least one skill"),
    ],
)
def test_operator_file_errors(tmp_path: Path, body: str, line: int, words: str) -> None:
    text = f"operators:\n  anna:\n    name: Анна\n{body}"
    path = tmp_path / "operators.yaml"
    assert_refused_at_line(lambda p: load_operators(p, {"a"}), path, text, line, words)


def test_same_device_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "operators.yaml"
    one = "    name: X\n    device: PJSIP/1\n    skills: {a: 1}\n"
    path.write_text(f"operators:\n  x:\n{one}  y:\n{one}", encoding="utf-8")
    with pytest.raises(YamlFileError, match=r":8: device PJSIP/1 is already used by x"):
        load_operators(path, {"a"})


def test_undecodable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(YamlFileError, match=":1: "):
        load_groups(path)


def test_shipped_files_drive_the_acd() -> None:
    from hotline.clock import ManualClock
    from routing.acd import Acd

    groups = load_groups(ROOT / "dialplans/groups.yaml")
    operators = load_operators(ROOT / "dialplans/operators.yaml", set(groups))
    acd = Acd(groups, operators.values(), clock=ManualClock())
    for op_id in operators:
        acd.ready(op_id)
    offers = acd.enqueue("c1", "payments")
    assert [o.operator_id for o in offers] == ["sidorova"]  # level 9 in payments
    assert [o.device for o in acd.enqueue("c2", "tech2")] == ["PJSIP/1004"]
