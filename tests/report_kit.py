"""A hand-made day of calls played through `reporting.facts.CallFacts` with a hand clock, for
the KPI, CLI and web tests. Times are the hotline's (Moscow, UTC+3). The figures the tests
expect are worked out by hand in the tests themselves, from this script.

2026-12-01:
  A 10:00 caller ...01, line 88001000001: queued 10:00:30 in general, op1 rings 10:00:35,
    answers 10:00:40 (wait 10 s), talks to 10:05:40 (300 s), call ends 10:06:00, wrap-up
    to 10:06:40 (60 s, after the call's end); contact 202600000017 resolved (flag yes),
    rating 5.
  B 11:00 caller ...02: queued 11:00:20, op2 rings 11:00:25, the caller hangs up 11:00:30
    while it rings (abandoned, wait 10 s).
  C 12:00 caller ...03, line 88002000002: queued 12:00:10 in general, op1 answers 12:00:40
    (wait 30 s), talks 120 s, transfers to tech at 12:02:40 (op1 wrap-up 30 s), op2 rings
    12:03:00, answers 12:03:05, talks 60 s, wrap-up 12:04:05-12:04:25 (20 s, after the end
    at 12:04:10); contact flagged not resolved; rating 4.
  D 13:00 caller ...04: queued 13:00:05, overflow (max wait) at 13:02:05, callback booked,
    ends 13:02:30.
  E 14:00 caller ...05: the menu only (self-service), ends 14:01:00.
  G 23:59:50 caller ...07: queued 23:59:55, op2 rings 23:59:58, answers 00:00:05 (wait
    10 s, on 2 December), talks 600 s, wrap-up 00:10:05-00:10:20 (15 s), ends 00:10:10.
2026-12-03:
  F 09:00 caller ...01 again (A's caller, within 7 days): self-service. A repeat; A's
    first-contact resolution no longer counts.
op1 is ready 09:00-18:00 on 1 December (logged out at 18:00).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from reporting.facts import CallFacts, MenuEnd

MSK = timezone(timedelta(hours=3))


def at(text: str) -> float:
    """A Moscow time as the wall clock's seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=MSK).timestamp()


class HandClock:
    def __init__(self) -> None:
        self.now = at("2026-12-01 08:00:00")

    def __call__(self) -> float:
        return self.now


