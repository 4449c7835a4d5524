"""connect_call against a scripted stand-in for Asterisk's side of the caller's AGI session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hotline.clock import ManualClock
from routing.acd import Acd
from routing.connect import ANSWERED_SUBROUTINE, connect_call, operator_answered
from routing.model import NO_ANSWER
from routing.node import AcdNode
from routing.operators import OperatorState
from routing.state import InMemoryAcdStore
from routing.testing import group, op


class HungUp(Exception):
    pass


class ScriptedChannel:
    """Answers EXEC and GET VARIABLE as Asterisk would, Dial outcomes taken from a script."""

    def __init__(self, node: AcdNode, dial_outcomes: list[str], clock: ManualClock) -> None:
        self.call_id = "1795563226.7"
        # the controller as this session reached it: the answer hook is sent back there
        self.env = {"agi_request": "agi://10.0.0.6:4573/hotline?did=88001000001&reentry=0"}
        self.node, self.clock = node, clock
        self.outcomes = dial_outcomes
        self.commands: list[tuple[str, ...]] = []
        self.variables: dict[str, str] = {}
        self.on_exec: Callable[[str], None] | None = None
        self._gone: asyncio.Future[None] | None = None

    def gone(self) -> asyncio.Future[None]:
        """Done when Asterisk's ``HANGUP`` notice comes while no command runs (`hang_up`)."""
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
        return self._gone

    def hang_up(self) -> None:
        """The caller hangs up while the controller sends nothing."""
        if not self.gone().done():
            self.gone().set_result(None)

    async def exec(self, application: str, *options: str) -> int:
        self.commands.append((application, *options))
        if self.on_exec is not None:
            self.on_exec(application)
        if application == "Dial":
            outcome = self.outcomes.pop(0)
            self.clock.advance(3)
            if outcome == "ANSWER":
                await operator_answered(self.node, self.call_id)  # the U() subroutine
                self.clock.advance(120)
                self.variables.update(DIALEDTIME="123", ANSWEREDTIME="120")
            self.variables["DIALSTATUS"] = outcome
        return 0

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)


def make_node(clock: ManualClock, **group_overrides: object) -> AcdNode:
    groups = {"general": group("general", **group_overrides)}
    acd = Acd(groups, [op("anna", general=9), op("boris", general=3)], clock=clock)
    return AcdNode(acd, InMemoryAcdStore(), node_id="n1")


async def test_dial_answered_from_the_callers_session() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna")
    channel = ScriptedChannel(node, ["ANSWER"], clock)
    result = await connect_call(channel, node, "general", number="+79990001122")
    assert (result.outcome, result.operator_id) == ("answered", "anna")
    dial = [c for c in channel.commands if c[0] == "Dial"]
    hook = f"gU({ANSWERED_SUBROUTINE}^{channel.call_id}^10.0.0.6:4573)"
    assert dial == [("Dial", "PJSIP/anna", "15", hook)]
    assert channel.commands[0] == ("StartMusicOnHold", "default")
    assert node.acd.operators["anna"].state is OperatorState.WRAP_UP
    stats = node.acd.stats["general"]
    assert (stats.answered, stats.answer_wait_total) == (1, 3.0)


async def test_no_answer_pauses_operator_and_next_one_rings() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna")
    await node.login("boris")
    channel = ScriptedChannel(node, ["NOANSWER", "ANSWER"], clock)
    result = await connect_call(channel, node, "general")
    assert result.operator_id == "boris"
    anna = node.acd.operators["anna"]
    assert (anna.state, anna.pause_reason) == (OperatorState.PAUSED, NO_ANSWER)


async def test_closed_or_unstaffed_group_overflows_without_queueing() -> None:
    clock = ManualClock()
    node = make_node(clock, overflow_group=None)
    channel = ScriptedChannel(node, [], clock)
    result = await connect_call(channel, node, "general")
    assert (result.outcome, result.overflow_reason) == ("overflow", "nobody_logged_in")
    assert channel.commands == [] and node.acd.waiting("general") == 0


