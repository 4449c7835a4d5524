"""The grace window after a restart (issue 10 item 1): a newcomer who reaches the restarted
controller before the callers it held are back gets no operator until they are, or until the
window ends; the callers coming back are served first."""

from __future__ import annotations

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.testing import group, op

RESTART = 5000.0


def restarted(clock: ManualClock, expected: set[str], seconds: float = 15.0) -> Acd:
    acd = Acd({"general": group("general")}, [op("anna", general=9), op("boris", general=5)],
              clock=clock)  # fmt: skip
    acd.grace.begin(seconds, expected)
    acd.ready("anna")
    return acd


def test_a_newcomer_waits_for_the_callers_on_their_way_back() -> None:
    clock = ManualClock(RESTART)
    acd = restarted(clock, {"back-1", "back-2"})
    clock.advance(1)
    assert acd.enqueue("newcomer", "general", number="79160000009") == []  # held
    clock.advance(2)
    offers = acd.enqueue("back-2", "general", place=(1, 0, RESTART - 40))
    assert [(o.call_id, o.operator_id) for o in offers] == [("back-2", "anna")]
    assert acd.ready("boris") == []  # still waiting for back-1
    offers = acd.enqueue("back-1", "general", place=(2, 0, RESTART - 30))
    assert [(o.call_id, o.operator_id) for o in offers] == [("back-1", "boris")]
    acd.answer("back-2")
    acd.end_call("back-2")
    clock.advance(acd.groups["general"].wrap_up_seconds)
    events = acd.tick()  # anna's wrap-up is over: everyone expected is back, the newcomer next
    assert [(o.call_id, o.operator_id) for o in events.offers] == [("newcomer", "anna")]


def test_a_caller_who_never_comes_back_holds_nobody_beyond_the_window() -> None:
    clock = ManualClock(RESTART)
    acd = restarted(clock, {"hung-up-meanwhile"}, seconds=15)
    assert acd.enqueue("newcomer", "general", number="79160000009") == []
    clock.advance(14)
    assert acd.tick().offers == []
    clock.advance(1)
    assert [(o.call_id, o.operator_id) for o in acd.tick().offers] == [("newcomer", "anna")]


def test_the_last_caller_back_ends_the_window_for_everyone() -> None:
    clock = ManualClock(RESTART)
    acd = restarted(clock, {"back"})
    acd.ready("boris")
    assert acd.enqueue("newcomer", "general", number="79160000009") == []
    offers = acd.enqueue("back", "general", place=(1, 0, RESTART - 40))
    assert [o.call_id for o in offers] == ["back"]
    assert [o.call_id for o in acd.tick().offers] == ["newcomer"]  # no need to wait longer


def test_without_callers_to_wait_for_there_is_no_window() -> None:
    clock = ManualClock(RESTART)
    acd = restarted(clock, set())
    assert [o.call_id for o in acd.enqueue("newcomer", "general")] == ["newcomer"]
