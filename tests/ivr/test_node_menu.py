"""``menu``: one key chooses; no key or wrong keys are retried, then the fallback."""

from __future__ import annotations

MENU = """\
  a:
    kind: menu
    prompts: [hotline/menu]
    options: {"1": q1, "0": q0}
    retries: 3
    invalid: hotline/wrong
    no_input: hotline/nothing
    fallback: q0
  q1: {kind: queue, group: one}
  q0: {kind: queue, group: operator}
"""


async def test_a_listed_key_goes_to_its_node(run_menu, path_of) -> None:
    result, _ = await run_menu(MENU, ["1"])
    assert str(result.end) == "queue one"
    assert path_of(result, "input") == ["input 1"]


async def test_wrong_keys_are_retried_then_the_right_one_counts(run_menu, path_of) -> None:
    result, channel = await run_menu(MENU, ["7", "", "1"])
    assert str(result.end) == "queue one"
    assert path_of(result, "invalid", "timeout") == ["invalid 7", "timeout"]
    assert channel.played.count("hotline/wrong") == 1
    assert channel.played.count("hotline/nothing") == 1


async def test_a_silent_caller_reaches_the_fallback_after_the_retries(run_menu, path_of) -> None:
    result, channel = await run_menu(MENU, [])
    assert str(result.end) == "queue operator"
    assert path_of(result, "timeout", "fallback") == ["timeout"] * 3 + ["fallback q0"]
    assert channel.played.count("hotline/menu") == 3


async def test_only_wrong_keys_also_reach_the_fallback(run_menu) -> None:
    result, channel = await run_menu(MENU, ["9", "9", "9", "1"])
    assert str(result.end) == "queue operator"
    assert channel.played.count("hotline/wrong") == 3
