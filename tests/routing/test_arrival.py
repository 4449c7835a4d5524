"""A queued caller's arrival travels on their channel (issue 10 item 1): a caller handed back by
a controller that went away re-enters the next one's queue with their original arrival, ahead
of callers who came later; an arrival that cannot be true is not believed."""

from __future__ import annotations

import asyncio

import pytest

from hotline.agi import carry
from hotline.agi.session import CallerHungUp
from hotline.clock import ManualClock
from routing.acd import Acd
from routing.arrival import ARRIVAL_VARIABLE, carried_arrival, carry_arrival, forget_arrival
from routing.connect import operator_answered
from routing.node import AcdNode
from routing.part import AcdService
from routing.settings import RoutingSettings
from routing.state import InMemoryAcdStore
from routing.testing import group, op

CREATED = 1795564000.0  # the channel's creation, as its uniqueid says


class Channel:
    def __init__(self, call_id: str = f"{CREATED:.0f}.7") -> None:
        self.call_id = call_id
        self.env: dict[str, str] = {"agi_uniqueid": call_id}
        self.variables: dict[str, str] = {}

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value

    def gone(self) -> asyncio.Future[None]:
        """Never done: this caller's hang-up shows at a command, not as an idle notice."""
        return asyncio.get_running_loop().create_future()


def restarted_node(clock: ManualClock) -> AcdNode:
    """The next controller's ACD: nothing of the old one's queue, one operator on a pause."""
    acd = Acd({"general": group("general")}, [op("anna", general=9)], clock=clock)
    return AcdNode(acd, InMemoryAcdStore(), node_id="next")


async def test_a_handed_back_caller_is_answered_before_a_caller_who_came_later() -> None:
    clock = ManualClock(CREATED + 100)
    node = restarted_node(clock)
    await node.login("anna", paused_reason="обед")
    # the newcomer reaches the restarted controller first; the caller who had waited since
    # before the restart re-enters a moment later, their arrival carried on the channel
    await node.enqueue("newcomer", "general", number="79160000002")
    clock.advance(3)
    await node.enqueue("back", "general", number="79160000001", arrived_at=CREATED + 20)
    assert node.acd.position("back") == 1 and node.acd.position("newcomer") == 2
    offers = await node.ready("anna")
    assert [offer.call_id for offer in offers] == ["back"]


async def test_the_arrival_written_is_read_back_by_the_next_controller() -> None:
    channel = Channel()
    await carry_arrival(channel, "general", CREATED + 20)
    now = CREATED + 100
    assert await carried_arrival(channel, "general", now=now, oldest=now - 600) == CREATED + 20
    await forget_arrival(channel)  # done with the queue: the next queue is a new arrival
    assert await carried_arrival(channel, "general", now=now, oldest=now - 600) is None


@pytest.mark.parametrize(
    ("carried", "why"),
    [
        (carry.encode({"group": "general", "at": str(CREATED + 200)}), "in the future"),
        (carry.encode({"group": "general", "at": str(CREATED - 50)}), "before the channel"),
        (carry.encode({"group": "documents", "at": str(CREATED + 20)}), "another group's"),
        (carry.encode({"group": "general", "at": "nan"}), "not a time"),
        (carry.encode({"group": "general", "at": "soon"}), "not a number"),
        (carry.encode({"group": "general", "at": str(CREATED + 20)}, version="2"), "format 2"),
        (f"group=general&at={CREATED + 20}", "no format named"),
    ],
)
async def test_an_arrival_that_cannot_be_true_makes_a_newcomer(carried: str, why: str) -> None:
    channel = Channel()
    channel.variables[ARRIVAL_VARIABLE] = carried
    now = CREATED + 100
    assert await carried_arrival(channel, "general", now=now, oldest=now - 600) is None, why


async def test_without_a_creation_time_the_recall_window_bounds_the_arrival() -> None:
    channel = Channel(call_id="not-an-asterisk-uniqueid")
    now = CREATED + 1000
    await carry_arrival(channel, "general", now - 900)
    assert await carried_arrival(channel, "general", now=now, oldest=now - 600) is None
    await carry_arrival(channel, "general", now - 300)
    assert await carried_arrival(channel, "general", now=now, oldest=now - 600) == now - 300


async def test_a_caller_answered_while_handed_back_is_not_queued_again() -> None:
    """The controller went away while the operator's phone rang; Asterisk's Dial went on, the
    operator answered and talked, and only then did the call come back: the menu goes on."""
    clock = ManualClock(CREATED + 100)
    service = AcdService(RoutingSettings(), restarted_node(clock), {})
    channel = Channel()
    await carry_arrival(channel, "general", CREATED + 20)
    channel.variables["DIALSTATUS"] = "ANSWER"  # what Dial left after the conversation
    outcome = await service.connect(channel, "general", number="79160000001", priority=0, data={})
    assert outcome == "answered"
    assert service.node.acd.callers == {}  # not queued a second time
    assert channel.variables[ARRIVAL_VARIABLE] == ""  # done with the queue


class HangsUpTalking(Channel):
    """The operator answers, then the caller ends the conversation by hanging up."""

    def __init__(self, node: AcdNode) -> None:
        super().__init__()
        self.node = node
        self.hung_up = False

    async def exec(self, application: str, *options: str) -> int:
        if application == "Dial":
            await operator_answered(self.node, self.call_id)  # Dial's U() hook
            self.hung_up = True
        return 0

    async def get_variable(self, name: str) -> str | None:
        if self.hung_up:
            raise CallerHungUp()
        return await super().get_variable(name)

    async def set_variable(self, name: str, value: str) -> None:
        if self.hung_up:
            raise CallerHungUp()
        await super().set_variable(name, value)


async def test_a_caller_who_hangs_up_to_end_the_conversation_is_answered() -> None:
    node = restarted_node(ManualClock(CREATED + 100))
    await node.login("anna")
    service = AcdService(RoutingSettings(), node, {})
    channel = HangsUpTalking(node)
    outcome = await service.connect(channel, "general", number="79160000001", priority=0, data={})
    assert outcome == "answered"  # not lost to the carried arrival's clean-up
