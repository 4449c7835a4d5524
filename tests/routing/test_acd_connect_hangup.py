"""A caller who hangs up during the conversation was answered: the menu and the call log must
say so (the live loaded hour found such calls logged as "hangup" while the ACD counted them
answered)."""

from __future__ import annotations

from hotline.clock import ManualClock
from routing.connect import connect_call, operator_answered
from routing.operators import OperatorState
from tests.routing.test_acd_connect import HungUp, ScriptedChannel, make_node


class HangsUpMidConversation(ScriptedChannel):
    """Dial is answered (the U() hook runs), then the caller hangs up while talking."""

    async def exec(self, application: str, *options: str) -> int:
        self.commands.append((application, *options))
        if application == "Dial":
            self.clock.advance(3)
            await operator_answered(self.node, self.call_id)
            self.clock.advance(40)
            raise HungUp
        return 0


async def test_hang_up_in_conversation_is_an_answered_call() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna")
    channel = HangsUpMidConversation(node, [], clock)
    result = await connect_call(channel, node, "general", hung_up=HungUp)
    assert (result.outcome, result.operator_id) == ("answered", "anna")
    stats = node.acd.stats["general"]
    assert (stats.offered, stats.answered, stats.abandoned) == (1, 1, 0)
    assert node.acd.operators["anna"].state is OperatorState.WRAP_UP
    assert channel.call_id not in node.acd.callers
