"""The scoring criteria (`dialplans/quality.yaml`), with their weights and maximum points.

    criteria:
      - key: greeting              # latin letters, digits, _ (stored with each score)
        title: Приветствие          # what the form shows
        weight: 1                  # share in the total, > 0
        max_points: 5              # points from 0 to this, a whole number 1..100

A mistake is reported at its file:line (`hotline.yamldoc`); the pages refuse to score against
a broken file. `total_percent` is the weighted share of points the form's marks give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hotline.yamldoc import YamlDoc

__all__ = ["Criterion", "MarkError", "load_criteria", "total_percent"]

_KEY: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FIELDS: Final = {"key", "title", "weight", "max_points"}


@dataclass(frozen=True)
class Criterion:
    key: str
    title: str
    weight: float
    max_points: int


class MarkError(ValueError):
    """Marks that do not fit the criteria (Russian text for the form)."""


def load_criteria(path: Path) -> list[Criterion]:
    """The criteria in `path`; `YamlFileError` at file:line when the file is unusable."""
    doc = YamlDoc(path)
    top = doc.mapping(doc.root, "the quality file")
    doc.check_keys(top, {"criteria"}, {"criteria"}, doc.root)
    items = doc.sequence(top["criteria"][1], "criteria")
    if not items:
        raise doc.error(top["criteria"][1], "criteria must name at least one criterion")
    criteria: list[Criterion] = []
    for item in items:
        fields = doc.mapping(item, "a criterion")
        doc.check_keys(fields, _FIELDS, _FIELDS, item)
        key_node = fields["key"][1]
        key = doc.text(key_node, "key")
        if not _KEY.match(key):
            raise doc.error(key_node, f"key {key!r} must be latin lowercase letters, digits, _")
        if any(c.key == key for c in criteria):
            raise doc.error(key_node, f"duplicate criterion {key!r}")
        weight_node = fields["weight"][1]
        weight = doc.number(weight_node, "weight")
        if weight <= 0:
            raise doc.error(weight_node, "weight must be more than 0")
        top_points = doc.integer(fields["max_points"][1], "max_points", low=1, high=100)
        title = doc.line(fields["title"][1], "title")
        criteria.append(Criterion(key, title, weight, top_points))
    return criteria


def total_percent(criteria: Sequence[Criterion], marks: Mapping[str, int]) -> float:
    """sum(weight * points / max_points) / sum(weight) * 100; every criterion must be marked
    with whole points from 0 to its maximum, and nothing else."""
    unknown = sorted(set(marks) - {c.key for c in criteria})
    if unknown:
        raise MarkError(f"нет такого критерия: {', '.join(unknown)}")
    gained = 0.0
    for criterion in criteria:
        if criterion.key not in marks:
            raise MarkError(f"не оценено: {criterion.title}")
        points = marks[criterion.key]
        if not 0 <= points <= criterion.max_points:
            raise MarkError(f"{criterion.title}: от 0 до {criterion.max_points} баллов")
        gained += criterion.weight * points / criterion.max_points
    return 100.0 * gained / sum(c.weight for c in criteria)
