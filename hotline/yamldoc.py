"""Admin-edited YAML read with its line numbers, so every mistake is reported as file:line.

The one reader every part uses for its files (menus, hours, groups, operators, retention,
tokens, scenarios...). A file is composed to PyYAML nodes, not plain objects: each node keeps
its line, and each part checks its own schema node by node.

Two ways to report, for two kinds of file:

* `YamlDoc` raises `YamlFileError` at the first mistake (`doc.text(node, "the name")`...):
  short files where one message at a time is enough;
* `compose` + `mapping_items` + `Problem` collect every mistake in one pass: files an admin
  fixes in one sitting (hours, calendars, prompts), reported all at once.

`write_atomically` replaces a file so that a reader sees the old bytes or the new, never half:
every writer of an admin file (the API, `hotline hours surge`, rollbacks) goes through it.

Standard library and PyYAML only: the PBX simulator reads its scenario files with it too.
"""

from __future__ import annotations

import math
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in an admin-edited file, located to its line (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class YamlFileError(ValueError):
    """A file that cannot be used; `problems` lists every mistake found, ``file:line:`` first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def compose_text(text: str, source: str) -> Node:
    """The node tree of YAML text; `source` names it in messages. Raises `YamlFileError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise _one(source, line, f"not valid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise _one(source, 1, f"not valid YAML: {error}") from None
    if root is None:
        raise _one(source, 1, "the file is empty")
    return root


def compose_file(path: str | Path, text: str | None = None) -> Node:
    """The node tree of a YAML file (or of `text` read from it). Raises `YamlFileError`."""
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _one(str(path), 1, "cannot read the file: it does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise _one(str(path), 1, f"cannot read the file: {error}") from None
    return compose_text(text, str(path))


def compose(path: str | Path, problems: list[Problem]) -> Node | None:
    """`compose_file` that records its problem instead of raising (None then)."""
    try:
        return compose_file(path)
    except YamlFileError as error:
        problems.extend(error.problems)
        return None


def mapping_items(
    node: Node, path: str | Path, problems: list[Problem], what: str
) -> Iterator[tuple[str, Node, Node]]:
    """(key, key node, value node) of a mapping; a non-mapping or a repeated key is recorded as
    a problem (the repeated key is skipped), not a silent win of the last one."""
    if not isinstance(node, MappingNode):
        problems.append(Problem(str(path), line_of(node), f"{what}: must be a mapping"))
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in seen:
            problems.append(Problem(str(path), line_of(key_node), f"{what}: duplicate key {key!r}"))
            continue
        seen.add(key)
        yield key, key_node, value_node


def scalar(node: Node) -> str | None:
    """A scalar's text as written; None for a mapping or a list."""
    return str(node.value) if isinstance(node, ScalarNode) else None


def construct_scalar(node: ScalarNode) -> Any:
    """A scalar's value the way YAML 1.1 reads it (``.nan``, ``0x1f``, ``1_000``, ``017``),
    which Python's float() and int() do not all accept."""
    return yaml.SafeLoader("").construct_object(node)


def construct(node: Node) -> Any:
    """A node's plain value (dicts, lists, scalars), as ``yaml.safe_load`` would give it: for
    data a part keeps as data once its lines have been checked."""
    return yaml.SafeLoader("").construct_document(node)


class YamlDoc:
    """One parsed YAML file and typed readers that fail at the right line."""

    def __init__(self, path: str | Path, text: str | None = None) -> None:
        self.path = str(path)
        self.root: Node = compose_file(path, text)

    def error(self, node: Node, message: str) -> YamlFileError:
        return _one(self.path, line_of(node), message)

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]]:
        """Key text -> (key node, value node); duplicate keys are an error, not a silent win."""
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        result: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            name = self.text(key, f"a key in {what}")
            if name in result:
                raise self.error(key, f"duplicate key {name!r} in {what}")
            result[name] = (key, value)
        return result

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            if isinstance(node, ScalarNode) and node.tag == _INT:
                return str(node.value)
            raise self.error(node, f"{what} must be text")
        value = str(node.value).strip()
        if not value:
            raise self.error(node, f"{what} must not be empty")
        return value

    def line(self, node: Node, what: str, *, max_chars: int = 200) -> str:
        """`text` that fits one line of a screen: no control characters, not too long."""
        value = self.text(node, what)
        if len(value) > max_chars:
            raise self.error(node, f"{what} must be at most {max_chars} characters")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
            raise self.error(node, f"{what} must be one line without control characters")
        return value

    def number(self, node: Node, what: str, *, minimum: float = 0.0) -> float:
        if not isinstance(node, ScalarNode) or node.tag not in (_INT, _FLOAT):
            raise self.error(node, f"{what} must be a number")
        value = float(construct_scalar(node))
        if not math.isfinite(value):
            raise self.error(node, f"{what} must be a finite number")
        if value < minimum:
            raise self.error(node, f"{what} must be at least {minimum:g}, got {value:g}")
        return value

    def integer(self, node: Node, what: str, *, low: int, high: int) -> int:
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            raise self.error(node, f"{what} must be a whole number")
        value = int(construct_scalar(node))
        if not low <= value <= high:
            raise self.error(node, f"{what} must be between {low} and {high}, got {value}")
        return value

    def check_keys(
        self, fields: dict[str, tuple[Node, Node]], allowed: set[str], required: set[str], at: Node
    ) -> None:
        for name, (key, _) in fields.items():
            if name not in allowed:
                raise self.error(key, f"unknown field {name!r}; expected one of {sorted(allowed)}")
        missing = sorted(required - fields.keys())
        if missing:
            raise self.error(at, f"missing field(s): {', '.join(missing)}")


def write_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` so a reader sees the old bytes or the new, never half.

    The temporary file sits beside the target (a rename never crosses file systems) and is
    flushed to disk before the rename. Permissions: `mode` when given (0o600 for a file holding
    secrets), else those of the file replaced (an admin's chmod sticks), else 0o644.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _one(source: str, line: int, message: str) -> YamlFileError:
    return YamlFileError([Problem(source, line, message)])
