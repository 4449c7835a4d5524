"""``goto``: a jump; the engine's step cap stops a caller looping through it forever."""

from __future__ import annotations


async def test_goto_continues_at_its_target(run_menu) -> None:
    nodes = "  a: {kind: goto, to: b}\n  b: {kind: queue, group: there}\n"
    result, _ = await run_menu(nodes)
    assert str(result.end) == "queue there"


async def test_the_step_cap_sends_a_looping_call_to_the_operator_group(run_menu, path_of) -> None:
    # A loop that can only be left by a key: a caller who keeps pressing 1 would go round
    # forever without the engine's cap.
    nodes = """\
  a: {kind: goto, to: m}
  m:
    kind: menu
    prompts: [hotline/menu]
    options: {"1": a, "0": q}
    fallback: q
  q: {kind: queue, group: elsewhere}
"""
    result, channel = await run_menu(nodes, ["1"] * 100, max_steps=20)
    assert str(result.end) == "queue general"  # the menu's group of last resort
    assert path_of(result, "step-limit")
    assert ("Queue", ("hotline-general", "tc", "", "", "1800")) in channel.applications
