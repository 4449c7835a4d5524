"""The simulator's AMI server against the Asterisk 22 transcripts, over real sockets.

The replays feed a transcript's client->asterisk bytes to the server, with the simulated clock
set to the transcript's time before each action, and compare everything the server sent with the
transcript's asterisk->client stream: byte for byte, but for the few values `mask` documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from transcripts import DATA, Block, load, stream

from hotline.ami.protocol import AmiMessage, AmiParser, Greeting, encode_message
from hotline.clock import SteppedClock, seconds_to_us
from pbxsim.ami_accounts import ManagerUser, load_manager_conf, parse_manager_conf, privilege_of
from pbxsim.ami_originate import OriginateRequest, OriginateResult
from pbxsim.ami_server import AmiServer
from pbxsim.model import ChannelState, SimChannel
from pbxsim.originator import ScriptedOriginator
from pbxsim.queue_config import load_queues_conf
from pbxsim.queue_state import DeviceState, Operator
from pbxsim.queues import Queues

TO_CLIENT = "asterisk->client"
TO_ASTERISK = "client->asterisk"
CONF = DATA / "conf"
GUARD = 5.0  # only keeps a broken test from hanging

# The Asterisk that recorded the transcripts booted at 1795563209 (the static members'
# LoginTime; Uptime 110 at the Login of ami-actions.txt agrees).
BOOT = "1795563209"
# ami-actions.txt answered the Ping sent at +0.802s with Timestamp 1795563319.843714, the finest
# time it shows, so its +0.000s was 1795563319.041714; every EventTV, Uptime, LoginTime and
# LastPause of the transcript follows from that.
ACTIONS_T0_US = seconds_to_us("1795563319.843714") - 802_000


def mask(data: bytes) -> bytes:
    """Blank what a replay cannot reproduce, and nothing else:

    * ``SessionID``: Asterisk prints the address of its session structure in memory;
    * the port of ``LocalAddress``/``RemoteAddress``: the test server listens on a port the OS
      picks, and the client's port is ephemeral.

    ``Timestamp``, ``EventTV``, ``SessionTV``, ``Uptime``, ``LastReload``, ``LoginTime``,
    ``LastCall`` and ``LastPause`` need no mask: the clock is set to the transcript's times and
    the queue's history (`actions_history`) to what the recording Asterisk had.
    """
    data = re.sub(rb"(?m)^(SessionID: )0x[0-9a-f]+\r$", rb"\1<masked>\r", data)
    return re.sub(rb"(?m)^((?:Local|Remote)Address: IPV4/TCP/[0-9.]+/)\d+\r$", rb"\1<port>\r", data)


def actions_history(queues: Queues) -> None:
    """What the recording Asterisk's queue had been through before ami-actions.txt (calls,
    pauses and an abandon in the other transcripts' sessions), as its QueueStatus shows it."""
    info = queues.queue("info")
    assert info is not None
    info.stats.completed, info.stats.completed_in_sl = 2, 2
    info.stats.abandoned, info.stats.talktime = 1, 4
    for interface, last_call in (("agent1", 1795563251), ("agent2", 1795563232)):
        member = info.members[f"Local/{interface}@agents/n"]
        member.calls, member.last_call, member.last_pause = 1, last_call, 1795563294
    # Agent Three had been a member before: the device-state cache still holds its pause state,
    # which is why its QueueAdd in the transcript announces no DeviceStateChange.
    queues.devices.seed("Queue:info_pause_Local/agent3@agents/n", DeviceState.NOT_INUSE)


@dataclass
class Pbx:
    clock: SteppedClock
    queues: Queues
    server: AmiServer
    clients: list[Client] = field(default_factory=list)

    async def connect(self) -> Client:
        client = await Client.connect(self.server)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.server.close()
        await self.queues.close()


