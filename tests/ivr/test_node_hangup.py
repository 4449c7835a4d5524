"""``hangup``: goodbye prompts, then the menu hangs up."""

from __future__ import annotations


async def test_prompts_then_hangup(run_menu) -> None:
    result, channel = await run_menu(
        "  a: {kind: hangup, prompts: [hotline/thank-you, hotline/goodbye]}\n"
    )
    assert channel.played == ["hotline/thank-you", "hotline/goodbye"]
    assert channel.hung_up
    assert str(result.end) == "hangup" and result.outcome == "completed"