async def test_max_wait_overflow_and_hang_up_while_waiting() -> None:
    clock = ManualClock()
    node = make_node(clock, max_wait_seconds=60)
    await node.login("anna", paused_reason="обучение")
    channel = ScriptedChannel(node, [], clock)
    task = asyncio.create_task(connect_call(channel, node, "general"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    clock.advance(60)
    await node.tick()
    result = await asyncio.wait_for(task, 1)
    assert (result.outcome, result.overflow_reason) == ("overflow", "max_wait")

    second = ScriptedChannel(node, [], clock)
    second.call_id = "other"
    task = asyncio.create_task(connect_call(second, node, "general", number="+7000"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second.hang_up()  # HANGUP while the caller hears hold music
    result = await asyncio.wait_for(task, 1)
    assert result.outcome == "caller_gone"
    assert "other" not in node.acd.callers
    assert node.acd.stats["general"].abandoned == 1


async def queued(node: AcdNode, call_id: str) -> None:
    """Let the connect task run until the ACD holds the caller."""
    for _ in range(100):
        if call_id in node.acd.callers:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{call_id} never reached the queue")


async def test_a_call_handed_back_to_the_dialplan_is_not_an_abandon() -> None:
    """The server cancels the handler (the controller is stopping): the caller is still on the
    line and comes back through the dialplan's re-entry, into their old place."""
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna", paused_reason="обучение")
    early = ScriptedChannel(node, [], clock)
    early.call_id = "early"
    first = asyncio.create_task(connect_call(early, node, "general", number="+7001"))
    await queued(node, "early")
    channel = ScriptedChannel(node, [], clock)
    task = asyncio.create_task(connect_call(channel, node, "general", number="+7000"))
    await queued(node, channel.call_id)
    place = node.acd.callers[channel.call_id].seq
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert channel.call_id not in node.acd.callers
    assert node.acd.stats["general"].abandoned == 0
    early.hang_up()  # the first caller gives up meanwhile: that one is an abandon
    await asyncio.wait_for(first, 1)
    assert node.acd.stats["general"].abandoned == 1

    back = ScriptedChannel(node, [], clock)  # the re-entry: same caller, same place
    again = asyncio.create_task(connect_call(back, node, "general", number="+7000"))
    await queued(node, back.call_id)
    assert node.acd.callers[back.call_id].seq == place
    back.hang_up()
    await asyncio.wait_for(again, 1)


async def test_hang_up_during_dial_is_an_abandon() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna")
    channel = ScriptedChannel(node, ["NOANSWER"], clock)

    def hang_up(application: str) -> None:
        if application == "Dial":
            raise HungUp

    channel.on_exec = hang_up
    result = await connect_call(channel, node, "general", hung_up=HungUp)
    assert result.outcome == "caller_gone"
    assert node.acd.operators["anna"].state is OperatorState.READY


async def test_an_operator_freed_during_an_announcement_cuts_it_short() -> None:
    """The waiting caller hears «your place: three...»; anna gets ready while the first file
    plays: the rest is skipped and the next command is her Dial, not the other files."""
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna", paused_reason="обед")
    channel = ScriptedChannel(node, ["ANSWER"], clock)
    played: list[str] = []
    first_file = asyncio.Event()

    async def announce(position: int, expected: float | None, stop: asyncio.Event) -> None:
        for name in ("queue-position", "digits/3", "queue-wait"):
            if stop.is_set():
                return
            played.append(name)
            channel.commands.append(("STREAM FILE", name))
            first_file.set()
            await asyncio.sleep(0.05)  # the file plays; FastAGI cannot stop it

    task = asyncio.create_task(
        connect_call(channel, node, "general", announce=announce, announce_every=0.01)
    )
    await first_file.wait()
    await node.ready("anna")
    result = await asyncio.wait_for(task, 5)

    assert result.outcome == "answered" and result.operator_id == "anna"
    assert played == ["queue-position"]
    names = [c[0] for c in channel.commands]
    assert names[names.index("STREAM FILE") + 1] == "Dial"  # no hold music restarted between
    assert names.count("StartMusicOnHold") == 1


async def test_hold_music_and_announcements_take_turns_while_nobody_is_free() -> None:
    clock = ManualClock()
    node = make_node(clock)
    await node.login("anna", paused_reason="обед")
    channel = ScriptedChannel(node, ["ANSWER"], clock)
    heard: list[tuple[int, float | None]] = []
    three_heard = asyncio.Event()

    async def announce(position: int, expected: float | None, stop: asyncio.Event) -> None:
        heard.append((position, expected))
        channel.commands.append(("STREAM FILE", "queue-next"))
        if len(heard) == 3:
            three_heard.set()

    task = asyncio.create_task(
        connect_call(channel, node, "general", announce=announce, announce_every=0.01)
    )
    await asyncio.wait_for(three_heard.wait(), 5)
    await node.ready("anna")
    await asyncio.wait_for(task, 5)
    names = [c[0] for c in channel.commands]
    assert names[:4] == ["StartMusicOnHold", "StopMusicOnHold", "STREAM FILE", "StartMusicOnHold"]
    assert names[-3:] == ["StartMusicOnHold", "StopMusicOnHold", "Dial"] or names[-2:] == [
        "STREAM FILE",
        "Dial",
    ]
    assert heard[0][0] == 1  # first in line: "you are next"
