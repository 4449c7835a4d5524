"""The wallboard's content: one JSON document built from the floor, the targets and the alarms.

Per queue: waiting callers, the longest and the expected wait, operators by state and pause
reason; today's figures (answered, abandoned, ASA, service level, abandon rate) each beside
its target with a verdict; the alarms; and every operator's row (the supervisor's buttons).

"Today": the ACD's counters run since it started; the board keeps their values at the first
build of each local day and shows the difference, so a controller running across midnight
starts the new day at zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from supervision.floor import AlarmSource, Floor, FloorAlarm, OperatorNow, QueueNow
from supervision.targets import FloorTargets, TargetsSource

__all__ = ["STATE_TITLES", "Board", "DayCounters"]

STATE_TITLES: Final = {
    "ready": "готовы",
    "ringing": "вызов",
    "talking": "разговор",
    "wrap_up": "обработка",
    "paused": "пауза",
    "logged_out": "не в линии",
}


@dataclass(frozen=True)
class DayCounters:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within_sl: int = 0
    wait_total: float = 0.0

    @classmethod
    def of(cls, queue: QueueNow) -> DayCounters:
        return cls(
            queue.offered,
            queue.answered,
            queue.abandoned,
            queue.answered_within_sl,
            queue.answer_wait_total,
        )

    def __sub__(self, other: DayCounters) -> DayCounters:
        return DayCounters(
            self.offered - other.offered,
            self.answered - other.answered,
            self.abandoned - other.abandoned,
            self.within_sl - other.within_sl,
            self.wait_total - other.wait_total,
        )

    def __add__(self, other: DayCounters) -> DayCounters:
        return DayCounters(
            self.offered + other.offered,
            self.answered + other.answered,
            self.abandoned + other.abandoned,
            self.within_sl + other.within_sl,
            self.wait_total + other.wait_total,
        )


def _local_day() -> dt.date:
    return dt.datetime.now().astimezone().date()


class Board:
    """Builds the wallboard's document (`build`) from its ports."""

    def __init__(
        self,
        floor: Floor,
        targets: TargetsSource,
        alarms: Iterable[AlarmSource] = (),
        *,
        today: Callable[[], dt.date] = _local_day,
    ) -> None:
        self.floor = floor
        self.targets = targets
        self.alarms = list(alarms)
        self._today = today
        self._day: dt.date | None = None
        self._baseline: dict[str, DayCounters] = {}

    def _since_midnight(self, queue: QueueNow) -> DayCounters:
        now = DayCounters.of(queue)
        start = self._baseline.get(queue.group, DayCounters())
        if now.answered < start.answered or now.offered < start.offered:  # counters restarted
            start = self._baseline[queue.group] = DayCounters()
        return now - start

    def _new_day(self, queues: Sequence[QueueNow]) -> None:
        day = self._today()
        if self._day is None:  # the first build: the ACD's counters are today's
            self._day = day
        elif day != self._day:
            self._day = day
            self._baseline = {q.group: DayCounters.of(q) for q in queues}

    def build(self) -> dict[str, Any]:
        queues = list(self.floor.queues())
        operators = list(self.floor.operators())
        targets = self.targets()
        self._new_day(queues)
        total = DayCounters()
        rows = []
        for queue in queues:
            day = self._since_midnight(queue)
            total = total + day
            members = [op for op in operators if queue.group in op.groups]
            rows.append(_queue_row(queue, day, members, targets))
        alarms = [a for source in self.alarms for a in source()]
        alarms += [
            FloorAlarm("unstaffed", f"Группа «{q.name}» открыта, но в ней никого нет в линии.")
            for q in queues
            if q.open and q.logged_in == 0
        ]
        return {
            "queues": rows,
            "today": _figures(total, targets),
            "alarms": [{"kind": a.kind, "text": a.text} for a in alarms],
            "operators": [_operator_row(op) for op in operators],
            "targets": {
                "asa_seconds": targets.asa_seconds,
                "service_level": targets.service_level,
                "service_level_seconds": targets.service_level_seconds,
                "abandon_rate": targets.abandon_rate,
            },
        }


def _queue_row(
    queue: QueueNow, day: DayCounters, members: list[OperatorNow], targets: FloorTargets
) -> dict[str, Any]:
    states = dict.fromkeys(STATE_TITLES, 0)
    reasons: dict[str, int] = {}
    for op in members:
        states[op.state] = states.get(op.state, 0) + 1
        if op.state == "paused":
            reason = op.pause_reason or "без причины"
            reasons[reason] = reasons.get(reason, 0) + 1
    expected = None if queue.expected_wait is None else round(queue.expected_wait)
    return {
        "group": queue.group,
        "name": queue.name,
        "open": queue.open,
        "waiting": queue.waiting,
        "longest_wait": round(queue.longest_wait),
        "expected_wait": expected,
        "states": states,
        "pause_reasons": dict(sorted(reasons.items())),
        "today": _figures(day, targets),
    }


def _figures(day: DayCounters, targets: FloorTargets) -> dict[str, Any]:
    """Answered, abandoned, ASA, service level and abandon rate, each with its verdict
    (None: no call yet to judge by)."""
    asa = day.wait_total / day.answered if day.answered else None
    level = day.within_sl / day.answered if day.answered else None
    ended = day.answered + day.abandoned
    abandon = day.abandoned / ended if ended else None
    return {
        "offered": day.offered,
        "answered": day.answered,
        "abandoned": day.abandoned,
        "asa": None if asa is None else round(asa, 1),
        "asa_ok": None if asa is None else asa <= targets.asa_seconds,
        "service_level": None if level is None else round(level, 3),
        "service_level_ok": None if level is None else level >= targets.service_level,
        "abandon_rate": None if abandon is None else round(abandon, 3),
        "abandon_rate_ok": None if abandon is None else abandon <= targets.abandon_rate,
    }


def _operator_row(op: OperatorNow) -> dict[str, Any]:
    left = None if op.seconds_left is None else max(0, round(op.seconds_left))
    return {
        "id": op.id,
        "name": op.name,
        "state": op.state,
        "state_title": STATE_TITLES.get(op.state, op.state),
        "pause_reason": op.pause_reason,
        "call_id": op.call_id if op.state == "talking" else None,
        "groups": list(op.groups),
        "seconds_left": left,
    }