def queue_entry_caller() -> SimChannel:
    """The caller of the queue-call transcripts, answered in [queue-entry] and joining "info"."""
    return SimChannel(
        "Local/s@queue-entry-00000000;2",
        "1795563209.1",
        "1795563209.0",
        "queue-entry",
        "s",
        4,
        ChannelState.UP,
        "79035550011",
        "Петров Пётр",
    )


@pytest.fixture
async def pbx() -> AsyncIterator[Pbx]:
    async with recording_pbx({}) as started:
        yield started


@contextlib.asynccontextmanager
async def recording_pbx(operators: dict[str, Operator]) -> AsyncIterator[Pbx]:
    """The recording Asterisk's queues and manager users at BOOT, serving AMI."""
    clock = SteppedClock(BOOT, boot=BOOT)
    queues = Queues(load_queues_conf(CONF / "queues.conf"), clock, operators=operators)
    users = load_manager_conf(CONF / "manager.conf")
    server = AmiServer(clock=clock, users=users, queues=queues, port=0)
    await server.start()
    pbx = Pbx(clock, queues, server)
    try:
        yield pbx
    finally:
        await pbx.close()


@dataclass
class Client:
    """A raw-socket AMI client: bytes out, bytes and parsed messages in."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    raw: bytearray = field(default_factory=bytearray)
    messages: list[AmiMessage] = field(default_factory=list)
    parser: AmiParser = field(default_factory=lambda: AmiParser(expect_greeting=True))
    eof: bool = False

    @classmethod
    async def connect(cls, server: AmiServer) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        client = cls(reader, writer)
        await client.until(lambda: client.raw.endswith(b"\r\n"))
        return client

    async def send(self, *headers: tuple[str, str]) -> None:
        await self.send_raw(encode_message(headers))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login(self, **extra: str) -> None:
        await self.send(
            ("Action", "Login"), ("Username", "ivr"), ("Secret", "ivrsecret"), *extra.items()
        )
        await self.until_event("SuccessfulAuth")

    async def action(self, name: str, action_id: str, *headers: tuple[str, str]) -> AmiMessage:
        """Send an action and wait for its response."""
        await self.send(("Action", name), ("ActionID", action_id), *headers)
        return await self.response(action_id)

    async def response(self, action_id: str) -> AmiMessage:
        def answer() -> AmiMessage | None:
            return next(
                (m for m in self.messages if m.kind == "response" and m.action_id == action_id),
                None,
            )

        await self.until(lambda: answer() is not None)
        found = answer()
        assert found is not None
        return found

    def find(self, event: str) -> AmiMessage | None:
        return next((m for m in self.messages if m.kind == "event" and m.name == event), None)

    def events(self, name: str | None = None) -> list[AmiMessage]:
        return [m for m in self.messages if m.kind == "event" and name in (None, m.name)]

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD):
            while not done():
                data = await self.reader.read(65536)
                if not data:
                    self.eof = True
                    if not done():
                        raise AssertionError(f"EOF before the expected bytes; got {self.raw!r}")
                    return
                self._take(data)

    async def until_event(self, name: str) -> None:
        await self.until(lambda: self.find(name) is not None)

    async def until_messages(self, count: int) -> None:
        """Until the greeting and messages received number ``count``."""
        await self.until(lambda: message_count(bytes(self.raw)) >= count)

    async def until_eof(self) -> None:
        async with asyncio.timeout(GUARD):
            while data := await self.reader.read(65536):
                self._take(data)
        self.eof = True

    async def sync(self) -> None:
        """Everything the server wrote before now has arrived: a Ping's answer comes after."""
        await self.action("Ping", f"sync-{len(self.messages)}")

    def _take(self, data: bytes) -> None:
        self.raw += data
        self.messages += [m for m in self.parser.feed(data) if isinstance(m, AmiMessage)]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


def message_count(data: bytes) -> int:
    """Greeting and messages in a stream of bytes from Asterisk."""
    return len(AmiParser(expect_greeting=True).feed(data))


