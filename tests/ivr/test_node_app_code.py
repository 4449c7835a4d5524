"""``app_code``: the code from the mobile app gives the menu the application number; any
other entry goes on exactly like no code."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ivr.menu.model import MenuError

NODES = """\
  a:
    kind: app_code
    prompts: [hotline/enter-app-code]
    next: known
    otherwise: ask
  known: {kind: queue, group: status, data: [application]}
  ask: {kind: queue, group: general}
"""


@dataclass
class Codes:
    """The intents port: one live code for one phone, spent on use."""

    live: dict[tuple[str, str], str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def redeem(self, caller_id: str, code: str) -> str | None:
        self.asked.append((caller_id, code))
        return self.live.pop((caller_id, code), None)


async def test_a_valid_code_sets_the_application_and_skips_asking(run_menu, path_of) -> None:
    codes = Codes({("79161234567", "482913"): "1234567897"})
    result, channel = await run_menu(NODES, ["482913#"], caller_id="79161234567", intents=codes)
    assert result.variables["application"] == "1234567897"
    assert channel.variables["HOTLINE_APPLICATION"] == "1234567897"
    assert str(result.end) == "queue status"
    assert "1234567897" not in " ".join(path_of(result))  # logs never show it


@pytest.mark.parametrize("keyed", ["000000#", "#", "", "12345#", "4829130"])
async def test_anything_else_goes_on_as_usual_and_sounds_the_same(run_menu, path_of, keyed) -> None:
    codes = Codes({("79161234567", "482913"): "1234567897"})
    result, channel = await run_menu(NODES, [keyed], caller_id="79161234567", intents=codes)
    assert "application" not in result.variables and str(result.end) == "queue general"
    assert channel.played == ["hotline/enter-app-code"]  # nothing said about the code
    assert codes.live  # the real code is still there for the real caller


async def test_without_the_port_a_code_is_like_no_code(run_menu) -> None:
    result, _ = await run_menu(NODES, ["482913#"], caller_id="79161234567")
    assert str(result.end) == "queue general"


def test_a_node_without_otherwise_is_refused_at_its_line() -> None:
    from ivr.menu.loader import parse_menu

    text = 'number: "1"\ngroup: g\nstart: a\nnodes:\n  a:\n    kind: app_code\n'
    text += "    prompts: [hotline/enter-app-code]\n    next: b\n  b: {kind: hangup}\n"
    with pytest.raises(MenuError, match=r"x\.yaml:5: node 'a' needs 'otherwise'"):
        parse_menu(text, "x.yaml")
