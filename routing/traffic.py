"""The traffic file: a day's expected calls per group, handle times, patience and shifts.

Supervisors edit it (example: ``dialplans/traffic.yaml``); ``hotline acd staffing`` turns it into
operators per interval and ``hotline sim --virtual`` plays it as a day of calls. Every mistake
is reported as ``file:line: message`` (a `YamlFileError`).

Times of day are ``"HH:MM"`` text, seconds everywhere else. Calls are given per interval from a
start time; intervals outside the list expect no calls.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node, ScalarNode

from hotline.yamldoc import YamlDoc
from routing.erlang import StaffingTarget

DAY_SECONDS = 24 * 3600
DISTRIBUTIONS = ("exponential", "lognormal", "fixed")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_GROUP_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # as in dialplans/groups.yaml


@dataclass(frozen=True)
class Distribution:
    """A positive random duration in seconds with the given mean (and sd for lognormal)."""

    kind: str
    mean: float
    sd: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.mean
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean)
        # lognormal given by its own mean and sd, converted to the underlying normal's mu/sigma
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        return rng.lognormvariate(math.log(self.mean) - sigma2 / 2.0, math.sqrt(sigma2))


@dataclass(frozen=True)
class Shift:
    """`operators` of one group logged in from `start` to `end` (seconds from the day's start)."""

    start: float
    end: float
    operators: int


@dataclass(frozen=True)
class GroupTraffic:
    """One skill group's day: expected calls per interval, how long they take, who answers."""

    name: str
    calls: tuple[float, ...]  # expected calls in each interval of the plan
    handle_time: Distribution
    wrap_up: float
    patience: Distribution | None  # None: callers never give up (Erlang C's assumption)
    shifts: tuple[Shift, ...]

    @property
    def aht(self) -> float:
        """Average handle time for planning: talk plus wrap-up, both keep an operator busy."""
        return self.handle_time.mean + self.wrap_up

    def operators_at(self, moment: float) -> int:
        return sum(s.operators for s in self.shifts if s.start <= moment < s.end)


@dataclass(frozen=True)
class TrafficPlan:
    """Groups over `len(calls)` consecutive intervals of `interval_seconds` each."""

    interval_seconds: float
    intervals: int
    groups: tuple[GroupTraffic, ...]
    target: StaffingTarget
    shrinkage: float = 0.0

    def __post_init__(self) -> None:
        for group in self.groups:
            if len(group.calls) != self.intervals:
                raise ValueError(
                    f"group {group.name!r} gives calls for {len(group.calls)} "
                    f"intervals, the plan has {self.intervals}"
                )

    def interval_start(self, index: int) -> float:
        return index * self.interval_seconds


def format_clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def load_traffic(path: str | Path, text: str | None = None) -> TrafficPlan:
    """Read and check a traffic file; raises `YamlFileError` pointing at the offending line."""
    return _TrafficReader(YamlDoc(path, text)).plan()


class _TrafficReader:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc

    def plan(self) -> TrafficPlan:
        doc = self.doc
        fields = doc.mapping(doc.root, "the traffic file")
        allowed = {"interval_minutes", "target", "shrinkage", "groups"}
        doc.check_keys(fields, allowed, {"groups"}, doc.root)
        minutes = 30
        if "interval_minutes" in fields:
            node = fields["interval_minutes"][1]
            minutes = doc.integer(node, "interval_minutes", low=1, high=1440)
            if 1440 % minutes:
                raise doc.error(node, "interval_minutes must divide a day (1440 minutes)")
        interval = minutes * 60.0
        target = self.target(fields["target"][1]) if "target" in fields else StaffingTarget()
        shrinkage = 0.0
        if "shrinkage" in fields:
            shrinkage = self.share(fields["shrinkage"][1], "shrinkage", upper_open=True)
        groups_node = fields["groups"][1]
        groups = doc.mapping(groups_node, "groups")
        if not groups:
            raise doc.error(groups_node, "groups must name at least one group")
        intervals = 1440 // minutes
        return TrafficPlan(
            interval,
            intervals,
            tuple(
                self.group(name, key, node, interval, intervals)
                for name, (key, node) in groups.items()
            ),
            target,
            shrinkage,
        )

    def target(self, node: Node) -> StaffingTarget:
        doc = self.doc
        fields = doc.mapping(node, "target")
        doc.check_keys(fields, {"service_level", "seconds", "asa", "max_occupancy"}, set(), node)
        level = 0.8
        if "service_level" in fields:
            level = self.share(fields["service_level"][1], "target.service_level")
        seconds = 20.0
        if "seconds" in fields:
            seconds = self.finite(fields["seconds"][1], "target.seconds")
        asa = None
        if "asa" in fields:
            asa = self.positive(fields["asa"][1], "target.asa")
        occupancy = None
        if "max_occupancy" in fields:
            occupancy = self.share(fields["max_occupancy"][1], "target.max_occupancy")
        return StaffingTarget(level, seconds, asa, occupancy)

    def group(
        self, name: str, key: Node, node: Node, interval: float, intervals: int
    ) -> GroupTraffic:
        doc = self.doc
        if not _GROUP_ID.fullmatch(name):
            raise doc.error(key, f"group id {name!r}: use a-z, 0-9, '_' or '-'")
        what = f"group {name!r}"
        fields = doc.mapping(node, what)
        allowed = {"handle_time", "wrap_up", "patience", "arrivals", "shifts"}
        doc.check_keys(fields, allowed, {"handle_time", "arrivals", "shifts"}, node)
        wrap_up = 0.0
        if "wrap_up" in fields:
            wrap_up = self.finite(fields["wrap_up"][1], f"{what}: wrap_up")
        patience = None
        if "patience" in fields and not _is_null(fields["patience"][1]):
            patience = self.distribution(fields["patience"][1], f"{what}: patience")
        return GroupTraffic(
            name,
            self.arrivals(fields["arrivals"][1], what, interval, intervals),
            self.distribution(fields["handle_time"][1], f"{what}: handle_time"),
            wrap_up,
            patience,
            tuple(
                self.shift(item, f"{what}: shifts[{n}]")
                for n, item in enumerate(doc.sequence(fields["shifts"][1], f"{what}: shifts"))
            ),
        )

    def arrivals(self, node: Node, what: str, interval: float, intervals: int) -> tuple[float, ...]:
        doc = self.doc
        fields = doc.mapping(node, f"{what}: arrivals")
        doc.check_keys(fields, {"start", "calls"}, {"start", "calls"}, node)
        start_node = fields["start"][1]
        start = self.clock(start_node, f"{what}: arrivals.start")
        if start % interval:
            raise doc.error(start_node, f"{what}: arrivals.start must begin an interval")
        first = int(start // interval)
        items = doc.sequence(fields["calls"][1], f"{what}: arrivals.calls")
        if first + len(items) > intervals:
            raise doc.error(
                items[intervals - first] if len(items) > intervals - first else node,
                f"{what}: arrivals.calls runs past the end of the day "
                f"({intervals - first} intervals from {format_clock(start)})",
            )
        calls = [0.0] * intervals
        for offset, item in enumerate(items):
            calls[first + offset] = self.finite(item, f"{what}: arrivals.calls[{offset}]")
        return tuple(calls)

    def distribution(self, node: Node, what: str) -> Distribution:
        doc = self.doc
        fields = doc.mapping(node, what)
        doc.check_keys(fields, {"distribution", "mean", "sd"}, {"distribution", "mean"}, node)
        kind_node = fields["distribution"][1]
        kind = doc.text(kind_node, f"{what}.distribution")
        if kind not in DISTRIBUTIONS:
            raise doc.error(kind_node, f"{what}.distribution must be one of {DISTRIBUTIONS}")
        mean = self.positive(fields["mean"][1], f"{what}.mean")
        if kind == "lognormal":
            if "sd" not in fields:
                raise doc.error(node, f"{what}: a lognormal distribution needs sd")
            return Distribution(kind, mean, self.positive(fields["sd"][1], f"{what}.sd"))
        if "sd" in fields:
            raise doc.error(fields["sd"][0], f"{what}: sd applies to lognormal only")
        return Distribution(kind, mean)

    def shift(self, node: Node, what: str) -> Shift:
        doc = self.doc
        fields = doc.mapping(node, what)
        keys = {"start", "end", "operators"}
        doc.check_keys(fields, keys, keys, node)
        start = self.clock(fields["start"][1], f"{what}.start")
        end_node = fields["end"][1]
        end = self.clock(end_node, f"{what}.end")
        if end <= start:
            raise doc.error(end_node, f"{what}.end must be after its start")
        operators = doc.integer(fields["operators"][1], f"{what}.operators", low=0, high=100_000)
        return Shift(start, end, operators)

    # -- scalars ------------------------------------------------------------------------

    def clock(self, node: Node, what: str) -> float:
        """ "HH:MM" from 00:00 to 24:00, read from the source text (YAML 1.1 would read 12:00
        as the base-60 number 720)."""
        text = str(node.value) if isinstance(node, ScalarNode) else ""
        match = _TIME.fullmatch(text.strip())
        if not match:
            raise self.doc.error(node, f'{what} must be a time of day such as "08:30"')
        hours, minutes = int(match[1]), int(match[2])
        if minutes > 59 or hours * 60 + minutes > 1440:
            raise self.doc.error(node, f"{what}: {text} is not a time between 00:00 and 24:00")
        return (hours * 60 + minutes) * 60.0

    def positive(self, node: Node, what: str) -> float:
        value = self.finite(node, what)
        if value <= 0:
            raise self.doc.error(node, f"{what} must be greater than 0")
        return value

    def share(self, node: Node, what: str, upper_open: bool = False) -> float:
        value = self.finite(node, what)
        if upper_open and not 0 <= value < 1:
            raise self.doc.error(node, f"{what} must be at least 0 and below 1, got {value:g}")
        if not upper_open and not 0 < value < 1:
            raise self.doc.error(node, f"{what} must be between 0 and 1 (exclusive), got {value:g}")
        return value

    def finite(self, node: Node, what: str) -> float:
        """A finite number, at least 0 (`YamlDoc.number` refuses .nan, .inf and text)."""
        return self.doc.number(node, what)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"
