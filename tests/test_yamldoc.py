"""The one reader of admin-edited YAML: every mistake at file:line, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hotline.yamldoc import (
    Problem,
    YamlDoc,
    YamlFileError,
    compose,
    compose_text,
    construct,
    mapping_items,
    write_atomically,
)


def test_syntax_error_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  - id: general\n    name: [\n", encoding="utf-8")
    with pytest.raises(YamlFileError) as raised:
        YamlDoc(path)
    assert str(raised.value).startswith(f"{path}:4: not valid YAML")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty"), (b"\xff\xfe\x00", "cannot read the file")],
)
def test_empty_or_undecodable_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    problems: list[Problem] = []
    assert compose(path, problems) is None
    assert problems == [Problem(str(path), 1, problems[0].message)]
    assert message in problems[0].message


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    problems: list[Problem] = []
    assert compose(tmp_path / "nope.yaml", problems) is None
    assert (
        str(problems[0]) == f"{tmp_path / 'nope.yaml'}:1: cannot read the file: it does not exist"
    )


def test_duplicate_key_is_reported_at_its_line_and_the_first_value_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n", encoding="utf-8")
    problems: list[Problem] = []
    root = compose(path, problems)
    assert root is not None
    items = [(key, value.value) for key, _, value in mapping_items(root, path, problems, "top")]
    assert items == [("a", "1"), ("b", "2")]
    assert problems == [Problem(str(path), 3, "top: duplicate key 'a'")]


def test_typed_readers_fail_at_the_value_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("wait: .nan\nring: 017\nname: ''\n", encoding="utf-8")
    doc = YamlDoc(path)
    fields = doc.mapping(doc.root, "top")
    with pytest.raises(YamlFileError, match=r":1: wait must be a finite number"):
        doc.number(fields["wait"][1], "wait")
    # YAML 1.1 reads 017 as octal 15: the message shows what the admin will get
    with pytest.raises(YamlFileError, match=r":2: ring must be between 20 and 60, got 15"):
        doc.integer(fields["ring"][1], "ring", low=20, high=60)
    with pytest.raises(YamlFileError, match=r":3: name must not be empty"):
        doc.text(fields["name"][1], "name")


def test_construct_gives_the_plain_data_yaml_would() -> None:
    root = compose_text("hours: {mon: 09:00-18:00}\nlimit: 0x1f\ntags: [a, 1_000]\n", "x.yaml")
    assert construct(root) == {"hours": {"mon": "09:00-18:00"}, "limit": 31, "tags": ["a", 1000]}


def test_write_atomically_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "operators.yaml"
    write_atomically(path, b"first\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    write_atomically(path, b"second\n")
    assert path.read_bytes() == b"second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    secret = tmp_path / "tokens.yaml"
    write_atomically(secret, b"x", mode=0o600)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["operators.yaml"]