class Day:
    """Plays the script; `until` stops before a call (F is played by `repeat_call`)."""

    def __init__(self, facts: CallFacts, clock: HandClock) -> None:
        self.facts = facts
        self.clock = clock

    def _at(self, text: str, action: Callable[[], object]) -> None:
        self.clock.now = at(text)
        action()

    async def _end(
        self, call: str, line: str, caller: str, start: str, end: str, **kw: object
    ) -> None:
        self.clock.now = at(end)
        started = datetime.fromtimestamp(at(start), UTC)
        ended = datetime.fromtimestamp(at(end), UTC)
        menu_end = MenuEnd(call, line, caller, started, ended, **kw)  # type: ignore[arg-type]
        await self.facts.call_finished(menu_end)

    async def play(self, settle: bool = True) -> None:
        """The 1 December script; `settle`: wait until every write is committed."""
        f, d = self.facts, "2026-12-01 "
        self._at(d + "09:00:00", lambda: f.operator_moved("op1", "ready", None))
        self._at(d + "10:30:00", lambda: f.operator_moved("op2", "ready", None))
        # A
        self._at(d + "10:00:30", lambda: f.queued("A", "general"))
        self._at(d + "10:00:35", lambda: f.offered("A", "op1", "general"))
        self._at(d + "10:00:35", lambda: f.operator_moved("op1", "ringing", "A"))
        self._at(d + "10:00:40", lambda: f.answered("A"))
        self._at(d + "10:00:40", lambda: f.operator_moved("op1", "talking", "A"))
        self._at(d + "10:00:41", lambda: f.contact_changed("A", contact_number="202600000017"))
        self._at(d + "10:05:40", lambda: f.operator_moved("op1", "wrap_up", "A"))
        self._at(d + "10:05:40", lambda: f.left_queue("A", "answered"))
        self._at(d + "10:05:50", lambda: f.rated("A", 5))
        await self._end(
            "A",
            "88001000001",
            "79990000001",
            d + "10:00:00",
            d + "10:06:00",
            outcome="answered",
            path=("start", "main", "queue"),
            exit="queue general",
            topic="регистрация",
            group="general",
        )
        self._at(d + "10:06:30", lambda: f.contact_changed("A", fcr_operator=True))
        self._at(d + "10:06:40", lambda: f.operator_moved("op1", "ready", None))
        # B
        self._at(d + "11:00:20", lambda: f.queued("B", "general"))
        self._at(d + "11:00:25", lambda: f.offered("B", "op2", "general"))
        self._at(d + "11:00:25", lambda: f.operator_moved("op2", "ringing", "B"))
        self._at(d + "11:00:30", lambda: f.left_queue("B", "caller_gone"))
        self._at(d + "11:00:30", lambda: f.operator_moved("op2", "ready", None))
        await self._end(
            "B",
            "88001000001",
            "79990000002",
            d + "11:00:00",
            d + "11:00:30",
            outcome="hangup",
            path=("start", "queue"),
            exit="caller_hangup",
            group="general",
        )
        # C, transferred
        self._at(d + "12:00:10", lambda: f.queued("C", "general"))
        self._at(d + "12:00:35", lambda: f.offered("C", "op1", "general"))
        self._at(d + "12:00:35", lambda: f.operator_moved("op1", "ringing", "C"))
        self._at(d + "12:00:40", lambda: f.answered("C"))
        self._at(d + "12:00:40", lambda: f.operator_moved("op1", "talking", "C"))
        self._at(d + "12:02:40", lambda: f.operator_moved("op1", "wrap_up", "C"))
        self._at(d + "12:03:00", lambda: f.offered("C", "op2", "tech"))
        self._at(d + "12:03:00", lambda: f.operator_moved("op2", "ringing", "C"))
        self._at(d + "12:03:05", lambda: f.answered("C"))
        self._at(d + "12:03:05", lambda: f.operator_moved("op2", "talking", "C"))
        self._at(d + "12:03:10", lambda: f.operator_moved("op1", "ready", None))
        self._at(d + "12:04:05", lambda: f.operator_moved("op2", "wrap_up", "C"))
        self._at(d + "12:04:05", lambda: f.left_queue("C", "answered"))
        self._at(d + "12:04:06", lambda: f.rated("C", 4))
        await self._end(
            "C",
            "88002000002",
            "79990000003",
            d + "12:00:00",
            d + "12:04:10",
            outcome="answered",
            path=("start", "queue"),
            exit="queue general",
            group="general",
        )
        self._at(d + "12:04:20", lambda: f.contact_changed("C", fcr_operator=False))
        self._at(d + "12:04:25", lambda: f.operator_moved("op2", "ready", None))
        # D: overflow, then a callback
        self._at(d + "13:00:05", lambda: f.queued("D", "general"))
        self._at(d + "13:02:05", lambda: f.left_queue("D", "overflow", "max_wait"))
        self._at(d + "13:02:20", lambda: f.callback_booked("D"))
        await self._end(
            "D",
            "88001000001",
            "79990000004",
            d + "13:00:00",
            d + "13:02:30",
            outcome="timeout",
            path=("start", "queue", "callback"),
            exit="hangup",
            group="general",
        )
        # E: self-service
        await self._end(
            "E",
            "88001000001",
            "79990000005",
            d + "14:00:00",
            d + "14:01:00",
            outcome="hangup",
            path=("start", "status"),
            exit="hangup",
            topic="статус заявления",
        )
        self._at(d + "18:00:00", lambda: f.operator_moved("op1", "logged_out", None))
        # G, across midnight
        self._at(d + "23:59:55", lambda: f.queued("G", "general"))
        self._at(d + "23:59:58", lambda: f.offered("G", "op2", "general"))
        self._at(d + "23:59:58", lambda: f.operator_moved("op2", "ringing", "G"))
        self._at("2026-12-02 00:00:05", lambda: f.answered("G"))
        self._at("2026-12-02 00:00:05", lambda: f.operator_moved("op2", "talking", "G"))
        self._at("2026-12-02 00:10:05", lambda: f.operator_moved("op2", "wrap_up", "G"))
        self._at("2026-12-02 00:10:05", lambda: f.left_queue("G", "answered"))
        await self._end(
            "G",
            "88001000001",
            "79990000007",
            d + "23:59:50",
            "2026-12-02 00:10:10",
            outcome="answered",
            path=("start", "queue"),
            exit="queue general",
            group="general",
        )
        self._at("2026-12-02 00:10:20", lambda: f.operator_moved("op2", "ready", None))
        self._at("2026-12-02 00:30:00", lambda: f.operator_moved("op2", "logged_out", None))
        if settle:
            await f.idle()

    async def repeat_call(self, settle: bool = True) -> None:
        """F: A's caller again on 3 December."""
        await self._end(
            "F",
            "88001000001",
            "+7 999 000-00-01",
            "2026-12-03 09:00:00",
            "2026-12-03 09:02:00",
            outcome="hangup",
            path=("start", "status"),
            exit="hangup",
        )
        if settle:
            await self.facts.idle()