def answer_times(blocks: list[Block]) -> dict[int, float]:
    """For each action block (by index), when Asterisk answered it: the time of the first block
    it sent after it (a response is stamped when the server handles the action, which the
    transcripts show can be a millisecond after it arrived), or the action's own time."""
    times: dict[int, float] = {}
    for index, block in enumerate(blocks):
        if block.direction != TO_ASTERISK:
            continue
        following = blocks[index + 1 :]
        answer = next((b for b in following if b.direction == TO_CLIENT), None)
        times[index] = answer.at if answer is not None else block.at
    return times


async def replay(pbx: Pbx, blocks: list[Block], t0_us: int) -> bytes:
    """Send the transcript's actions, each at the time Asterisk answered it, after the server has
    sent everything the transcript shows before it; return all the server sent, up to EOF."""
    pbx.clock.set_us(t0_us)
    client = await pbx.connect()
    expected_so_far = b""
    times = answer_times(blocks)
    for index, block in enumerate(blocks):
        if block.direction == TO_CLIENT:
            expected_so_far += block.data
            continue
        await client.until_messages(message_count(expected_so_far))
        pbx.clock.set_us(t0_us + round(times[index] * 1_000_000))
        await client.send_raw(block.data)
    await client.until_eof()
    return bytes(client.raw)


# --- replays -----------------------------------------------------------------------------------


async def test_replay_ami_actions_byte_for_byte(pbx: Pbx) -> None:
    actions_history(pbx.queues)
    blocks = load("ami-actions.txt")
    sent = await replay(pbx, blocks, ACTIONS_T0_US)
    assert mask(sent) == mask(stream(blocks, TO_CLIENT))
    assert blocks[-1].eof and pbx.server.session_count == 0


async def test_replay_bad_plain_secret_is_refused_then_closed(pbx: Pbx) -> None:
    """As Asterisk 22.10.1 did in the real-Asterisk suite: "Authentication failed" (after a
    pause the simulator takes too), then the socket closes."""
    blocks = load("ami-login-bad-plain-secret.txt")
    sent = await replay(pbx, blocks, seconds_to_us("1795563400"))
    assert sent == stream(blocks, TO_CLIENT)
    assert b"Message: Authentication failed\r\n" in sent


def test_mask_touches_only_session_id_and_ports() -> None:
    original = stream(load("ami-actions.txt"), TO_CLIENT)
    masked = mask(original)
    changed = {
        line.split(b":")[0]
        for line, other in zip(original.split(b"\r\n"), masked.split(b"\r\n"), strict=True)
        if line != other
    }
    assert changed == {b"SessionID", b"LocalAddress", b"RemoteAddress"}


# --- actions -----------------------------------------------------------------------------------


def keys(message: AmiMessage) -> list[str]:
    return [key for key, _ in message.headers]


def transcript_messages(name: str) -> list[AmiMessage]:
    parsed = AmiParser(expect_greeting=True).feed(stream(load(name), TO_CLIENT))
    return [m for m in parsed if not isinstance(m, Greeting)]


def transcript_event(name: str, event: str) -> AmiMessage:
    return next(m for m in transcript_messages(name) if m.kind == "event" and m.name == event)


async def logged_in(pbx: Pbx, **extra: str) -> Client:
    client = await pbx.connect()
    await client.login(**extra)
    return client


def test_manager_conf_gives_the_transcripts_account() -> None:
    users = load_manager_conf(CONF / "manager.conf")
    assert users == {"ivr": ManagerUser("ivr", "ivrsecret", frozenset({"all"}), frozenset({"all"}))}
    limited = parse_manager_conf("[general]\nenabled=yes\n[mon]\nsecret=x\nread=call,agent\n")
    assert limited["mon"].can_read("agent,all") and not limited["mon"].can_read("system,all")


def test_privileges_are_the_transcripts() -> None:
    seen = {
        (m.name, m["Privilege"])
        for name in ("ami-actions.txt", "ami-ivr-call.txt", "ami-queue-call.txt")
        for m in transcript_messages(name)
        if m.kind == "event" and "Privilege" in m
    }
    assert seen and all(privilege_of(event) == privilege for event, privilege in seen)


