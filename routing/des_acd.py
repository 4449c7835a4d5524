"""The production ACD (`routing.acd.Acd`) as a `routing.des.SimRouter`: one code path, two clocks.

The simulation's clock is injected into the ACD, so every decision (priority, skill level,
longest idle, wrap-up and its timers) is the one the controller would make. What the DES does
not model is left out deliberately: operators answer at once (no ring time, so no "no answer"
pauses), callers have no phone number (no recall of a place) and no overflow deadline (callers
give up by their own patience instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from routing.acd import Acd
from routing.des import Assignment, SimCaller, SimOperator
from routing.groups import Group
from routing.model import AcdSettings, Offer
from routing.operators import OperatorSpec, OperatorState
from routing.traffic import TrafficPlan

SKILL_LEVEL = 1  # every simulated operator serves its groups at the same level


def groups_for(plan: TrafficPlan) -> dict[str, Group]:
    """ACD groups matching the plan: its wrap-up, and no ring, overflow or widening timers."""
    return {
        traffic.name: Group(
            id=traffic.name,
            name=traffic.name,
            schedule="always",
            wrap_up_seconds=traffic.wrap_up,
            ring_seconds=math.inf,
            max_wait_seconds=math.inf,
            widen_after_seconds=math.inf,
        )
        for traffic in plan.groups
    }


class AcdRouter:
    """Drives an `Acd` from simulation events; every offer is answered at the same instant."""

    def __init__(self, plan: TrafficPlan, settings: AcdSettings | None = None) -> None:
        self._now = 0.0
        self.acd = Acd(groups_for(plan), (), clock=self._clock, settings=settings)
        self._calls: dict[str, str] = {}  # operator id -> call id they are talking to
        self._made: list[Assignment] = []

    def _clock(self) -> float:
        return self._now

    def enqueue(self, caller: SimCaller, now: float) -> None:
        self._now = now
        self._answer(self.acd.enqueue(str(caller.id), caller.group))

    def operator_ready(self, operator: SimOperator, now: float) -> None:
        self._now = now
        if operator.id not in self.acd.operators:
            skills = dict.fromkeys(operator.groups, SKILL_LEVEL)
            self.acd.add_operator(
                OperatorSpec(operator.id, operator.id, f"Local/{operator.id}", skills)
            )
        if self.acd.operator(operator.id).state is OperatorState.WRAP_UP:
            self._answer(self.acd.wrap_up_done(operator.id))
        else:
            self._answer(self.acd.login(operator.id))

    def operator_gone(self, operator_id: str, now: float) -> None:
        self._now = now
        self.acd.logout(operator_id)

    def abandon(self, caller_id: int, now: float) -> None:
        self._now = now
        self._answer(self.acd.abandon(str(caller_id)))

    def call_finished(self, operator_id: str, now: float) -> None:
        self._now = now
        self.acd.end_call(self._calls.pop(operator_id))

    def assign(self, now: float) -> list[Assignment]:
        self._now = now
        events = self.acd.tick()
        if events.no_answer or events.overflows:
            # The groups above have no ring or overflow deadline, so this is an ACD bug.
            raise RuntimeError(f"unexpected ACD timer events in the simulation: {events}")
        self._answer(events.offers)
        made, self._made = self._made, []
        return made

    def _answer(self, offers: Iterable[Offer]) -> None:
        for offer in offers:
            self.acd.answer(offer.call_id)
            self._calls[offer.operator_id] = offer.call_id
            self._made.append(Assignment(int(offer.call_id), offer.operator_id))
