"""``rating``: 1-5 after the operator; anything else is retried, then no rating."""

from __future__ import annotations

RATE = """\
  a: {kind: queue, group: general, then_rating: r}
  r:
    kind: rating
    prompts: [hotline/rating-request]
    thanks: [hotline/rating-thanks]
    retries: 2
    next: bye
  bye: {kind: hangup}
"""


async def test_a_mark_is_kept_and_thanked(run_menu) -> None:
    result, channel = await run_menu(RATE, ["4"])
    assert result.variables["rating"] == "4"
    assert channel.variables["HOTLINE_RATING"] == "4"
    assert channel.played[-1] == "hotline/rating-thanks"


async def test_out_of_range_keys_then_silence_give_no_rating(run_menu, path_of) -> None:
    result, channel = await run_menu(RATE, ["9", ""])
    assert "rating" not in result.variables and "HOTLINE_RATING" not in channel.variables
    assert path_of(result, "rating", "invalid", "timeout") == [
        "invalid 9",
        "timeout",
        "rating none",
    ]
    assert str(result.end) == "hangup" and result.outcome == "answered"


async def test_a_caller_who_hangs_up_after_the_operator_is_still_answered(run_menu) -> None:
    from ivr.menu.console import ConsoleChannel

    class GoneAfterQueue(ConsoleChannel):
        async def stream_file(self, name: str, escape_digits: str = ""):
            self.hung_up = True  # the caller left with the operator
            return await super().stream_file(name, escape_digits)

    from datetime import UTC, datetime

    from ivr.menu.console import ScriptedKeypad
    from ivr.menu.engine import Engine
    from ivr.menu.loader import parse_menu
    from ivr.menu.model import Services

    menu = parse_menu('number: "1"\ngroup: g\nstart: a\nnodes:\n' + RATE, "x.yaml")
    result = await Engine().run(
        GoneAfterQueue(ScriptedKeypad([])), menu, Services(), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert result.end.kind == "caller_hangup" and result.outcome == "answered"
