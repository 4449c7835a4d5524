"""The simulated app_queue: the transcripts' queue situations played again, and its rules.

The two transcript scenarios run the same situation as the recording (same queue, same members,
callers entering and hanging up at the recorded times) through the simulator and its AMI server,
on a `SteppedClock` set to the recording's times, and compare what a controller sees of the
queue: the sequence of app_queue's events with their header keys in order, and the values that
do not depend on the timing of Asterisk's threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from test_sim_ami import (
    CONF,
    TO_ASTERISK,
    TO_CLIENT,
    Client,
    Pbx,
    keys,
    recording_pbx,
    transcript_messages,
)
from transcripts import load

from hotline.ami.protocol import AmiMessage, AmiParser
from hotline.clock import SteppedClock, SystemClock, seconds_to_us
from pbxsim.model import ChannelState, SimChannel
from pbxsim.queue_config import (
    MemberConfig,
    QueueConfig,
    load_queues_conf,
    parse_queues_conf,
    queues_from_dict,
)
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues

Headers = list[tuple[str, str]]

# The events app_queue itself publishes; the rest (channels, dials, bridges) interleave with
# them in an order that depends on Asterisk's threads.
QUEUE_EVENTS = frozenset(
    "QueueCallerJoin QueueCallerLeave QueueCallerAbandon AgentCalled AgentRingNoAnswer "
    "AgentConnect AgentComplete QueueMemberStatus QueueMemberPause QueueMemberAdded "
    "QueueMemberRemoved".split()
)
STABLE = (
    "Queue MemberName Interface Membership Position Count OriginalPosition Reason Status "
    "Paused PausedReason Device State HoldTime RingTime"
).split()


def view_keys(m: AmiMessage) -> tuple[str, ...]:
    """The header keys to compare. AgentComplete carries the member channel's ``Dest...`` block
    only if that channel still exists when the event is published: ami-queue-call.txt prints it
    without the block at 6.235s and with it at 27.752s for the same situation (the operator
    hanging up), so the block is left out of the comparison; `assert_transcript_layouts` still
    checks the layout as sent."""
    names = keys(m)
    if m.name == "AgentComplete":
        return tuple(k for k in names if not k.startswith("Dest"))
    return tuple(names)


def queue_view(messages: list[AmiMessage]) -> list[tuple[str, tuple[str, ...], Headers]]:
    """app_queue's events and its own device states: name, header keys, stable values."""
    return [
        (m.name, view_keys(m), [(k, m[k]) for k in STABLE if k in m])
        for m in messages
        if m.kind == "event"
        and (
            m.name in QUEUE_EVENTS
            or (m.name == "DeviceStateChange" and m["Device"].startswith("Queue:"))
        )
    ]


def transcript_layouts() -> dict[str, set[tuple[str, ...]]]:
    layouts: dict[str, set[tuple[str, ...]]] = {}
    for name in (
        "ami-actions.txt",
        "ami-ivr-call.txt",
        "ami-queue-call.txt",
        "ami-queue-abandon-and-no-answer.txt",
        "ami-agi-server-down.txt",
    ):
        for m in transcript_messages(name):
            layouts.setdefault(m.name, set()).add(tuple(keys(m)))
    return layouts


def assert_transcript_layouts(messages: list[AmiMessage]) -> None:
    """Every event the simulator sent has a header layout the real Asterisk printed."""
    layouts = transcript_layouts()
    for m in messages:
        if m.kind == "event" and m.name in layouts:
            assert tuple(keys(m)) in layouts[m.name], f"{m.name}: {keys(m)}"


def t0_from_login(event_tv: str) -> int:
    """The epoch (µs) of a transcript's +0.000s, from the EventTV of its Login at +0.301s."""
    moment = datetime.strptime(event_tv, "%Y-%m-%dT%H:%M:%S.%f%z")
    return round(moment.astimezone(UTC).timestamp() * 1000) * 1000 - 301_000


