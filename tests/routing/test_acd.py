"""The routing core on a hand-driven clock: who gets which caller, and when."""

from __future__ import annotations

import pytest

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.model import NO_ANSWER, AcdError
from routing.operators import InvalidTransition, OperatorState
from routing.testing import group, op

S = OperatorState


def test_best_level_then_longest_idle(acd: Acd, clock: ManualClock) -> None:
    acd.ready("anna")
    clock.advance(5)
    acd.ready("boris")
    offers = acd.enqueue("c1", "general")
    assert [o.operator_id for o in offers] == ["boris"]  # level 8 beats level 5
    acd2 = Acd({"general": group("general")}, [op("x", general=5), op("y", general=5)], clock=clock)
    acd2.ready("y")
    clock.advance(1)
    acd2.ready("x")
    assert acd2.enqueue("c", "general")[0].operator_id == "y"  # idle longer


def test_priority_then_arrival_order(acd: Acd, clock: ManualClock) -> None:
    for i, priority in enumerate([0, 0, 1, 0]):
        assert acd.enqueue(f"c{i}", "general", priority=priority) == []
        clock.advance(1)
    served = []
    for name in ["anna", "boris", "anna", "boris"]:
        operator = acd.operators[name]
        if operator.state is S.LOGGED_OUT:
            offers = acd.ready(name)
        else:
            acd.answer(operator.call_id or "")
            acd.end_call(operator.call_id or "")
            offers = acd.wrap_up_done(name)
        served.append(offers[0].call_id)
    assert served == ["c2", "c0", "c1", "c3"]


def test_positions_and_waiting_count(acd: Acd) -> None:
    for i in range(3):
        acd.enqueue(f"c{i}", "general")
    acd.enqueue("vip", "general", priority=2)
    assert [acd.position(c) for c in ["vip", "c0", "c1", "c2"]] == [1, 2, 3, 4]
    assert acd.waiting("general") == 4


def test_no_answer_pauses_operator_and_caller_keeps_head(acd: Acd, clock: ManualClock) -> None:
    acd.login("anna")
    acd.enqueue("first", "general")
    clock.advance(1)
    acd.enqueue("second", "general")
    clock.advance(15)
    events = acd.tick()
    assert [(n.operator_id, n.call_id) for n in events.no_answer] == [("anna", "first")]
    anna = acd.operators["anna"]
    assert anna.state is S.PAUSED and anna.pause_reason == NO_ANSWER
    assert acd.position("first") == 1
    assert acd.ready("boris")[0].call_id == "first"


def test_an_answer_in_the_rings_last_instant_is_not_lost_to_the_timer(
    clock: ManualClock,
) -> None:
    """Dial's timeout starts after the offer (the AGI round trip), so its answer hook can
    arrive just past the offer's ring time: the ring timer waits the grace before it gives
    the caller to someone else, and the operator is then talking to them."""
    from routing.model import AcdSettings

    acd = Acd(
        {"general": group("general")},  # ring_seconds 15
        [op("anna", general=5), op("boris", general=8)],
        clock=clock,
        settings=AcdSettings(ring_timer_grace_seconds=3.0),
    )
    acd.ready("anna")
    assert [o.operator_id for o in acd.enqueue("c1", "general")] == ["anna"]
    clock.advance(15.5)  # Dial's 15 s began half a second after the offer
    assert acd.tick().no_answer == []
    acd.answer("c1")
    assert acd.operators["anna"].state is S.TALKING
    assert acd.ready("boris") == []  # nobody else rings for c1

    assert [o.operator_id for o in acd.enqueue("c2", "general")] == ["boris"]
    clock.advance(18)  # past ring time and grace, no hook: Dial's report was lost
    assert [(n.operator_id, n.call_id) for n in acd.tick().no_answer] == [("boris", "c2")]


def test_wrap_up_is_timed(acd: Acd, clock: ManualClock) -> None:
    acd.ready("anna")
    acd.enqueue("c1", "general")
    acd.answer("c1")
    clock.advance(100)
    acd.end_call("c1")
    acd.enqueue("c2", "general")
    assert acd.operators["anna"].state is S.WRAP_UP
    assert acd.next_deadline() == clock.now + 10
    clock.advance(10)
    events = acd.tick()
    assert [o.call_id for o in events.offers] == ["c2"]
    assert acd.average_handle_time("general") == 110


