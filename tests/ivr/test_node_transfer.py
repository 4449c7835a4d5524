"""``transfer``: Dial() the number through the configured channel; the call leaves the menu."""

from __future__ import annotations


async def test_transfer_dials_the_number(run_menu) -> None:
    nodes = '  a: {kind: transfer, number: "112", prompts: [hotline/transfer-operator]}\n'
    result, channel = await run_menu(nodes, transfer_channel="PJSIP/{number}@trunk")
    assert channel.played == ["hotline/transfer-operator"]
    assert channel.applications == [("Dial", ("PJSIP/112@trunk", "60"))]
    assert str(result.end) == "transfer 112"
    assert result.outcome == "transfer answer"
