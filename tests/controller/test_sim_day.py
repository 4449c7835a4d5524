"""The live day's plan (calls, duty roster, softphones) and the figures the simulator measures.

The run against a real controller is tests/routing/test_live_day.py.
"""

from __future__ import annotations

import pytest

from controller.simdrive.day import parse_window, plan_live_day
from controller.simdrive.kpis import KpiObserver
from pbxsim.runner import CallOutcome
from routing.operators import OperatorSpec
from routing.traffic import load_traffic

TRAFFIC = """
interval_minutes: 60
groups:
  general:
    handle_time: {distribution: fixed, mean: 120}
    wrap_up: 10
    patience: {distribution: fixed, mean: 90}
    arrivals: {start: "08:00", calls: [30, 30, 30]}
    shifts:
      - {start: "08:00", end: "10:00", operators: 2}
      - {start: "09:00", end: "11:00", operators: 2}
  payments:
    handle_time: {distribution: exponential, mean: 200}
    wrap_up: 10
    arrivals: {start: "08:00", calls: [10, 10, 10]}
    shifts:
      - {start: "08:00", end: "11:00", operators: 3}
  tech2:
    handle_time: {distribution: fixed, mean: 300}
    wrap_up: 10
    arrivals: {start: "08:00", calls: [5, 5, 5]}
    shifts: []
"""

OPERATORS = {
    "anna": OperatorSpec("anna", "Анна", "PJSIP/1001", {"general": 9, "payments": 2}),
    "boris": OperatorSpec("boris", "Борис", "PJSIP/1002", {"general": 7}),
    "vera": OperatorSpec("vera", "Вера", "PJSIP/1003", {"general": 5}),
    "gleb": OperatorSpec("gleb", "Глеб", "PJSIP/1004", {"payments": 8}),
}
ROUTES = {"general": ("88001000001", "0"), "payments": ("88001000001", "50")}
NINE_TO_ELEVEN = (9 * 3600.0, 11 * 3600.0)


def plan(seed: int = 1, window: tuple[float, float] = NINE_TO_ELEVEN):  # type: ignore[no-untyped-def]
    traffic = load_traffic("traffic.yaml", TRAFFIC)
    return plan_live_day(traffic, ROUTES, OPERATORS, window=window, seed=seed)


def test_calls_of_the_window_reach_their_group_through_its_route() -> None:
    day = plan()
    assert day.span == 7200
    assert 50 < len(day.calls) < 110  # Poisson around 80 in the two hours
    assert all(0 <= call.start < 7200 for call in day.calls)
    assert [c.start for c in day.calls] == sorted(c.start for c in day.calls)
    for call, group in zip(day.calls, day.group_of_call, strict=True):
        assert (call.number, call.menu_keys) == ROUTES[group]
        assert call.hangup_after == (90 if group == "general" else None)  # fixed patience
    assert len({c.caller_id for c in day.calls}) == len(day.calls)  # nobody "seen before"
    assert "no menu leads to group 'tech2': its calls are left out" in day.warnings


def test_the_same_seed_gives_the_same_day() -> None:
    assert plan(seed=7).calls == plan(seed=7).calls
    assert plan(seed=7).calls != plan(seed=8).calls


def test_shifts_are_filled_best_skill_first_and_never_twice() -> None:
    day = plan()
    on = {(d.operator_id, d.group, d.start, d.end) for d in day.duties}
    # 08-10 shift (clipped to 09-10): the two best at general; 09-11: the one left (vera)
    assert ("anna", "general", 0.0, 3600.0) in on and ("boris", "general", 0.0, 3600.0) in on
    assert ("vera", "general", 0.0, 7200.0) in on
    # payments 08-11 wants 3: gleb (8); anna is busy on general until 10:00, nobody else
    assert ("gleb", "payments", 0.0, 7200.0) in on
    assert len(on) == 4
    assert any("'general' 09:00-11:00: 2 operators planned, 1" in w for w in day.warnings)
    assert any("'payments' 08:00-11:00: 3 operators planned, 1" in w for w in day.warnings)
    assert set(day.softphones) == {"PJSIP/1001", "PJSIP/1002", "PJSIP/1003", "PJSIP/1004"}
    assert day.softphones["PJSIP/1001"].next_talk_time() == 120  # general: fixed 120 s


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9-10", "not a time of day"),
        ("09:00", "expected HH:MM-HH:MM"),
        ("10:00-09:00", "must end after"),
        ("09:60-10:00", "not a time of day"),
    ],
)
def test_bad_windows_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_window(text)
    assert parse_window("09:00-11:30") == (32400.0, 41400.0)


def _call(uid: str, *, hung_up: bool, group: int = 0) -> CallOutcome:
    return CallOutcome(
        index=0,
        group=group,
        number="88001000001",
        caller_id="79000000000",
        uniqueid=uid,
        channel="PJSIP/carrier",
        agi_status="SUCCESS",
        connected=True,
        ended_by="caller" if hung_up else "controller",
        caller_hung_up=hung_up,
        commands=1,
        prompts=(),
        digits="",
        digits_discarded="",
        duration=1.0,
    )


def test_the_observer_counts_what_the_events_show() -> None:
    now = [0.0]
    seen = KpiObserver(lambda: now[0])

    def at(t: float, event: str, **headers: str) -> None:
        now[0] = t
        seen.emit(event, list(headers.items()))

    at(1, "MusicOnHoldStart", Uniqueid="a", Class="default")  # answered after 10 s
    at(2, "MusicOnHoldStart", Uniqueid="b", Class="default")  # gives up
    at(3, "QueueCallerJoin", Uniqueid="c")  # answered after 30 s (Asterisk's queue)
    at(4, "MusicOnHoldStart", Uniqueid="d", Class="default")  # overflowed
    at(9, "DialBegin", Uniqueid="a", DestChannel="PJSIP/1001-0001", DestUniqueid="o1")
    at(11, "DialEnd", Uniqueid="a", DialStatus="ANSWER")
    at(11, "MusicOnHoldStart", Uniqueid="a", Class="default")  # later hold: joined stays 1
    at(31, "Hangup", Uniqueid="o1")  # the phone was busy 22 s
    at(33, "DialEnd", Uniqueid="c", DialStatus="ANSWER")
    at(34, "DialEnd", Uniqueid="e", DialStatus="ANSWER")  # never queued: not offered
    calls = tuple(_call(uid, hung_up=uid == "b") for uid in ("a", "b", "c", "d", "e", "f"))

    figures = seen.summary(calls, staffed_seconds=100.0, group_of={"a": "general"})

    assert (figures["offered"], figures["answered"]) == (4, 2)
    assert (figures["abandoned"], figures["overflowed"]) == (1, 1)
    assert (figures["left_in_menu"], figures["never_queued"]) == (0, 2)  # e and f
    assert figures["asa"] == 20.0 and figures["service_level"] == 0.5
    assert figures["occupancy"] == 0.22
    assert figures["groups"] == {
        "general": {
            "offered": 1,
            "answered": 1,
            "abandoned": 0,
            "overflowed": 0,
            "asa": 10.0,
            "service_level": 1.0,
        }
    }