class Scenario:
    """A transcript's situation replayed at its times: a PBX, a logged-in client, the clock."""

    def __init__(self, pbx: Pbx, t0_us: int) -> None:
        self.pbx, self.t0_us = pbx, t0_us
        self.client: Client | None = None

    async def at(self, seconds: float) -> None:
        await self.pbx.clock.advance_to_us(self.t0_us + round(seconds * 1_000_000))

    async def login(self) -> Client:
        self.pbx.clock.set_us(self.t0_us)
        self.client = await self.pbx.connect()
        await self.at(0.301)
        await self.client.login()
        return self.client

    def caller(self, number: str, dialled_name: str, exten_priority: int = 4) -> SimChannel:
        """The queue-entry half of a Local channel pair, as the AGI half would have made it
        when the call was originated (taking the same uniqueids and Local number)."""
        clock = self.pbx.clock
        sequence, outer, inner = clock.local_sequence(), clock.uniqueid(), clock.uniqueid()
        return SimChannel(
            f"Local/s@queue-entry-{sequence};2",
            inner,
            outer,
            "queue-entry",
            "s",
            exten_priority,
            ChannelState.UP,
            number,
            "Петров Пётр",  # queue-entry sets CALLERID(name) before Queue()
            number,
            dialled_name,
        )

    def enter(self, channel: SimChannel) -> asyncio.Task[str]:
        return asyncio.create_task(self.pbx.queues.enter(channel, "info", "t", 40))


@pytest.fixture
async def fresh_pbx() -> AsyncIterator[Pbx]:
    """The recording Asterisk right after its restart at BOOT, with the agents' dialplan."""
    operators = {
        "Local/agent1@agents/n": Operator(talk_time=4.929),  # Answer, Playback(beep), Wait(4)
        "Local/agent2@agents/n": Operator(talk_time=4.930),
        "Local/agent4@agents/n": Operator(answers=False),  # Wait(30): never answers
    }
    async with recording_pbx(operators) as pbx:
        yield pbx


def transcript_bytes_between(name: str, start: float, end: float) -> bytes:
    return b"".join(b.data for b in load(name) if b.direction == TO_CLIENT and start <= b.at < end)


async def test_three_callers_two_members_as_recorded(fresh_pbx: Pbx) -> None:
    """ami-queue-call.txt: caller A answered by Agent Two; QueueStatus; B and C both answered by
    Agent One (least recent, rings while in use); B hangs up first, Agent One ends C's call."""
    name = "ami-queue-call.txt"
    scene = Scenario(fresh_pbx, t0_from_login("2026-11-24T23:33:46.478+0000"))
    client = await scene.login()
    await scene.at(0.802)
    a = scene.caller("79035550011", "Петров Пётр")
    await scene.at(1.305)
    call_a = scene.enter(a)
    await scene.at(21.319)
    await client.send(("Action", "QueueStatus"), ("ActionID", "qstat-2"), ("Queue", "info"))
    await client.until_event("QueueStatusComplete")
    await scene.at(21.821)
    b = scene.caller("79261112233", "Сидорова Анна")
    await scene.at(22.322)
    c = scene.caller("79990000000", "Test")
    call_b = scene.enter(b)
    await scene.at(22.823)
    call_c = scene.enter(c)
    await scene.at(24.824)
    call_b.cancel()  # the impatient caller hangs up while talking
    await fresh_pbx.clock.run_until_complete(call_a, call_c)
    await client.sync()

    assert (call_a.result(), call_c.result(), call_b.cancelled()) == ("ANSWERED", "ANSWERED", True)
    assert queue_view(client.messages) == queue_view(transcript_messages(name))
    # The QueueStatus answer, with its counters after one call, is byte for byte Asterisk's.
    expected = transcript_bytes_between(name, 21.319, 21.82)
    start = client.raw.index(b"Response: Success\r\nActionID: qstat-2\r\n")
    assert bytes(client.raw[start : start + len(expected)]) == expected
    assert_transcript_layouts(client.messages)

    # The member legs are the recording's Local channels, with the same Local numbers and
    # uniqueid counters (the epoch part is not compared: C's leg was made at +22.823s, on a
    # second boundary that a t0 known to the millisecond cannot place).
    def legs(messages: list[AmiMessage]) -> list[tuple[str, str]]:
        return [
            (m["DestChannel"], m["DestUniqueid"].split(".")[1])
            for m in messages
            if m.kind == "event" and m.name == "AgentCalled"
        ]

    assert legs(client.messages) == legs(transcript_messages(name))


