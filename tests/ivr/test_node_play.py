"""``play``: prompts in order; a barge-in key stops them and becomes the next menu's choice."""

from __future__ import annotations

PLAY_THEN_MENU = """\
  a: {kind: play, prompts: [hotline/one, hotline/two], barge_in: "12", next: m}
  m:
    kind: menu
    prompts: [hotline/menu]
    options: {"1": q1, "2": q2}
    fallback: q1
  q1: {kind: queue, group: first}
  q2: {kind: queue, group: second}
"""


async def test_prompts_play_in_order_then_the_next_node(run_menu, path_of) -> None:
    result, channel = await run_menu(PLAY_THEN_MENU, ["2"])
    assert channel.played == ["hotline/one", "hotline/two", "hotline/menu"]
    assert str(result.end) == "queue second"


async def test_a_barge_in_key_stops_the_prompts_and_chooses_in_the_menu(run_menu) -> None:
    result, channel = await run_menu(PLAY_THEN_MENU, [], barge={"hotline/one": "2"})
    # the second prompt and the menu's own prompt are skipped: the caller already chose
    assert channel.played == ["hotline/one"]
    assert str(result.end) == "queue second"


async def test_a_key_that_is_not_a_barge_in_key_does_not_stop_the_prompt(run_menu) -> None:
    result, channel = await run_menu(PLAY_THEN_MENU, ["1"], barge={"hotline/one": "7"})
    assert channel.played == ["hotline/one", "hotline/two", "hotline/menu"]
    assert str(result.end) == "queue first"
