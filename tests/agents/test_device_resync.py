"""A controller that connects while phones are already unregistered learns it from
``DeviceStateList`` (the list's items come in the action's reply, not as live events)."""

from __future__ import annotations

import asyncio

from agents.devices import DeviceWatcher
from hotline.ami.client import AmiClient
from hotline.clock import SteppedClock
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from pbxsim.queue_state import DeviceState
from pbxsim.queues import Queues
from routing.testing import group, memory_node, op


async def test_phone_unregistered_before_the_link_came_up_is_never_offered() -> None:
    node = memory_node({"general": group("general")}, [op("anna", general=5)])
    await node.start()
    clock = SteppedClock("1795563209")
    queues = Queues({}, clock)
    queues.devices.seed("PJSIP/anna", DeviceState.UNAVAILABLE)  # before anyone listened
    server = AmiServer(
        clock=clock, users={"hotline": ManagerUser("hotline", "s3cret")}, queues=queues, port=0
    )
    await server.start()
    ami = AmiClient("127.0.0.1", server.port, "hotline", "s3cret", reconnect_min=0.05)
    DeviceWatcher(node, [o.spec for o in node.acd.operators.values()]).attach(ami)
    ami.start()
    try:
        async with asyncio.timeout(5):
            while node.acd.operators["anna"].device_available:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        await node.login("anna")
        assert await node.enqueue("c1", "general") == []  # anna's phone is down
    finally:
        await ami.close()
        await server.close()
        await queues.close()


class _Pbx:
    """An AMI link whose DeviceStateList fails the given way."""

    def __init__(self, failure: Exception) -> None:
        self.failure, self.asked = failure, 0

    async def action(self, name: str) -> None:
        self.asked += 1
        raise self.failure


async def test_a_lost_link_asks_again_at_the_next_login_a_refusal_never() -> None:
    from hotline.ami.errors import AmiActionError, AmiLinkLost
    from hotline.ami.protocol import AmiMessage

    node = memory_node({"general": group("general")}, [op("anna", general=5)])
    watcher = DeviceWatcher(node, [o.spec for o in node.acd.operators.values()])
    lost = _Pbx(AmiLinkLost("AMI link lost"))
    await watcher._resync(lost)  # type: ignore[arg-type]
    await watcher._resync(lost)  # type: ignore[arg-type]
    assert lost.asked == 2
    answer = AmiMessage((("Response", "Error"), ("Message", "Invalid/unknown command")))
    refused = _Pbx(AmiActionError("DeviceStateList", answer))
    await watcher._resync(refused)  # type: ignore[arg-type]
    await watcher._resync(refused)  # type: ignore[arg-type]
    assert refused.asked == 1