async def test_actions_before_login_are_refused_and_the_link_stays(pbx: Pbx) -> None:
    client = await pbx.connect()
    for action in ("Ping", "QueueStatus", "FooBar"):
        answer = await client.action(action, f"early-{action}")
        assert answer.headers == (
            ("Response", "Error"),
            ("ActionID", f"early-{action}"),
            ("Message", "Permission denied"),
        )
    assert client.events() == []
    await client.login()
    assert (await client.action("Ping", "late"))["Ping"] == "Pong"


async def test_login_with_events_off_gets_no_events(pbx: Pbx) -> None:
    quiet = await pbx.connect()
    await quiet.send(
        ("Action", "Login"),
        ("ActionID", "l"),
        ("Username", "ivr"),
        ("Secret", "ivrsecret"),
        ("Events", "off"),
    )
    assert (await quiet.response("l"))["Message"] == "Authentication accepted"
    loud = await logged_in(pbx)
    pbx.server.emit("UserEvent", [("UserEvent", "hello")])
    await loud.until_event("UserEvent")
    await quiet.sync()
    assert quiet.events() == []
    again = await quiet.action("Login", "l2", ("Username", "ivr"), ("Secret", "ivrsecret"))
    assert again["Message"] == "Already authenticated"


async def test_logoff_says_goodbye_and_closes(pbx: Pbx) -> None:
    client = await logged_in(pbx)
    answer = await client.action("Logoff", "bye")
    assert answer.headers == (
        ("Response", "Goodbye"),
        ("ActionID", "bye"),
        ("Message", "Thanks for all the fish."),
    )
    await client.until_eof()


async def test_command_answers_in_the_asterisk_22_form(pbx: Pbx) -> None:
    client = await logged_in(pbx)
    version = await client.action("Command", "v", ("Command", "core show version"))
    expected = next(m for m in transcript_messages("ami-actions.txt") if m.action_id == "cmd-1")
    assert version.headers[2:] == expected.headers[2:]
    pbx.clock.set_us(seconds_to_us(BOOT) + 110_000_000)
    uptime = await client.action("Command", "u", ("Command", "core show uptime"))
    assert uptime.getall("Output") == [
        "System uptime: 1 minute, 50 seconds",
        "Last reload: 1 minute, 50 seconds",
    ]
    missing = await client.action("Command", "x", ("Command", "core show nothing"))
    assert missing.name == "Error" and missing["Message"] == "Command output follows"
    assert missing.getall("Output") == [
        "No such command 'core show nothing' "
        "(type 'core show help core show nothing' for other possible commands)"
    ]


async def test_command_queue_show(pbx: Pbx) -> None:
    client = await logged_in(pbx)
    await client.action(
        "QueuePause",
        "p",
        ("Interface", "Local/agent2@agents/n"),
        ("Paused", "true"),
        ("Reason", "lunch"),
    )
    pbx.clock.set_us(seconds_to_us(BOOT) + 30_000_000)
    shown = await client.action("Command", "q", ("Command", "queue show info"))
    assert shown.getall("Output") == [
        "info has 0 calls (max unlimited) in 'leastrecent' strategy (0s holdtime, 0s talktime), "
        "W:0, C:0, A:0, SL:0.0%, SL2:0.0% within 0s",
        "   Members: ",
        "      Agent One (Local/agent1@agents/n) (ringinuse enabled) (Not in use) "
        "has taken no calls yet (login was 30 secs ago)",
        "      Agent Two (Local/agent2@agents/n) (ringinuse enabled) (paused:lunch was 30 secs "
        "ago) (Not in use) has taken no calls yet (login was 30 secs ago)",
        "   No Callers",
        "",
    ]
    unknown = await client.action("Command", "q2", ("Command", "queue show nope"))
    assert unknown.getall("Output") == ["No such queue: nope."]


