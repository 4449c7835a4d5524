"""YAML text surgery for admin edits: one entry of a file replaced (or added, or removed)
and the rest of the file kept as written, comments included; hours files rendered from a
request and checked by the IVR's own validator; where the menus name a group.

Every problem is an `EditRefused` pointing at the request's field or at ``file:line``.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hotline.yamldoc import YamlDoc, YamlFileError, compose_file, compose_text, construct, line_of
from routing.admin.errors import EditRefused, refusal

if TYPE_CHECKING:
    from hotline.hours import OpenHours

__all__ = [
    "check_depth",
    "check_hours",
    "hours_data",
    "menus_naming",
    "read_text",
    "render_hours",
    "with_entry",
    "without_entry",
]

_MAX_DEPTH = 4  # JSON nesting an edit may carry (skills is the deepest: 2)
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_STR = "tag:yaml.org,2002:str"


@dataclass
class _Entry:
    """Where one entry of a file's top mapping is written: lines first..last (0-based)."""

    first: int
    last: int
    indent: int


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EditRefused(500, f"Файл {path.name} не читается.", f"{path}:1", str(error)) from None


def _entries(path: Path, text: str, top: str) -> tuple[dict[str, _Entry], int]:
    """Entries of the block mapping under `top`, and the line after the last one."""
    try:
        root = YamlDoc(path, text).root
    except YamlFileError as error:
        raise refusal(error, path, None, "Файл") from None
    body = None
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if isinstance(key, ScalarNode) and key.value == top:
                body = value
    if not isinstance(body, MappingNode) or body.flow_style or not body.value:
        raise EditRefused(
            422, f"Файл {path.name}: раздел «{top}» должен быть непустым блоком.", f"{path}:1"
        )
    entries: dict[str, _Entry] = {}
    for key, value in body.value:
        end = _last_mark(value)
        last = end.line - 1 if end.column == 0 and end.line > key.start_mark.line else end.line
        entries[str(key.value)] = _Entry(key.start_mark.line, last, key.start_mark.column)
    return entries, max(e.last for e in entries.values()) + 1


def _last_mark(node: Node) -> Any:
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _last_mark(last[1] if isinstance(node, MappingNode) else last)
    return node.end_mark


def with_entry(
    path: Path, text: str, top: str, entry_id: str, body: Mapping[str, Any]
) -> tuple[str, tuple[int, list[str]]]:
    """The file with `entry_id` replaced (or added at the end), and (first line, field names
    by line) of the block written, to tell which field an error is in."""
    entries, end = _entries(path, text, top)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    indent = next(iter(entries.values())).indent
    pad = " " * indent
    block = [f"{pad}{_scalar(entry_id)}:\n"]
    names = ["id"]
    for key, value in body.items():
        block.append(f"{pad}  {_scalar(str(key))}: {_flow(value)}\n")
        names.append(str(key))
    found = entries.get(entry_id)
    first, stop = (found.first, found.last + 1) if found else (end, end)
    new = lines[:first] + block + lines[stop:]
    return "".join(new), (first, names)


def without_entry(path: Path, text: str, top: str, entry_id: str) -> str:
    entries, _ = _entries(path, text, top)
    found = entries[entry_id]
    lines = text.splitlines(keepends=True)
    return "".join(lines[: found.first] + lines[found.last + 1 :])


def _scalar(text: str) -> str:
    """A YAML scalar that reads back as exactly this text, plain when that is safe."""
    if _PLAIN.match(text) and compose_text(text, "<scalar>").tag == _STR:  # not true, 1, null
        return text
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in "\u2028\u2029\x85":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _flow(value: Any) -> str:
    """A JSON value as YAML flow text; the file's validator then judges it like any file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else _scalar(str(value))
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    return _scalar(str(value))


def check_depth(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise EditRefused(400, "Слишком глубокая вложенность в запросе.", "body")
    if isinstance(value, Mapping):
        for item in value.values():
            check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_depth(item, depth + 1)


def render_hours(path: Path, body: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """An hours file from the request: the old file's opening comments, then the values."""
    header: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if not line.startswith("#"):
                break
            header.append(line)
    lines = list(header)
    for key in ("timezone", "surge_file"):
        value = body.get(key, current.get(key))
        if value is not None:
            lines.append(f"{key}: {_flow(value)}\n")
    for key in body:
        if key not in ("timezone", "surge_file", "hours"):
            lines.append(f"{_scalar(str(key))}: {_flow(body[key])}\n")
    hours = body.get("hours")
    if isinstance(hours, Mapping):
        lines.append("hours:\n")
        lines.extend(f"  {_scalar(str(k))}: {_flow(v)}\n" for k, v in hours.items())
    else:
        lines.append(f"hours: {_flow(hours)}\n")
    return "".join(lines)


def _hours_field(text: str, line: int) -> str | None:
    """The request field written on a line of a rendered hours file."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    written = lines[line - 1]
    key = written.strip().split(":", 1)[0].strip('"')
    if written.startswith("  "):
        return f"hours.{key}"
    return key if not written.startswith("#") else None


def _scalars_under(node: Node | None, key_name: str) -> Iterator[ScalarNode]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, ScalarNode)
                and key.value == key_name
                and isinstance(value, ScalarNode)
            ):
                yield value
            yield from _scalars_under(value, key_name)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _scalars_under(item, key_name)


def hours_data(path: Path) -> dict[str, Any]:
    """A file's content if it is an hours file (a mapping with ``hours``), else 404."""
    try:
        data = construct(compose_file(path))
    except YamlFileError:
        data = None
    if not isinstance(data, dict) or "hours" not in data:
        raise EditRefused(404, f"Файл {path.name} не является расписанием.", "name")
    return data


def check_hours(path: Path, text: str, schedules_dir: Path) -> OpenHours:
    """The IVR's own validator on the would-be file (in a scratch directory beside no one),
    with its problems reported against the real path."""
    from hotline.hours import load_calendar, load_hours, validate_hours_file

    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / path.name
        trial.write_text(text, encoding="utf-8")
        problems = validate_hours_file(trial)
        if problems:
            first = problems[0]
            field_name = _hours_field(text, first.line)
            raise EditRefused(
                422,
                f"Расписание не сохранено: {first.message}",
                field_name or f"{path}:{first.line}",
                str(first).replace(str(trial), str(path)),
            )
        try:
            return load_hours(trial, load_calendar(schedules_dir / "calendar.yaml"))
        except YamlFileError as error:
            raise EditRefused(422, "Календарь содержит ошибки.", str(error.problems[0])) from None


def menus_naming(menu_files: Iterable[Path], group_id: str) -> Iterator[str]:
    """``file:line`` of every ``group: <id>`` in the menu files (a queue, a callback, a
    variable a later queue reads, the menu's group of last resort)."""
    for path in menu_files:
        try:
            root = compose_file(path)
        except YamlFileError:
            continue  # a broken menu serves nothing; the menu watcher reports it
        for node in _scalars_under(root, "group"):
            if node.value == group_id:
                yield f"{path}:{line_of(node)}"
