"""The caller's side of one call in time order: key-press tones and hang-ups, and what a wait
on the channel woke up for.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal

from pbxsim.callers import CallerScript

CAUSE_NORMAL: Final = 16


class CallerEventKind(Enum):
    TONE_BEGIN = 1
    TONE_END = 2
    HANGUP = 3


@dataclass(frozen=True, order=True)
class CallerEvent:
    at: float
    seq: int
    kind: CallerEventKind = field(compare=False)
    digit: str = field(compare=False, default="")
    press: int = field(compare=False, default=-1)
    cause: int = field(compare=False, default=CAUSE_NORMAL)
    by_caller: bool = field(compare=False, default=True)


class CallerTimeline:
    """Pending caller events in time order; hang-ups can be added as the call goes."""

    def __init__(self, script: CallerScript) -> None:
        self._heap: list[CallerEvent] = []
        self._seq = 0
        for n, press in enumerate(script.presses):
            self.add(press.begin, CallerEventKind.TONE_BEGIN, digit=press.digit, press=n)
            self.add(press.end, CallerEventKind.TONE_END, digit=press.digit, press=n)
        if script.hangup_at is not None:
            self.add(script.hangup_at, CallerEventKind.HANGUP)

    def add(
        self,
        at: float,
        kind: CallerEventKind,
        *,
        digit: str = "",
        press: int = -1,
        cause: int = CAUSE_NORMAL,
        by_caller: bool = True,
    ) -> CallerEvent:
        self._seq += 1  # ties keep the order things were scheduled in
        event = CallerEvent(at, self._seq, kind, digit, press, cause, by_caller)
        heapq.heappush(self._heap, event)
        return event

    def remove(self, event: CallerEvent) -> None:
        if event in self._heap:
            self._heap.remove(event)
            heapq.heapify(self._heap)

    def peek(self) -> float | None:
        return self._heap[0].at if self._heap else None

    def next_hangup(self) -> float | None:
        return min((e.at for e in self._heap if e.kind is CallerEventKind.HANGUP), default=None)

    def pop_until(self, when: float) -> list[CallerEvent]:
        due = []
        while self._heap and self._heap[0].at <= when:
            due.append(heapq.heappop(self._heap))
        return due

    def clear(self) -> None:
        self._heap.clear()


@dataclass(frozen=True)
class Wake:
    kind: Literal["digit", "timeout", "hangup"]
    at: float
    digit: str = ""

    @property
    def code(self) -> int:
        """What ast_waitstream/ast_waitfordigit return: the digit, 0, or -1."""
        return ord(self.digit) if self.kind == "digit" else (0 if self.kind == "timeout" else -1)


def any_digit(_digit: str) -> bool:
    return True


def no_digit(_digit: str) -> bool:
    return False


def escape_digits(digits: str) -> Callable[[str], bool]:
    return lambda digit: digit in digits