def test_widening_to_secondary_skills_only_after_the_wait(acd: Acd, clock: ManualClock) -> None:
    acd.login("vera", paused_reason="обед")  # tech1 is staffed, just not free
    acd.ready("gleb")  # tech2 only
    assert acd.enqueue("c1", "tech1") == []
    clock.advance(59)
    assert acd.tick().offers == []
    clock.advance(1)
    offers = acd.tick().offers
    assert [(o.call_id, o.operator_id) for o in offers] == [("c1", "gleb")]


def test_a_group_nobody_of_its_own_is_logged_in_to_widens_at_once(acd: Acd) -> None:
    """tech1's only operator is logged out: there is no one to wait for, so its caller goes
    to tech2 (its widen_to) at once, and the group is not "nobody logged in" for the menus."""
    acd.ready("gleb")  # tech2 only
    assert acd.overflow_reason("tech1") is None
    offers = acd.enqueue("c1", "tech1")
    assert [(o.call_id, o.operator_id) for o in offers] == [("c1", "gleb")]
    acd.abandon("c1")
    acd.logout("gleb")
    assert acd.overflow_reason("tech1") == "nobody_logged_in"


def test_widened_operator_takes_waiting_caller_when_ready(acd: Acd, clock: ManualClock) -> None:
    acd.enqueue("c1", "tech1")
    clock.advance(61)
    acd.tick()
    assert acd.ready("gleb")[0].call_id == "c1"


def test_primary_operator_preferred_over_widened(acd: Acd, clock: ManualClock) -> None:
    acd.ready("gleb")
    clock.advance(1)
    acd.ready("vera")
    acd.pause("vera", "обед")
    acd.enqueue("c1", "tech1")
    clock.advance(30)
    assert acd.ready("vera")[0].call_id == "c1"


def test_recall_within_window_gets_old_place(acd: Acd, clock: ManualClock) -> None:
    acd.enqueue("a", "general", number="+79990000001")
    clock.advance(1)
    acd.enqueue("b", "general", number="+79990000002")
    clock.advance(1)
    acd.abandon("a")
    clock.advance(60)
    acd.enqueue("a2", "general", number="+79990000001")
    assert acd.position("a2") == 1
    assert acd.stats["general"].abandoned == 1


def test_recall_after_window_goes_to_the_back(clock: ManualClock) -> None:
    from routing.model import AcdSettings

    acd = Acd(
        {"general": group("general")},
        [op("x", general=1)],
        clock=clock,
        settings=AcdSettings(recall_window_seconds=30),
    )
    acd.enqueue("a", "general", number="+7999")
    acd.enqueue("b", "general", number="+7888")
    acd.abandon("a")
    clock.advance(31)
    acd.enqueue("a2", "general", number="+7999")
    assert acd.position("a2") == 2


def test_abandon_while_ringing_frees_operator(acd: Acd) -> None:
    acd.ready("anna")
    acd.enqueue("a", "general")
    acd.enqueue("b", "general")
    offers = acd.abandon("a")
    assert [(o.call_id, o.operator_id) for o in offers] == [("b", "anna")]


def test_escalation_keeps_data_history_and_place(acd: Acd, clock: ManualClock) -> None:
    acd.ready("vera")
    acd.enqueue("c1", "tech1", data={"application": "123"}, history=["ivr:3"])
    acd.answer("c1")
    clock.advance(5)
    acd.enqueue("later", "tech2")
    clock.advance(60)
    offers = acd.escalate("c1", "tech2", note="нужен специалист")
    assert offers == []
    caller = acd.callers["c1"]
    assert caller.data == {"application": "123"}
    assert caller.history == ["ivr:3", "tech1:vera->tech2 нужен специалист"]
    assert acd.position("c1") == 1  # ahead of the caller who came later
    assert acd.operators["vera"].state is S.WRAP_UP
    assert acd.ready("gleb")[0].call_id == "c1"


def test_unregistered_phone_is_never_offered(acd: Acd) -> None:
    acd.ready("boris")
    acd.set_device_available("boris", False)
    acd.ready("anna")
    assert acd.enqueue("c1", "general")[0].operator_id == "anna"
    assert acd.enqueue("c2", "general") == []
    assert acd.set_device_available("boris", True)[0].call_id == "c2"