async def test_paused_members_no_answer_and_abandon_as_recorded(fresh_pbx: Pbx) -> None:
    """ami-queue-abandon-and-no-answer.txt: both agents paused for training, Agent Four added and
    never answering (rung 8 s, again after the 1 s retry), the caller gives up after 11 s."""
    name = "ami-queue-abandon-and-no-answer.txt"
    scene = Scenario(fresh_pbx, t0_from_login("2026-11-24T23:34:53.795+0000"))
    client = await scene.login()
    blocks = load(name)
    # The actions after the Login, but the Originate: its call is the AGI half's (here
    # `scene.caller`); the queue only sees the channel that runs Queue().
    actions = [b for b in blocks[2:] if b.direction == TO_ASTERISK and b"Originate" not in b.data]
    caller_task: asyncio.Task[str] | None = None
    for block in actions:
        if caller_task is None and block.at > 2.808:
            await scene.at(2.306)
            caller = scene.caller("79261112233", "Сидорова Анна")
            await scene.at(2.808)
            caller_task = scene.enter(caller)
            await scene.at(14.308)
            caller_task.cancel()  # impatient-caller hangs up
        await scene.at(block.at)
        await client.send_raw(block.data)
        await client.sync()
    assert caller_task is not None and caller_task.cancelled()

    assert queue_view(client.messages) == queue_view(transcript_messages(name))
    assert_transcript_layouts(client.messages)
    # The answers to those actions are Asterisk's, header for header.
    parsed = [m for b in actions for m in AmiParser(expect_greeting=False).feed(b.data)]
    sent = {m.action_id for m in parsed if isinstance(m, AmiMessage)}
    responses = [m for m in transcript_messages(name) if m.kind == "response"]
    recorded = {m.action_id: m.headers for m in responses if m.action_id in sent}
    ours = {m.action_id: m.headers for m in client.messages if m.kind == "response"}
    assert len(recorded) == 6 and {k: ours[k] for k in recorded} == recorded


# --- configuration -----------------------------------------------------------------------------


def test_queues_conf_of_the_transcripts() -> None:
    info = load_queues_conf(CONF / "queues.conf")["info"]
    assert info == QueueConfig(
        name="info",
        strategy="leastrecent",
        timeout=8,
        retry=1,
        wrapuptime=2,
        joinempty=True,
        leavewhenempty=False,
        members=(
            MemberConfig("Local/agent1@agents/n", 0, "Agent One"),
            MemberConfig("Local/agent2@agents/n", 0, "Agent Two"),
        ),
    )


def test_queues_from_dict_and_bad_strategy() -> None:
    queues = queues_from_dict(
        {
            "sales": {
                "strategy": "ringall",
                "timeout": 5,
                "ringinuse": "no",
                "members": [
                    "PJSIP/101,1,Alice",
                    {"interface": "PJSIP/102", "name": "Bob"},
                ],
            }
        }
    )
    assert queues["sales"].members == (
        MemberConfig("PJSIP/101", 1, "Alice"),
        MemberConfig("PJSIP/102", 0, "Bob"),
    )
    assert (queues["sales"].timeout, queues["sales"].ringinuse) == (5, False)
    with pytest.raises(ValueError, match="random"):
        parse_queues_conf("[q]\nstrategy = random\n")


# --- the rules, in-process ---------------------------------------------------------------------