async def test_queue_action_errors(pbx: Pbx) -> None:
    client = await logged_in(pbx)

    async def message(action: str, *headers: tuple[str, str]) -> tuple[str, str]:
        answer = await client.action(action, f"id-{len(client.messages)}", *headers)
        return answer.name, answer["Message"]

    agent1 = ("Interface", "Local/agent1@agents/n")
    assert await message("QueueAdd", ("Queue", "nope"), agent1) == (
        "Error",
        "Unable to add interface to queue: No such queue",
    )
    assert await message("QueueAdd", ("Queue", "info"), agent1) == (
        "Error",
        "Unable to add interface: Already there",
    )
    assert await message("QueueAdd", ("Queue", "info")) == ("Error", "'Interface' not specified.")
    assert await message("QueueRemove", ("Queue", "info"), agent1) == (
        "Error",
        "Member not dynamic",
    )
    assert await message("QueuePause", ("Interface", "Local/x@y/n"), ("Paused", "1")) == (
        "Error",
        "Interface not found",
    )
    assert await message("QueuePause", agent1) == (
        "Error",
        "Need 'Interface' and 'Paused' parameters.",
    )


async def test_queue_status_lists_a_waiting_caller(pbx: Pbx) -> None:
    pbx.queues.pause_member("Local/agent1@agents/n", True)
    pbx.queues.pause_member("Local/agent2@agents/n", True)
    caller = queue_entry_caller()
    waiting = asyncio.create_task(pbx.queues.enter(caller, "info", "t", 40))
    await pbx.clock.advance(7)
    client = await logged_in(pbx)
    answer = await client.action("QueueStatus", "st", ("Queue", "info"))
    assert answer.headers[1:] == (
        ("ActionID", "st"),
        ("EventList", "start"),
        ("Message", "Queue status will follow"),
    )
    await client.until_event("QueueStatusComplete")
    entry = client.find("QueueEntry")
    assert entry is not None and entry.headers == (
        ("Event", "QueueEntry"),
        ("Queue", "info"),
        ("Position", "1"),
        ("Channel", caller.name),
        ("Uniqueid", caller.uniqueid),
        ("CallerIDNum", "79035550011"),
        ("CallerIDName", "Петров Пётр"),
        ("ConnectedLineNum", "<unknown>"),
        ("ConnectedLineName", "<unknown>"),
        ("Wait", "7"),
        ("Priority", "0"),
        ("ActionID", "st"),
    )
    complete = client.find("QueueStatusComplete")
    assert complete is not None and complete["ListItems"] == "4"
    summary = await client.action("QueueSummary", "sum")
    await client.until_event("QueueSummaryComplete")
    row = client.find("QueueSummary")
    assert row is not None
    assert (row["LoggedIn"], row["Available"], row["Callers"], row["LongestHoldTime"]) == (
        "2",
        "0",
        "1",
        "7",
    )
    assert summary["EventList"] == "start"
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


# --- Originate ---------------------------------------------------------------------------------


class FakeOriginator:
    """Stands in for the AGI half: creates the outgoing channel and reports it."""

    def __init__(self, pbx: Pbx, *, answer: bool = True) -> None:
        self.pbx, self.answer = pbx, answer
        self.requests: list[OriginateRequest] = []

    async def originate(self, request: OriginateRequest) -> OriginateResult:
        self.requests.append(request)
        clock, server = self.pbx.clock, self.pbx.server
        sequence = clock.local_sequence()
        uniqueid = clock.uniqueid()
        channel = SimChannel(
            f"{request.channel}-{sequence};1",
            uniqueid,
            uniqueid,
            request.context,
            request.exten,
            request.priority,
        )
        server.emit("Newchannel", channel.headers())
        await clock.sleep(0.5)
        if not self.answer:
            server.emit(
                "Hangup", [*channel.headers(), ("Cause", "16"), ("Cause-txt", "Normal Clearing")]
            )
            return OriginateResult(answered=False, reason=0)
        channel.state = ChannelState.UP
        server.emit("Newstate", channel.headers())
        server.emit(
            "Newexten",
            [*channel.headers(), ("Extension", "s"), ("Application", "Wait"), ("AppData", "25")],
        )
        return OriginateResult(True, 4, channel.name, channel.uniqueid)