def test_overflow_triggers(acd: Acd, clock: ManualClock) -> None:
    assert acd.overflow_reason("general") == "nobody_logged_in"
    acd.login("anna", paused_reason="обучение")
    assert acd.overflow_reason("general") is None
    closed = Acd(
        {"general": group("general")},
        [op("x", general=1)],
        clock=clock,
        is_open=lambda g, now: False,
    )
    assert closed.overflow_reason("general") == "closed"
    acd.enqueue("c1", "tech1")
    clock.advance(300)
    overflows = acd.tick().overflows
    assert [(o.call_id, o.reason, o.overflow_group) for o in overflows] == [
        ("c1", "max_wait", "general")
    ]
    assert acd.waiting("tech1") == 0
    acd.ready("boris")
    assert acd.requeue("c1", "general")[0].operator_id == "boris"


def test_expected_wait_from_handle_times_and_staff(acd: Acd, clock: ManualClock) -> None:
    assert acd.expected_wait("general") is None  # nobody staffed
    acd.ready("anna")
    assert acd.expected_wait("general") == 0.0
    acd.enqueue("c1", "general")
    acd.answer("c1")
    clock.advance(50)
    acd.end_call("c1")  # handle time 50 + 10 wrap-up
    acd.ready("boris")
    acd.enqueue("c2", "general")
    acd.answer("c2")
    for i in range(3):
        acd.enqueue(f"w{i}", "general")
    # 3 waiting, a new caller needs the 4th free slot; 2 staffed, AHT 60 -> 4 * 60 / 2
    assert acd.expected_wait("general") == 120.0
    assert acd.expected_wait("general", position=1) == 30.0


def test_invalid_transitions_are_refused(acd: Acd) -> None:
    with pytest.raises(InvalidTransition) as refused:
        acd.logout("anna")
    assert "войдите" in refused.value.message_ru
    acd.ready("anna")
    acd.enqueue("c1", "general")
    acd.answer("c1")
    with pytest.raises(InvalidTransition):
        acd.logout("anna")
    with pytest.raises(AcdError):
        acd.answer("c1")
    with pytest.raises(AcdError):
        acd.enqueue("x", "no-such-group")


def test_service_level_and_asa(acd: Acd, clock: ManualClock) -> None:
    acd.enqueue("fast", "general")
    acd.enqueue("slow", "general")
    clock.advance(10)
    acd.ready("anna")
    acd.answer("fast")
    clock.advance(20)
    acd.ready("boris")
    acd.answer("slow")
    stats = acd.stats["general"]
    assert (stats.answered, stats.answered_within_sl, stats.answer_wait_total) == (2, 1, 40.0)


def test_random_day_keeps_invariants(clock: ManualClock) -> None:
    import random

    rng = random.Random(7)
    groups = {g: group(g, widen_to=("g0",) if g != "g0" else ()) for g in ["g0", "g1", "g2"]}
    specs = [op(f"o{i}", **{f"g{i % 3}": rng.randint(1, 9), "g0": 1}) for i in range(9)]
    acd = Acd(groups, specs, clock=clock)
    for s in specs:
        acd.ready(s.id)
    calls = 0
    for _ in range(3000):
        clock.advance(rng.random() * 3)
        action = rng.random()
        if action < 0.3:
            calls += 1
            acd.enqueue(f"c{calls}", rng.choice(list(groups)), number=str(rng.randint(1, 40)))
        elif action < 0.5:
            ringing = [c for c in acd.callers.values() if c.state == "ringing"]
            if ringing:
                acd.answer(rng.choice(ringing).call_id)
        elif action < 0.7:
            talking = [c for c in acd.callers.values() if c.state == "talking"]
            if talking:
                acd.end_call(rng.choice(talking).call_id)
        elif action < 0.8:
            waiting = [c for c in acd.callers.values() if c.state in ("waiting", "ringing")]
            if waiting:
                acd.abandon(rng.choice(waiting).call_id)
        else:
            for name in [o.id for o in acd.operators.values() if o.state is S.PAUSED]:
                acd.ready(name)
        acd.tick()
        busy = [o.call_id for o in acd.operators.values() if o.state in (S.RINGING, S.TALKING)]
        assert len(busy) == len(set(busy))
        for caller in acd.callers.values():
            if caller.state in ("ringing", "talking"):
                assert acd.operators[caller.operator or ""].call_id == caller.call_id
        for gid in groups:
            assert acd.waiting(gid) == sum(
                1 for c in acd.callers.values() if c.group == gid and c.state == "waiting"
            )
            # never a waiting caller beside a free primary operator
            assert not (acd.waiting(gid) and acd.select.ready_count(gid))