class Recorder:
    """An event sink that keeps everything."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Headers]] = []

    def emit(self, event: str, headers: Headers) -> None:
        self.events.append((event, list(headers)))

    def named(self, event: str) -> list[dict[str, str]]:
        return [dict(headers) for name, headers in self.events if name == event]


def make(
    members: str = "PJSIP/101,0,Alice;PJSIP/102,0,Bob", **settings: object
) -> tuple[SteppedClock, Queues, Recorder]:
    clock = SteppedClock("1800000000", boot="1800000000")
    data: dict[str, object] = {"strategy": "leastrecent", "timeout": 8, "retry": 1}
    data |= settings
    data["members"] = [m for m in members.split(";") if m]
    recorder = Recorder()
    queues = Queues(queues_from_dict({"q": data}), clock, sink=recorder)
    return clock, queues, recorder


def caller(clock: SteppedClock, number: str = "79000000001") -> SimChannel:
    uniqueid = clock.uniqueid()
    return SimChannel(
        f"PJSIP/trunk-{clock.local_sequence()}",
        uniqueid,
        uniqueid,
        "from-pstn",
        "88001000001",
        3,
        ChannelState.UP,
        number,
        "Caller",
    )


async def test_nobody_answers_until_the_callers_limit() -> None:
    clock, queues, recorder = make("PJSIP/101,0,Alice")
    queues.set_operator("PJSIP/101", Operator(answers=False))
    call = asyncio.create_task(queues.enter(caller(clock), "q", "", 20))
    await clock.run_until_complete(call)
    assert call.result() == "TIMEOUT"
    # 8 s ring, 1 s retry, 8 s ring, 1 s retry, then the 2 s left of the caller's 20
    assert [e["RingTime"] for e in recorder.named("AgentRingNoAnswer")] == ["8000", "8000", "2000"]
    assert [e["Count"] for e in recorder.named("QueueCallerLeave")] == ["0"]
    assert recorder.named("QueueCallerAbandon") == []
    assert queues.queue("q").stats.abandoned == 0  # type: ignore[union-attr]


async def test_joining_refusals() -> None:
    clock, queues, _ = make("PJSIP/101,0,Alice", joinempty="no", maxlen=1)
    assert await queues.enter(caller(clock), "nope") == "UNKNOWN"
    queues.pause_member("PJSIP/101", True, reason="break")
    assert await queues.enter(caller(clock), "q") == "JOINEMPTY"
    queues.pause_member("PJSIP/101", False)
    queues.set_operator("PJSIP/101", Operator(answers=False))
    first = asyncio.create_task(queues.enter(caller(clock), "q", "", 5))
    await clock.settle()
    assert await queues.enter(caller(clock), "q") == "FULL"
    await clock.run_until_complete(first)
    assert first.result() == "TIMEOUT"


async def test_continue_and_no_retry_options() -> None:
    clock, queues, recorder = make("PJSIP/101,0,Alice")
    answered = asyncio.create_task(queues.enter(caller(clock), "q", "tc"))
    await clock.run_until_complete(answered)
    assert answered.result() == "CONTINUE"
    queues.set_operator("PJSIP/101", Operator(answers=False))
    once = asyncio.create_task(queues.enter(caller(clock), "q", "n", 60))
    await clock.run_until_complete(once)
    assert once.result() == "TIMEOUT"
    assert len(recorder.named("AgentRingNoAnswer")) == 1


async def test_ringall_rings_everyone_and_cancels_the_others() -> None:
    clock, queues, recorder = make(strategy="ringall")
    queues.set_operator("PJSIP/101", Operator(ring_delay=5))
    queues.set_operator("PJSIP/102", Operator(ring_delay=2, talk_time=10))
    call = asyncio.create_task(queues.enter(caller(clock), "q"))
    await clock.run_until_complete(call)
    assert [e["MemberName"] for e in recorder.named("AgentCalled")] == ["Alice", "Bob"]
    assert [e["MemberName"] for e in recorder.named("AgentConnect")] == ["Bob"]
    assert recorder.named("AgentConnect")[0]["RingTime"] == "2"
    assert [e["DialStatus"] for e in recorder.named("DialEnd")] == ["CANCEL", "ANSWER"]
    assert recorder.named("AgentRingNoAnswer") == []
    assert recorder.named("AgentComplete")[0]["TalkTime"] == "10"


async def test_leastrecent_wrapup_and_stats() -> None:
    clock, queues, recorder = make(wrapuptime=2, ringinuse="no")
    queues.set_operator("PJSIP/101", Operator(talk_time=10))
    queues.set_operator("PJSIP/102", Operator(talk_time=10))
    first = asyncio.create_task(queues.enter(caller(clock, "1"), "q"))
    await clock.advance(1)
    second = asyncio.create_task(queues.enter(caller(clock, "2"), "q"))
    await clock.advance(9.5)  # the first call ended at 10 s: Bob is in wrap-up until 12 s
    third = asyncio.create_task(queues.enter(caller(clock, "3"), "q"))
    await clock.run_until_complete(first, second, third)
    connects = recorder.named("AgentConnect")
    # a tie goes to the member listed last; a busy member is not rung (ringinuse=no); the third
    # caller waits out Bob's wrap-up (his call ended at 10 s, Alice's ends at 11 s)
    assert [(e["CallerIDNum"], e["MemberName"], e["HoldTime"]) for e in connects] == [
        ("1", "Bob", "0"),
        ("2", "Alice", "0"),
        ("3", "Bob", "2"),
    ]
    stats = queues.queue("q").stats  # type: ignore[union-attr]
    assert (stats.completed, stats.talktime, stats.holdtime) == (3, 10, 0)
    assert stats.completed_in_sl == 2  # servicelevel 0: only the calls answered at once


async def test_pause_keeps_a_member_out_and_unpause_rings_at_once() -> None:
    clock, queues, recorder = make("PJSIP/101,0,Alice")
    queues.pause_member("PJSIP/101", True, reason="lunch")
    call = asyncio.create_task(queues.enter(caller(clock), "q", "", 60))
    await clock.advance(30)
    assert recorder.named("AgentCalled") == []
    assert queues.pause_member("PJSIP/101", False)
    await clock.settle()
    assert len(recorder.named("AgentCalled")) == 1
    await clock.run_until_complete(call)
    assert call.result() == "ANSWERED"
    pauses = recorder.named("QueueMemberPause")
    assert [(p["Paused"], p["PausedReason"]) for p in pauses] == [("1", "lunch"), ("0", "")]
    devices = [(e["Device"], e["State"]) for e in recorder.named("DeviceStateChange")]
    assert devices[:2] == [("Queue:q_pause_PJSIP/101", "INUSE"), ("Queue:q_avail", "INUSE")]


async def test_autofill_rings_for_several_callers_at_once() -> None:
    clock, queues, recorder = make()
    calls = [asyncio.create_task(queues.enter(caller(clock, str(n)), "q")) for n in (1, 2)]
    await clock.settle()
    assert [e["CallerIDNum"] for e in recorder.named("AgentConnect")] == ["1", "2"]
    assert [e["Position"] for e in recorder.named("QueueCallerJoin")] == ["1", "2"]
    await clock.run_until_complete(*calls)


async def test_caller_hangs_up_between_rings() -> None:
    clock, queues, recorder = make("PJSIP/101,0,Alice")
    queues.set_operator("PJSIP/101", Operator(answers=False))
    call = asyncio.create_task(queues.enter(caller(clock), "q"))
    await clock.advance(8.5)  # rang 8 s, now in the 1 s retry pause
    call.cancel()
    await clock.settle()
    assert call.cancelled()
    abandon = recorder.named("QueueCallerAbandon")
    assert [(e["Position"], e["OriginalPosition"], e["HoldTime"]) for e in abandon] == [
        ("1", "1", "8")
    ]
    names = [name for name, _ in recorder.events]
    assert names[-3:] == ["QueueCallerAbandon", "DeviceStateChange", "QueueCallerLeave"]
    assert queues.queue("q").callers == []  # type: ignore[union-attr]


class WaitLedger(SystemClock):
    """A wall clock that notes every wait: simulated seconds asked, real seconds slept."""

    def __init__(self, time_scale: float) -> None:
        super().__init__(time_scale)
        self.simulated: list[float] = []
        self.real: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.simulated.append(seconds)
        self.real.append(max(seconds, 0.0) * self.time_scale)
        await super().sleep(seconds)


async def test_instant_time_scale_runs_a_call_at_once() -> None:
    clock = WaitLedger(time_scale=0)
    recorder = Recorder()
    config = queues_from_dict({"q": {"members": ["PJSIP/101,0,Alice"]}})
    queues = Queues(config, clock, sink=recorder, default_operator=Operator(talk_time=600))
    result = await queues.enter(caller(SteppedClock("1800000000")), "q")
    assert result == "ANSWERED"
    # the ten-minute talk was waited for in simulated time only, never in real time
    assert sum(clock.simulated) >= 600 and set(clock.real) == {0.0}
    assert [n for n, _ in recorder.events].count("AgentComplete") == 1
    await queues.close()


async def test_members_added_and_removed() -> None:
    _, queues, recorder = make("")
    assert queues.add_member("q", "PJSIP/7", name="Seven", penalty=2) == "added"
    assert queues.add_member("q", "PJSIP/7") == "exists"
    assert queues.add_member("nope", "PJSIP/7") == "no-queue"
    added = recorder.named("QueueMemberAdded")[0]
    assert (added["Membership"], added["Penalty"], added["LoginTime"]) == (
        "dynamic",
        "2",
        "1800000000",
    )
    assert queues.remove_member("q", "PJSIP/7") == "removed"
    assert queues.remove_member("q", "PJSIP/7") == "not-there"
    devices = [(e["Device"], e["State"]) for e in recorder.named("DeviceStateChange")]
    assert devices == [
        ("Queue:q_pause_PJSIP/7", "NOT_INUSE"),
        ("Queue:q_avail", "NOT_INUSE"),
        ("Queue:q_avail", "INUSE"),
    ]


def test_seconds_to_us_is_exact() -> None:
    assert seconds_to_us("1795563319.843714") == 1795563319_843714
