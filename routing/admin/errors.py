"""How an admin edit is refused: `EditRefused` (status, Russian message, field or file:line)
and the file validators' ``file:line`` errors turned into one, pointed at the request's field."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hotline.yamldoc import YamlDoc, YamlFileError

__all__ = ["EditRefused", "EntryBlock", "parse_or_refuse", "refusal"]

T = TypeVar("T")
# The entry an edit wrote: its first line (0-based) and the field name of each of its lines.
EntryBlock = tuple[int, list[str]]


class EditRefused(Exception):
    """An edit not made; `message` is Russian, `where` a field or ``file:line``."""

    def __init__(self, status: int, message: str, where: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.where, self.detail = status, message, where, detail


def refusal(error: YamlFileError, path: Path, block: EntryBlock | None, what: str) -> EditRefused:
    """The validator's file:line error, pointed at the request's field when it is in the
    entry the request wrote."""
    first = error.problems[0]
    line, message = first.line - 1, first.message
    where = f"{path}:{line + 1}"
    if block is not None and 0 <= line - block[0] < len(block[1]):
        where = block[1][line - block[0]]
    missing = re.match(r"missing field\(s\): (.*)", message)
    if missing and block is not None and where != f"{path}:{line + 1}":
        where = missing[1]
    return EditRefused(422, f"{what}: ошибка в «{where}»: {message}", where, str(error))


def parse_or_refuse(
    parse: Callable[[YamlDoc], T],
    path: Path,
    text: str,
    block: EntryBlock | None,
    what: str,
) -> T:
    try:
        return parse(YamlDoc(path, text))
    except YamlFileError as error:
        raise refusal(error, path, block, what) from None
