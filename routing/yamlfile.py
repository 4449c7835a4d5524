"""Reading admin-edited YAML with line numbers, so every error points at file:line.

The files are parsed to PyYAML nodes (not plain objects) and checked node by node; a
`FileError` names the file and the 1-based line of the offending value.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


class FileError(ValueError):
    """A data file is malformed; the message starts with ``path:line:``."""


class Doc:
    """One parsed YAML file and helpers that read typed values or fail at the right line."""

    def __init__(self, path: str | Path, text: str | None = None) -> None:
        self.path = str(path)
        try:
            source = Path(path).read_text(encoding="utf-8") if text is None else text
        except (OSError, UnicodeDecodeError) as exc:
            raise FileError(f"{self.path}:1: cannot read: {exc}") from exc
        try:
            root = yaml.compose(source, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            raise FileError(f"{self.path}:{line}: not valid YAML: {exc.problem}") from exc
        except yaml.YAMLError as exc:
            raise FileError(f"{self.path}:1: not valid YAML: {exc}") from exc
        if root is None:
            raise FileError(f"{self.path}:1: the file is empty")
        self.root: Node = root

    def error(self, node: Node, message: str) -> FileError:
        return FileError(f"{self.path}:{node.start_mark.line + 1}: {message}")

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
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:int":
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
        if not isinstance(node, ScalarNode) or node.tag not in (
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
        ):
            raise self.error(node, f"{what} must be a number")
        value = float(_construct(node))
        if not math.isfinite(value):
            raise self.error(node, f"{what} must be a finite number")
        if value < minimum:
            raise self.error(node, f"{what} must be at least {minimum:g}, got {value:g}")
        return value

    def integer(self, node: Node, what: str, *, low: int, high: int) -> int:
        if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            raise self.error(node, f"{what} must be a whole number")
        value = int(_construct(node))
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


def _construct(node: ScalarNode) -> Any:
    """A scalar's value the way YAML 1.1 reads it (``.nan``, ``0x1f``, ``1_000``, ``017``),
    which Python's float() and int() do not all accept."""
    return yaml.SafeLoader("").construct_object(node)
