"""``set``: variables, with ``${other}`` expanded."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY

MOSCOW = ZoneInfo("Europe/Moscow")
WORKDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=MOSCOW)  # Friday
WORKDAY_EVENING = datetime(2026, 11, 27, 21, 30, tzinfo=MOSCOW)


async def test_values_are_set_and_expanded(run_menu) -> None:
    nodes = """\
  a: {kind: set, values: {topic: "оплата", note: "тема: ${topic}", empty: "${nothing}"}, next: q}
  q: {kind: queue, group: general}
"""
    result, channel = await run_menu(nodes)
    assert result.variables["topic"] == "оплата"
    assert result.variables["note"] == "тема: оплата"
    assert result.variables["empty"] == ""
    # what was set travels to the operator's screen
    assert channel.variables["HOTLINE_TOPIC"] == "оплата"


async def test_expansion_takes_each_reference_and_leaves_what_is_none(run_menu) -> None:
    nodes = """\
  a:
    kind: set
    values:
      one: "1"
      both: "${one}${one}"
      around: "x${one}y${nothing}z"
      odd: "$ ${ ${1bad} ${one"
    next: q
  q: {kind: queue, group: general}
"""
    result, _ = await run_menu(nodes)
    assert result.variables["both"] == "11"
    assert result.variables["around"] == "x1yz"
    assert result.variables["odd"] == "$ ${ ${1bad} ${one"


async def test_the_hours_variables_are_those_of_each_calls_moment(run_menu, hours) -> None:
    # One schedule serves call after call (it keeps its last answer), so each call's
    # opening and closing times must still be those of its own moment.
    nodes = """\
  a: {kind: set, values: {told: "${opens_at} ${opens_date} ${closes_at}"}, next: q}
  q: {kind: queue, group: general}
"""
    schedule = hours()
    noon, _ = await run_menu(nodes, at=WORKDAY_NOON, hours=schedule)
    evening, _ = await run_menu(nodes, at=WORKDAY_EVENING, hours=schedule)
    again, _ = await run_menu(nodes, at=WORKDAY_NOON, hours=schedule)
    assert noon.variables["told"] == (
        "2026-11-27T08:00:00+03:00 2026-11-27 2026-11-27T20:00:00+03:00"
    )
    assert evening.variables["told"] == "2026-11-28T09:00:00+03:00 2026-11-28 "
    assert "closes_at" not in evening.variables
    assert again.variables["told"] == noon.variables["told"]


async def test_every_call_leaving_a_menu_is_counted_by_number_and_end(run_menu) -> None:
    def counted(end: str) -> float:
        labels = {"number": "1000", "end": end}
        return REGISTRY.get_sample_value("hotline_ivr_calls_total", labels) or 0.0

    hangups, queued = counted("hangup"), counted("queue")
    await run_menu("  a: {kind: hangup}\n")
    await run_menu("  a: {kind: queue, group: general}\n")
    await run_menu("  a: {kind: hangup}\n")
    assert (counted("hangup"), counted("queue")) == (hangups + 2, queued + 1)
