"""``set``: variables, with ``${other}`` expanded."""

from __future__ import annotations


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