ORIGINATE = (
    ("Channel", "Local/88001000001@from-pstn"),
    ("Context", "test-caller"),
    ("Exten", "s"),
    ("Priority", "1"),
    ("CallerID", '"Иванов Иван" <79161234567>'),
    ("Variable", "A=1,B=2"),
    ("Variable", "C=3"),
)


async def test_originate_async_answers_then_reports_the_call(pbx: Pbx) -> None:
    originator = FakeOriginator(pbx)
    pbx.server.originator = originator
    client = await logged_in(pbx)
    answer = await client.action("Originate", "o1", *ORIGINATE, ("Async", "true"))
    assert answer.headers == (
        ("Response", "Success"),
        ("ActionID", "o1"),
        ("Message", "Originate successfully queued"),
    )
    await pbx.clock.advance(1)
    await client.until_event("OriginateResponse")
    assert [m.name for m in client.events()][-4:] == [
        "Newchannel",
        "Newstate",
        "Newexten",
        "OriginateResponse",
    ]
    response = client.find("OriginateResponse")
    assert response is not None
    assert keys(response) == keys(transcript_event("ami-ivr-call.txt", "OriginateResponse"))
    assert response.as_dict() | {"Uniqueid": "-"} == {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "ActionID": "o1",
        "Response": "Success",
        "Channel": "Local/88001000001@from-pstn-00000000;1",
        "Context": "test-caller",
        "Exten": "s",
        "Reason": "4",
        "Uniqueid": "-",
        "CallerIDNum": "79161234567",
        "CallerIDName": "Иванов Иван",
    }
    request = originator.requests[0]
    assert request.variables == (("A", "1"), ("B", "2"), ("C", "3"))
    assert (request.caller_id_num, request.caller_id_name) == ("79161234567", "Иванов Иван")


async def test_originate_without_a_dialplan_fails_like_asterisk(pbx: Pbx) -> None:
    client = await logged_in(pbx)
    await client.action(
        "Originate",
        "orig-agi-down",
        ("Channel", "Local/88001000002@from-pstn"),
        *ORIGINATE[1:4],
        ("CallerID", '"Down Test" <79160000001>'),
        ("Async", "yes"),
    )
    await client.until_event("OriginateResponse")
    ours = client.find("OriginateResponse")
    theirs = transcript_event("ami-agi-server-down.txt", "OriginateResponse")
    assert ours is not None
    assert ours.headers == theirs.headers


async def test_originate_sync_and_errors(pbx: Pbx) -> None:
    pbx.server.originator = FakeOriginator(pbx, answer=False)
    client = await logged_in(pbx)
    pending = asyncio.create_task(client.action("Originate", "sync", *ORIGINATE))
    await pbx.clock.advance(1)
    failed = await pending
    assert (failed.name, failed["Message"]) == ("Error", "Originate failed")
    no_channel = await client.action("Originate", "bad", ("Exten", "s"))
    assert (no_channel.name, no_channel["Message"]) == ("Error", "Channel not specified")
    assert client.find("OriginateResponse") is None


