"""The hotline's targets (`dialplans/targets.yaml`), with the seed's built in.

    # every key is optional; a missing one keeps the built-in target, null removes it
    asa_seconds: 20              # average speed of answer, at most
    service_level_seconds: 20    # "answered within" threshold: 10, 15, 20, 30, 45, 60, 90 or 120
    service_level_percent: 80    # share answered within it, at least
    abandon_percent: 5           # abandoned of those who queued, at most
    fcr_percent: 85              # first-contact resolution, at least
    csat_average: 4.7            # the callers' rating, 1 to 5, at least
    repeat_percent: 5            # repeat calls of all calls, at most
    occupancy_percent: 85        # operators' busy time of their time at work, at most
    handle_seconds: 360          # talk, hold and wrap-up per answered call, at most

A mistake is reported at its file:line (`hotline.yamldoc`); `hotline report` and the web page
refuse to run on a broken file rather than judge against targets no one set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from yaml.nodes import ScalarNode

from hotline.yamldoc import YamlDoc
from reporting.rollups import SL_CHOICES

__all__ = ["Target", "Targets", "load_targets"]


@dataclass(frozen=True)
class Target:
    """One figure's target: `value`, met when the figure is at most it (`at_most`) or at least."""

    value: float
    at_most: bool

    def met(self, figure: float | None) -> bool | None:
        """None when there is no figure to judge (no calls of that kind)."""
        if figure is None:
            return None
        return figure <= self.value if self.at_most else figure >= self.value

    @property
    def sign(self) -> str:
        return "≤" if self.at_most else "≥"


@dataclass(frozen=True)
class Targets:
    """The seed's targets (ASA, FCR, CSAT, repeats) and conventional ones for the rest."""

    asa_seconds: float | None = 20.0
    service_level_seconds: float = 20.0
    service_level_percent: float | None = 80.0
    abandon_percent: float | None = 5.0
    fcr_percent: float | None = 85.0
    csat_average: float | None = 4.7
    repeat_percent: float | None = 5.0
    occupancy_percent: float | None = 85.0
    handle_seconds: float | None = 360.0

    def target(self, name: str) -> Target | None:
        value = getattr(self, name)
        if value is None:
            return None
        return Target(float(value), at_most=name not in _AT_LEAST)


_AT_LEAST: Final = frozenset({"service_level_percent", "fcr_percent", "csat_average"})
_PERCENTS: Final = frozenset(
    {"service_level_percent", "abandon_percent", "fcr_percent", "repeat_percent"}
    | {"occupancy_percent"}
)
_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(Targets))


def load_targets(path: Path) -> Targets:
    """The targets in `path` (built-in ones without the file); `YamlFileError` at file:line."""
    if not path.exists():
        return Targets()
    doc = YamlDoc(path)
    if isinstance(doc.root, ScalarNode) and doc.root.value in ("", "~", "null"):
        return Targets()
    fields = doc.mapping(doc.root, "the targets file")
    doc.check_keys(fields, set(_FIELDS), set(), doc.root)
    values: dict[str, float | None] = {}
    for name, (_key, node) in fields.items():
        if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            if name == "service_level_seconds":
                raise doc.error(node, "service_level_seconds cannot be removed")
            values[name] = None
            continue
        value = doc.number(node, name)
        if name == "service_level_seconds" and value not in SL_CHOICES:
            choices = ", ".join(str(seconds) for seconds in SL_CHOICES)
            raise doc.error(node, f"service_level_seconds is one of {choices}, got {value:g}")
        if name in _PERCENTS and value > 100:
            raise doc.error(node, f"{name} is a percentage: at most 100, got {value:g}")
        if name == "csat_average" and not 1 <= value <= 5:
            raise doc.error(node, f"csat_average is a mark from 1 to 5, got {value:g}")
        values[name] = value
    return dataclasses.replace(Targets(), **values)  # type: ignore[arg-type]
