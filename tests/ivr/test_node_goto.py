"""``goto``: a jump; the engine's step cap stops a caller looping through it forever."""

from __future__ import annotations


async def test_goto_continues_at_its_target(run_menu) -> None:
    nodes = "  a: {kind: goto, to: b}\n  b: {kind: queue, group: there}\n"
    result, _ = await run_menu(nodes)
    assert str(result.end) == "queue there"


# A loop that can only be left by a key: a caller who keeps pressing 1 would go round forever
# without the engine's cap.
LOOP = """\
  a: {kind: goto, to: m}
  m:
    kind: menu
    prompts: [hotline/menu]
    options: {"1": a, "0": q}
    fallback: q
  q: {kind: queue, group: elsewhere}
"""


async def test_the_step_cap_sends_a_looping_call_to_the_operator_group(run_menu, path_of) -> None:
    result, channel = await run_menu(LOOP, ["1"] * 100, max_steps=20)
    assert str(result.end) == "queue general"  # the menu's group of last resort
    assert path_of(result, "step-limit")
    assert ("Queue", ("hotline-general", "tc", "", "", "1800")) in channel.applications


class NobodyAnsweringAcd:
    """An ACD whose operators never answer: every caller's wait ends in a timeout."""

    def __init__(self) -> None:
        self.groups: list[str] = []

    async def connect(
        self, channel: object, group: str, *, number: str, priority: int, data: object
    ) -> str:
        self.groups.append(group)
        return "timeout"


async def test_the_step_cap_records_the_acds_outcome(run_menu) -> None:
    # With the ACD serving the groups, Asterisk's QUEUESTATUS says nothing of the wait.
    acd = NobodyAnsweringAcd()
    result, channel = await run_menu(LOOP, ["1"] * 100, max_steps=20, queue=acd)
    assert acd.groups == ["general"] and channel.applications == []
    assert str(result.end) == "queue general"
    assert result.outcome == "timeout"
    assert result.queued == ("general", "timeout")