async def test_hangup_ends_a_callback_conference_as_asterisk_answers(pbx: Pbx) -> None:
    """manager.c's three answers; both legs of one ConfBridge end (end_marked_any)."""
    originator = ScriptedOriginator(sink=pbx.server)
    pbx.server.originator = originator
    client = await logged_in(pbx)
    bridge = ("Variable", "CALLBACK_BRIDGE=hotline-callback-7")
    for n, (channel, context) in enumerate(
        [
            ("PJSIP/1001", "hotline-callback-operator"),
            ("Local/79161234567@x", "hotline-callback-caller"),
        ]
    ):
        legs = (("Channel", channel), ("Context", context), ("Exten", "s"), bridge)
        await client.action("Originate", f"o{n}", *legs, ("Async", "true"))
        await client.until(lambda n=n: len(client.events("OriginateResponse")) == n + 1)
    operator, citizen = (e["Channel"] for e in client.events("OriginateResponse"))

    missing = await client.action("Hangup", "h0")
    assert (missing.name, missing["Message"]) == ("Error", "No channel specified")
    unknown = await client.action("Hangup", "h1", ("Channel", "PJSIP/9999-00000001"))
    assert (unknown.name, unknown["Message"]) == ("Error", "No such channel")
    done = await client.action("Hangup", "h2", ("Channel", citizen))
    assert done.headers == (
        ("Response", "Success"),
        ("ActionID", "h2"),
        ("Message", "Channel Hungup"),
    )
    await client.until(lambda: len(client.events("Hangup")) == 2)
    assert [e["Channel"] for e in client.events("Hangup")] == [citizen, operator]
    again = await client.action("Hangup", "h3", ("Channel", citizen))
    assert again["Message"] == "No such channel"


async def test_core_show_channels_follows_the_events(pbx: Pbx) -> None:
    pbx.server.originator = FakeOriginator(pbx)
    client = await logged_in(pbx)
    await client.action("Originate", "o", *ORIGINATE, ("Async", "1"))
    await pbx.clock.advance(3)
    listing = await client.action("CoreShowChannels", "ch")
    assert listing["Message"] == "Channels will follow"
    await client.until_event("CoreShowChannelsComplete")
    row = client.find("CoreShowChannel")
    assert row is not None
    assert keys(row) == keys(transcript_event("ami-queue-call.txt", "CoreShowChannel"))
    assert (row["ActionID"], row["Application"], row["ApplicationData"], row["Duration"]) == (
        "ch",
        "Wait",
        "25",
        "00:00:03",
    )
    channel = row.as_dict()
    pbx.server.emit(
        "Hangup",
        [
            *[(k, channel[k]) for k in keys(row)[2:16]],
            ("Cause", "16"),
            ("Cause-txt", "Normal Clearing"),
        ],
    )
    await client.action("CoreShowChannels", "ch2")
    await client.until(lambda: len(client.events("CoreShowChannelsComplete")) == 2)
    assert client.events("CoreShowChannelsComplete")[1]["ListItems"] == "0"


async def test_device_state_list_replays_the_cache_to_the_asker_only(pbx: Pbx) -> None:
    """Asterisk 22's res_manager_devicestate.c: the list of the device-state cache, each item a
    ``DeviceStateChange`` with the ActionID (and no Privilege); other clients see nothing."""
    pbx.queues.devices.update("PJSIP/2001", DeviceState.UNAVAILABLE)  # a phone that left
    bystander = await logged_in(pbx)
    client = await logged_in(pbx)
    answer = await client.action("DeviceStateList", "ds")
    assert answer.headers[1:] == (
        ("ActionID", "ds"),
        ("EventList", "start"),
        ("Message", "Device State Changes will follow"),
    )
    await client.until_event("DeviceStateListComplete")
    items = client.events("DeviceStateChange")
    assert {(m["Device"], m["State"]) for m in items} == {
        (device, state.name) for device, state in pbx.queues.devices.known()
    }
    assert ("PJSIP/2001", "UNAVAILABLE") in {(m["Device"], m["State"]) for m in items}
    assert all(keys(m)[:2] == ["Event", "ActionID"] and m["ActionID"] == "ds" for m in items)
    complete = client.find("DeviceStateListComplete")
    assert complete is not None and complete.headers == (
        ("Event", "DeviceStateListComplete"),
        ("ActionID", "ds"),
        ("EventList", "Complete"),
        ("ListItems", str(len(items))),
    )
    await bystander.sync()
    assert bystander.events("DeviceStateChange") == []


# --- hostile input -----------------------------------------------------------------------------


