"""A repeat caller goes to the operator who owns their contact when that operator is ready,
and to anyone otherwise: the preference never makes them wait."""

from __future__ import annotations

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.selection import PREFERRED_OPERATOR
from routing.testing import group, op


def floor() -> Acd:
    acd = Acd(
        {"general": group("general")},
        [op("anna", general=9), op("boris", general=1)],
        clock=ManualClock(),
    )
    acd.login("anna", paused_reason="перерыв")
    acd.login("boris", paused_reason="перерыв")
    return acd


def test_the_preferred_operator_is_rung_although_another_has_the_better_skill() -> None:
    acd = floor()
    acd.ready("anna")
    acd.ready("boris")
    offers = acd.enqueue("c1", "general", data={PREFERRED_OPERATOR: "boris"})
    assert [o.operator_id for o in offers] == ["boris"]


def test_a_preferred_operator_who_is_busy_costs_no_wait() -> None:
    acd = floor()
    acd.ready("anna")  # boris stays paused
    offers = acd.enqueue("c1", "general", data={PREFERRED_OPERATOR: "boris"})
    assert [o.operator_id for o in offers] == ["anna"]


def test_an_unknown_preferred_operator_is_ignored() -> None:
    acd = floor()
    acd.ready("anna")
    offers = acd.enqueue("c1", "general", data={PREFERRED_OPERATOR: "nobody"})
    assert [o.operator_id for o in offers] == ["anna"]