async def bystander_still_served(pbx: Pbx, bystander: Client, marker: str) -> None:
    pbx.server.emit("UserEvent", [("UserEvent", marker)])
    await bystander.until(
        lambda: any(m.get("UserEvent") == marker for m in bystander.events("UserEvent"))
    )
    assert (await bystander.action("Ping", f"ping-{marker}"))["Ping"] == "Pong"


async def test_garbage_closes_only_that_client(pbx: Pbx) -> None:
    bystander = await logged_in(pbx)
    for garbage in (
        b"\x00\xff\xfe binary\r\n\r\n",
        b"no colon here\r\n\r\n",
        b"Action: Ping\r\n  Indented: x\r\n\r\n",
    ):
        attacker = await logged_in(pbx)
        await attacker.send_raw(garbage)
        await attacker.until_eof()
        await bystander_still_served(pbx, bystander, f"after-{garbage[:4]!r}")
    assert pbx.server.session_count == 1


async def test_oversize_message_closes_only_that_client(pbx: Pbx) -> None:
    bystander = await logged_in(pbx)
    attacker = await pbx.connect()  # no login needed to be a nuisance
    with contextlib.suppress(ConnectionError):
        await attacker.send_raw(b"Action: Ping\r\nX: " + b"A" * (70 * 1024))
    await attacker.until_eof()
    await bystander_still_served(pbx, bystander, "after-oversize")


async def test_header_injection_is_refused(pbx: Pbx) -> None:
    bystander = await logged_in(pbx)
    attacker = await logged_in(pbx)
    # A bare LF is not a line end for the parser: echoed in the response it would become one.
    await attacker.send_raw(b"Action: Ping\r\nActionID: x\nEvent: Spoofed\r\n\r\n")
    await attacker.until_eof()
    assert b"Spoofed" not in attacker.raw
    # A value from inside the simulator cannot smuggle a line either: the event is dropped.
    pbx.server.emit("UserEvent", [("UserEvent", "evil\r\nEvent: Spoofed")])
    await bystander_still_served(pbx, bystander, "after-injection")
    assert b"Spoofed" not in bystander.raw


async def test_a_client_that_does_not_read_is_dropped() -> None:
    clock = SteppedClock(BOOT, boot=BOOT)
    users = load_manager_conf(CONF / "manager.conf")
    async with AmiServer(clock=clock, users=users, port=0, max_backlog_bytes=64 * 1024) as server:
        sleeper = await Client.connect(server)
        await sleeper.login()
        big = [("UserEvent", "flood"), ("Body", "x" * 8000)]
        for _ in range(3000):  # 24 MB: more than the kernel's socket buffers hold
            server.emit("UserEvent", big)
        async with asyncio.timeout(GUARD):
            # The handler's clean-up runs on a later loop turn; nothing signals it.
            while server.session_count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        with contextlib.suppress(ConnectionError):
            await sleeper.until_eof()
        assert len(sleeper.raw) < 24_000_000
        await sleeper.close()


async def test_many_clients_receive_the_same_events(pbx: Pbx) -> None:
    clients = await asyncio.gather(*(logged_in(pbx) for _ in range(30)))
    caller = queue_entry_caller()
    call = asyncio.create_task(pbx.queues.enter(caller, "info", "t", 40))
    await pbx.clock.run_until_complete(call)
    assert call.result() == "ANSWERED"
    pbx.server.emit("UserEvent", [("UserEvent", "end")])

    def call_events(client: Client) -> list[tuple[tuple[str, str], ...]]:
        return [m.headers for m in client.events() if m.get("Privilege") != "security,all"]

    for client in clients:
        await client.until_event("UserEvent")
    first = call_events(clients[0])
    assert len(first) > 40 and "AgentComplete" in {h[0][1] for h in first}
    assert all(call_events(client) == first for client in clients[1:])


async def test_connection_limits_do_not_leak_sessions(pbx: Pbx) -> None:
    clients = [await pbx.connect() for _ in range(10)]
    for client in clients:
        await client.close()
    bystander = await logged_in(pbx)
    await bystander_still_served(pbx, bystander, "after-churn")
    assert pbx.server.session_count == 1
