"""The simulator's AGI half against tiny FastAGI servers written here over raw sockets.

The centrepiece replays agi-ivr-session.txt from the Asterisk side: a scripted server sends
exactly the transcript's commands, the caller is the ``[test-caller]`` context of
extensions.conf, and every byte the simulator writes must equal what Asterisk 22 wrote.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from transcripts import DATA, load, stream

from hotline.agi.protocol import (
    HANGUP,
    AgiReply,
    ReplyReader,
    parse_env_line,
)
from hotline.ami.protocol import AmiMessage, AmiParser
from hotline.clock import InstantCallClock, ScaledCallClock
from pbxsim.callers import (
    CallerScript,
    CallerScriptError,
    CallSpec,
    script_from_dialplan,
    send_dtmf,
)
from pbxsim.channel import AgiChannel
from pbxsim.fastagi import (
    AgiRequestSpec,
    AgiSessionResult,
    FastAgiConfig,
    LineSplitter,
    agi_environment,
    run_agi,
)
from pbxsim.model import ChannelState, SimChannel

# Only keeps a broken test from hanging; no test asserts how long anything took.
GUARD = 10.0
IVR_URL = "agi://127.0.0.1:4573/hotline?did=88001000001"
IVR_CHANNEL = "Local/88001000001@from-pstn-00000000;2"


@dataclass
class RecordingSink:
    events: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.events.append((event, headers))

    def named(self, *names: str) -> list[tuple[str, dict[str, str]]]:
        return [(e, dict(h)) for e, h in self.events if not names or e in names]


# --- tiny FastAGI servers ----------------------------------------------------------------


@dataclass
class Conversation:
    """What a test server saw: every byte from the simulator, and the replies it parsed."""

    received: bytearray = field(default_factory=bytearray)
    env: dict[str, str] = field(default_factory=dict)
    replies: list[AgiReply] = field(default_factory=list)
    hangups: int = 0


class Peer:
    """The server's end of one FastAGI connection, reading like a controller would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.talk = Conversation()
        self._replies = ReplyReader()

    async def line(self) -> str | None:
        raw = await self.reader.readline()
        self.talk.received += raw
        return raw.decode().removesuffix("\n") if raw else None

    async def read_env(self) -> None:
        while line := await self.line():
            key, value = parse_env_line(line)
            self.talk.env[key] = value

    async def reply(self) -> AgiReply | None:
        """The next reply, counting HANGUP notices on the way; None at EOF."""
        while (line := await self.line()) is not None:
            item = self._replies.feed(line)
            if item is HANGUP:
                self.talk.hangups += 1
            elif isinstance(item, AgiReply):
                self.talk.replies.append(item)
                return item
        return None

    async def send(self, data: bytes) -> AgiReply | None:
        self.writer.write(data)
        await self.writer.drain()
        return await self.reply()

    async def drain_rest(self) -> None:
        """Read until the simulator closes, counting HANGUP notices."""
        while (line := await self.line()) is not None:
            self.talk.hangups += line == "HANGUP"


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def fastagi_server(script: Script) -> AsyncIterator[tuple[int, list[Conversation]]]:
    talks: list[Conversation] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        talks.append(peer.talk)
        try:
            await peer.read_env()
            await script(peer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, talks
    finally:
        server.close()
        await server.wait_closed()


def ivr_channel() -> SimChannel:
    return SimChannel(
        name=IVR_CHANNEL,
        uniqueid="1795563091.1",
        linkedid="1795563091.0",
        context="from-pstn",
        exten="88001000001",
        priority=2,
        state=ChannelState.RING,
    )


def make_agi(
    script: CallerScript,
    *,
    sink: RecordingSink | None = None,
    caller: CallSpec | None = None,
    clock: InstantCallClock | ScaledCallClock | None = None,
) -> AgiChannel:
    caller = caller or CallSpec("88001000001", "79161234567", "Иванов Иван")
    return AgiChannel(
        ivr_channel(),
        script,
        clock=clock or InstantCallClock(idle_grace=0.05),
        sink=sink,
        caller_num=caller.caller_num,
        caller_name=caller.caller_name,
    )


async def session(
    agi: AgiChannel, script: Script, config: FastAgiConfig | None = None
) -> tuple[AgiSessionResult, Conversation]:
    async with fastagi_server(script) as (port, talks):
        request = AgiRequestSpec(url=IVR_URL, threadid=140365331818176)
        result = await asyncio.wait_for(run_agi(agi, request, "127.0.0.1", port, config), GUARD)
    assert len(talks) == 1
    return result, talks[0]


def commands(*lines: str) -> Script:
    """A server that sends these lines one by one, each after the previous reply, then
    closes."""

    async def script(peer: Peer) -> None:
        for line in lines:
            await peer.send(f"{line}\n".encode())

    return script


# --- the transcript ----------------------------------------------------------------------


def test_caller_script_from_extensions_conf() -> None:
    script = extensions_conf_caller()
    assert [p.digit for p in script.presses] == list("1123456#5")
    # SendDTMF: 100 ms lead, 100 ms tone, 250 ms gap; ami-ivr-call.txt shows the same spacing
    assert script.presses[0].begin == pytest.approx(2.1)
    assert script.presses[2].begin - script.presses[1].begin == pytest.approx(0.35)
    assert script.hangup_at == pytest.approx(22.45)


def test_caller_script_matches_the_ami_transcript_timing() -> None:
    """The [test-caller] timeline, shifted to the AGI's start, lands where Asterisk's DTMF
    events did (within the few milliseconds real Asterisk spends between steps)."""
    messages = ami_messages("ami-ivr-call.txt")
    agi_start = 0.804  # AGIExecStart of ANSWER, the AGI connect
    ends = [at for at, m in messages if m.get("Event") == "DTMFEnd"]
    expected = [p.end + agi_start for p in extensions_conf_caller().presses]
    assert ends == pytest.approx(expected, abs=0.025)


def test_caller_hangs_up_when_the_transcript_says() -> None:
    messages = ami_messages("ami-ivr-call.txt")
    hangup = next(at for at, m in messages if m.get("Event") == "HangupRequest")
    assert extensions_conf_caller().hangup_at == pytest.approx(hangup - 0.804, abs=0.025)


async def replay_ivr_session(
    sink: RecordingSink,
) -> tuple[AgiSessionResult, Conversation, list[bytes]]:
    """The controller's side of agi-ivr-session.txt sent to the simulator, line by line."""
    to_send = [b.data for b in load("agi-ivr-session.txt") if b.direction == "server->asterisk"]

    async def script(peer: Peer) -> None:
        for line in to_send:
            await peer.send(line)

    result, talk = await session(make_agi(extensions_conf_caller(), sink=sink), script)
    return result, talk, to_send


async def test_replays_agi_ivr_session_byte_for_byte() -> None:
    blocks = load("agi-ivr-session.txt")
    sink = RecordingSink()
    result, talk, to_send = await replay_ivr_session(sink)

    assert bytes(talk.received) == stream(blocks, "asterisk->server")
    assert result.status == "HANGUP"
    assert result.ended_by == "controller"
    assert result.commands == len(to_send)


async def test_replay_reports_the_events_asterisk_reported() -> None:
    """AGIExec*, VarSet, DTMF*, Newstate and HangupRequest of the IVR channel, header for
    header as in ami-ivr-call.txt (CommandIds are random in both, so only paired up)."""
    sink = RecordingSink()
    _, _, to_send = await replay_ivr_session(sink)

    kinds = {
        "AGIExecStart",
        "AGIExecEnd",
        "VarSet",
        "DTMFBegin",
        "DTMFEnd",
        "Newstate",
        "HangupRequest",
    }
    expected = [
        m.headers[2:]
        for _, m in ami_messages("ami-ivr-call.txt")
        if m.get("Event") in kinds and m.get("Channel") == IVR_CHANNEL
    ]
    got = [tuple(h) for e, h in sink.events if e in kinds]
    assert strip_ids(got) == strip_ids(expected)
    starts = {dict(h)["CommandId"] for e, h in sink.events if e == "AGIExecStart"}
    ends = {dict(h)["CommandId"] for e, h in sink.events if e == "AGIExecEnd"}
    assert starts == ends and len(starts) == len(to_send)


def extensions_conf_caller() -> CallerScript:
    conf = (DATA / "conf" / "extensions.conf").read_text()
    section = conf.split("[test-caller]", 1)[1].split("\n[", 1)[0]
    steps = [line for line in section.splitlines() if "=>" in line]
    return script_from_dialplan(steps)


def ami_messages(name: str) -> list[tuple[float, AmiMessage]]:
    parser = AmiParser(expect_greeting=True)
    out = []
    for block in load(name):
        if block.direction == "asterisk->client":
            out += [(block.at, m) for m in parser.feed(block.data) if isinstance(m, AmiMessage)]
    return out


def strip_ids(events: list[tuple[tuple[str, str], ...]]) -> list[tuple[tuple[str, str], ...]]:
    return [tuple(h for h in headers if h[0] != "CommandId") for headers in events]


# --- the environment ---------------------------------------------------------------------


def test_environment_keys_and_order_match_the_transcript() -> None:
    first = load("agi-ivr-session.txt")[0]
    expected = [parse_env_line(line) for line in first.data.decode().split("\n") if line]
    env = agi_environment(make_agi(CallerScript()), AgiRequestSpec(url=IVR_URL))
    assert list(env.items()) == expected


async def test_hostile_caller_id_stays_on_one_line() -> None:
    name = 'Ива"нов\nagi_network: no\r\n\nANSWER\x00'
    caller = CallSpec("88001000001", "7916\n1234567", name)
    _, talk = await session(make_agi(CallerScript(), caller=caller), commands("NOOP"))
    env_block = bytes(talk.received).split(b"\n\n", 1)[0].decode()
    lines = env_block.split("\n")
    assert len(lines) == 22 and all(re.fullmatch(r"agi_[a-z0-9_]+: .*", x) for x in lines)
    assert talk.env["agi_calleridname"] == 'Ива"нов agi_network: no   ANSWER '
    assert talk.env["agi_callerid"] == "7916 1234567"
    assert talk.env["agi_network"] == "yes"
    assert [r.result for r in talk.replies] == ["0"]


async def test_no_caller_id_is_unknown_and_not_available() -> None:
    caller = CallSpec("88001000001")
    _, talk = await session(make_agi(CallerScript(), caller=caller), commands())
    assert talk.env["agi_callerid"] == "unknown"
    assert talk.env["agi_calleridname"] == "unknown"
    assert talk.env["agi_callingpres"] == "67"


async def test_agi_arguments_follow_the_thread_id() -> None:
    agi = make_agi(CallerScript())
    request = AgiRequestSpec(url="agi://h/", args=("a b", "ß"))
    env = agi_environment(agi, request)
    assert "agi_network_script" not in env
    assert list(env)[-3:] == ["agi_threadid", "agi_arg_1", "agi_arg_2"]
    assert env["agi_arg_2"] == "ß"


# --- sessions that go wrong ----------------------------------------------------------------


async def test_server_not_listening_is_agistatus_failure() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    sink = RecordingSink()
    agi = make_agi(CallerScript(), sink=sink)
    result = await run_agi(agi, AgiRequestSpec(url=IVR_URL), "127.0.0.1", port)
    assert (result.status, result.connected, result.ended_by) == (
        "FAILURE",
        False,
        "connect_failed",
    )
    assert [(h["Variable"], h["Value"]) for _, h in sink.named("VarSet")] == [
        ("AGISTATUS", "FAILURE")
    ]


async def test_server_closing_early_is_success_and_gets_a_last_hangup() -> None:
    async def script(peer: Peer) -> None:
        await peer.send(b"ANSWER\n")
        peer.writer.write_eof()  # half-close: we can still read what Asterisk sends last
        await peer.drain_rest()

    result, talk = await session(make_agi(CallerScript(hangup_at=60)), script)
    assert (result.status, result.ended_by, result.commands) == ("SUCCESS", "controller", 1)
    assert bytes(talk.received).endswith(b"200 result=0\nHANGUP\n")


async def test_server_closing_before_any_command() -> None:
    async def script(peer: Peer) -> None:
        return None

    result, talk = await session(make_agi(CallerScript(hangup_at=60)), script)
    assert (result.status, result.commands) == ("SUCCESS", 0)
    assert talk.env["agi_uniqueid"] == "1795563091.1"


async def test_patience_hangup_mid_playback() -> None:
    script = CallerScript(hangup_at=5.0)
    sink = RecordingSink()
    result, talk = await session(
        make_agi(script, sink=sink), commands("ANSWER", 'STREAM FILE demo-congrats ""', "NOOP")
    )
    # 4.5 s of a 20 s prompt: 36000 samples, the 226th 20 ms frame was being read
    assert [r.result for r in talk.replies] == ["0", "-1", "0"]
    assert talk.replies[1].endpos == 36160
    assert talk.hangups == 1
    assert result.status == "HANGUP"
    assert ("PLAYBACKSTATUS", "FAILED") in [
        (h["Variable"], h["Value"]) for _, h in sink.named("VarSet")
    ]


async def test_hangup_during_the_nth_command() -> None:
    script = CallerScript(hangup_during_command=2)
    _, talk = await session(
        make_agi(script), commands("ANSWER", 'STREAM FILE beep ""', "STREAM FILE beep x")
    )
    assert talk.replies[1] == AgiReply(code=200, result="-1", endpos=1760)
    assert talk.replies[2].code == 511
    assert talk.hangups == 1


async def test_hangup_after_n_commands_arrives_before_the_next_reply() -> None:
    script = CallerScript(hangup_after_commands=1)
    _, talk = await session(make_agi(script), commands("ANSWER", "GET VARIABLE X", "ANSWER"))
    data = bytes(talk.received).split(b"\n\n", 1)[1]
    assert data == (
        b"200 result=0\nHANGUP\n200 result=0\n"
        b"511 Command Not Permitted on a dead channel or intercept routine\n"
    )


async def test_hangup_while_the_controller_thinks_is_announced_at_once() -> None:
    # What the controller saw, asserted here: the server swallows an assert in its callback.
    seen: list[object] = []

    async def script(peer: Peer) -> None:
        await peer.send(b"ANSWER\n")
        seen.append(await peer.line())  # nothing sent: the simulator must speak first
        seen.append(await peer.send(b"NOOP\n"))

    result, _ = await session(make_agi(CallerScript(hangup_at=3.0)), script)
    assert seen == ["HANGUP", AgiReply(code=200, result="0")]
    assert result.status == "HANGUP"


async def test_dead_channel_allows_what_res_agi_allows() -> None:
    _, talk = await session(
        make_agi(CallerScript(hangup_at=0.2)),
        commands(
            "ANSWER",
            "SET VARIABLE A b",
            "GET VARIABLE A",
            'GET FULL VARIABLE "${CALLERID(num)}-${EXTEN}"',
            "VERBOSE x",
            "EXEC Set C=1",
            "EXEC Playback beep",
            "WAIT FOR DIGIT 10",
            "CHANNEL STATUS",
        ),
    )
    assert [(r.code, r.result, r.data) for r in talk.replies] == [
        (200, "-1", None),
        (200, "1", None),
        (200, "1", "b"),
        (200, "1", "79161234567-88001000001"),
        (200, "1", None),
        (200, "0", None),
        (200, "-1", None),
        (511, "", None),
        (511, "", None),
    ]


async def test_caller_gone_before_the_first_command() -> None:
    _, talk = await session(
        make_agi(CallerScript(hangup_after_commands=0)), commands("ANSWER", "NOOP")
    )
    assert bytes(talk.received).split(b"\n\n", 1)[1] == (
        b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n200 result=0\n"
    )


async def test_endless_wait_in_virtual_time_is_reported_not_hung() -> None:
    agi = make_agi(CallerScript())  # no hang-up, no keys: WAIT FOR DIGIT -1 never ends
    with pytest.raises(RuntimeError, match="never hangs up"):
        await session(agi, commands("ANSWER", "WAIT FOR DIGIT -1"))


async def test_dead_session_gives_up_when_the_controller_never_closes() -> None:
    async def script(peer: Peer) -> None:
        await peer.send(b"ANSWER\n")
        await peer.drain_rest()  # never sends again, never closes

    config = FastAgiConfig(dead_session_timeout=5.0)
    result, talk = await session(make_agi(CallerScript(hangup_at=1.0)), script, config)
    assert result.ended_by == "dead_timeout"
    assert talk.hangups == 2  # the notice, then the farewell when the simulator gives up


async def test_agiexitonhangup_ends_the_session_on_hangup() -> None:
    agi = make_agi(CallerScript(hangup_at=1.0))
    agi.channel.variables["AGIEXITONHANGUP"] = "yes"

    async def script(peer: Peer) -> None:
        await peer.send(b"ANSWER\n")
        await peer.drain_rest()

    result, talk = await session(agi, script)
    assert result.ended_by == "exit_on_hangup" and talk.hangups == 2


async def test_failure_line_ends_with_agistatus_failure() -> None:
    async def script(peer: Peer) -> None:
        peer.writer.write(b"FAILURE to launch\n")
        await peer.drain_rest()

    result, _ = await session(make_agi(CallerScript()), script)
    assert (result.status, result.ended_by) == ("FAILURE", "failure_line")


async def test_missing_prompt_fails_the_agi_while_the_caller_is_up() -> None:
    agi = make_agi(CallerScript(hangup_at=60))
    agi.sounds = type(agi.sounds)(missing=frozenset({"nope"}))
    result, talk = await session(agi, commands("ANSWER", 'STREAM FILE nope ""'))
    assert talk.replies[1] == AgiReply(code=200, result="-1", endpos=0)
    assert result.status == "FAILURE"


# --- lines -------------------------------------------------------------------------------


def test_line_splitter_cuts_like_fgets() -> None:
    lines = LineSplitter(8)
    lines.feed(b"NOOP\nABCDEFGHIJ\nX")
    assert lines.next_line() == b"NOOP\n"
    assert lines.next_line() == b"ABCDEFGH"
    assert lines.next_line() == b"IJ\n"
    assert lines.next_line() is None
    lines.feed_eof()
    assert lines.next_line() == b"X"
    assert lines.exhausted


async def test_overlong_line_is_two_commands() -> None:
    """res_agi reads 2047 bytes at most: the rest of a longer line is a command of its own."""

    async def script(peer: Peer) -> None:
        peer.writer.write(b"VERBOSE " + b"x" * 3000 + b"\n")
        await peer.reply()
        await peer.reply()

    sink = RecordingSink()
    _, talk = await session(make_agi(CallerScript(), sink=sink), script)
    assert [(r.code, r.result) for r in talk.replies] == [(200, "1"), (510, "")]
    lines = [h["Command"] for _, h in sink.named("AGIExecStart")]
    assert [len(line.encode()) for line in lines] == [2047, 3008 - 2047]


async def test_crlf_and_empty_lines_are_what_asterisk_makes_of_them() -> None:
    async def script(peer: Peer) -> None:
        await peer.send(b"NOOP\r\n")  # the \r sticks to the verb: unknown command
        await peer.send(b"\n")
        await peer.send(b"GET VARIABLE A\r\n")  # and to the last argument

    _, talk = await session(make_agi(CallerScript()), script)
    assert [(r.code, r.result) for r in talk.replies] == [(510, ""), (510, ""), (200, "0")]


# --- commands ----------------------------------------------------------------------------


async def run_commands(
    *lines: str, script: CallerScript | None = None, sink: RecordingSink | None = None
) -> list[bytes]:
    """Each command's reply bytes, HANGUP notices included."""
    agi = make_agi(script or CallerScript(hangup_at=600), sink=sink)
    out: list[bytes] = []

    async def server(peer: Peer) -> None:
        for line in lines:
            before = len(peer.talk.received)
            await peer.send(f"{line}\n".encode())
            out.append(bytes(peer.talk.received[before:]))

    await session(agi, server)
    return out


async def test_get_data_timeout_and_pound() -> None:
    replies = await run_commands(
        "ANSWER",
        "GET DATA beep 1000 4",
        "GET DATA beep 3000 4",
        "GET DATA beep 3000 4",
        script=CallerScript(send_dtmf(3.0, "12") + send_dtmf(8.0, "#"), hangup_at=600),
    )
    assert replies[1:] == [
        b"200 result= (timeout)\n",
        b"200 result=12 (timeout)\n",
        b"200 result=\n",
    ]


async def test_stream_file_escape_digit_cuts_the_prompt() -> None:
    replies = await run_commands(
        "ANSWER",
        'STREAM FILE demo-congrats "#5"',
        script=CallerScript(send_dtmf(1.0, "35"), hangup_at=600),
    )
    # '3' is heard and dropped, '5' ends it after 1.1 + 0.35 s: 1.05 s into the prompt
    assert replies[1] == b"200 result=53 endpos=8480\n"


async def test_digits_typed_while_the_controller_thinks_wait_in_the_queue() -> None:
    """In virtual time a controller silent for idle_grace lets the caller's timeline run on:
    the key press lands in the channel's queue and the next reading command takes it."""

    async def script(peer: Peer) -> None:
        await peer.send(b"ANSWER\n")
        await asyncio.sleep(0.3)  # thinking: six idle graces of the test clock
        await peer.send(b"WAIT FOR DIGIT 100\n")
        await peer.send(b"WAIT FOR DIGIT 100\n")

    agi = make_agi(CallerScript(send_dtmf(1.0, "7")))
    _, talk = await session(agi, script)
    assert [r.result for r in talk.replies] == ["0", "55", "0"]
    assert agi.clock.now() == pytest.approx(1.3)


async def test_keys_pressed_before_the_answer_never_reach_asterisk() -> None:
    async def script(peer: Peer) -> None:
        await asyncio.sleep(0.5)  # the controller dawdles before answering
        await peer.send(b"ANSWER\n")
        await peer.send(b"WAIT FOR DIGIT 100\n")

    sink = RecordingSink()
    agi = make_agi(CallerScript(send_dtmf(0.0, "55")), sink=sink)
    _, talk = await session(agi, script)
    assert [r.result for r in talk.replies] == ["0", "0"]
    assert not sink.named("DTMFBegin", "DTMFEnd")


async def test_record_file_dtmf_and_hangup() -> None:
    replies = await run_commands(
        "ANSWER",
        'RECORD FILE /tmp/x wav "#" 10000',
        "RECORD FILE /tmp/x wav # -1 BEEP",
        script=CallerScript(send_dtmf(1.0, "#"), hangup_at=5.0),
    )
    assert replies[1] == b"200 result=35 (dtmf) endpos=0\n"
    # the beep plays first (BEEP argument), then 4.5 s of recording until the hang-up
    assert replies[2] == b"200 result=-1 (hangup) endpos=0\n"


async def test_record_file_failure_forms_are_asterisk_22s(tmp_path: Path) -> None:
    """res_agi.c handle_recordfile: a file it cannot open is ``result=-1 (writefile)`` with
    no endpos and AGIExecEnd "Failure" (the issue's emergency line: the directory did not
    exist on the PBX host); an unknown format likewise; "#" during the beep is
    ``(randomerror)`` with the digit, and nothing is written."""
    sink = RecordingSink()
    missing = tmp_path / "no-such-dir" / "msg"
    replies = await run_commands(
        "ANSWER",
        f'RECORD FILE {missing} wav "#" 4000 0 BEEP s=2',
        f'RECORD FILE {tmp_path}/msg nosuchformat "#" 4000',
        f'RECORD FILE {tmp_path}/ok wav "#" 3000',
        sink=sink,
    )
    assert replies[1:] == [
        b"200 result=-1 (writefile)\n",
        b"200 result=-1 (writefile)\n",
        b"200 result=0 (timeout) endpos=0\n",
    ]
    ends = [dict(h) for e, h in sink.events if e == "AGIExecEnd"]
    assert [(e["ResultCode"], e["Result"]) for e in ends[1:]] == [
        ("-1", "Failure"),
        ("-1", "Failure"),
        ("200", "Success"),
    ]
    assert not missing.parent.exists()  # RECORD FILE creates no directory
    assert (tmp_path / "ok.wav").exists()

    cut = await run_commands(
        "ANSWER",
        f'RECORD FILE {tmp_path}/cut wav "#" 3000 0 BEEP',
        script=CallerScript(send_dtmf(0.1, "#"), hangup_at=60),
    )
    assert cut[1] == b"200 result=35 (randomerror) endpos=0\n"
    assert not (tmp_path / "cut.wav").exists()


async def test_usage_blocks() -> None:
    replies = await run_commands("WAIT FOR DIGIT", "GET DATA", "SET VARIABLE X")
    assert replies[0].startswith(b"520-Invalid command syntax.  Proper usage follows:\nWaits up")
    assert replies[1] == (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"Returns the digits received from the channel at the other end.\n"
        b"520 End of proper usage.\n"
    )
    assert replies[2].endswith(
        b"Sets a variable to the current channel.\n520 End of proper usage.\n"
    )


async def test_channel_status_and_variables() -> None:
    replies = await run_commands(
        "CHANNEL STATUS",
        "ANSWER",
        "CHANNEL STATUS",
        f"CHANNEL STATUS {IVR_CHANNEL}",
        "CHANNEL STATUS SIP/other",
        "GET VARIABLE UNIQUEID",
        "GET VARIABLE CALLERID(name)",
        "GET VARIABLE NOSUCH(x)",
        'GET FULL VARIABLE "${CALLERID(num)} ${NOPE}|${UNIQUEID}"',
        "GET FULL VARIABLE ${EXTEN} SIP/other",
        "SET VARIABLE CALLERID(name) Петров",
        "GET FULL VARIABLE ${CALLERID(name)}",
    )
    assert replies == [
        b"200 result=4\n",
        b"200 result=0\n",
        b"200 result=6\n",
        b"200 result=6\n",
        b"200 result=-1\n",
        b"200 result=1 (1795563091.1)\n",
        "200 result=1 (Иванов Иван)\n".encode(),
        b"200 result=0\n",
        b"200 result=1 (79161234567 |1795563091.1)\n",
        b"200 result=0\n",
        b"200 result=1\n",
        "200 result=1 (Петров)\n".encode(),
    ]


async def test_hangup_command_hangs_up_and_announces_it() -> None:
    sink = RecordingSink()
    replies = await run_commands("ANSWER", "HANGUP", "NOOP", "ANSWER", sink=sink)
    # the notice follows the reply, so it arrives ahead of the next one
    assert replies[1:] == [
        b"200 result=1\n",
        b"HANGUP\n200 result=0\n",
        b"511 Command Not Permitted on a dead channel or intercept routine\n",
    ]
    assert sink.named("SoftHangupRequest")[0][1]["Cause"] == "0"


async def test_database_is_shared_and_deltree_answers_like_res_agi() -> None:
    replies = await run_commands(
        "DATABASE PUT fam key v",
        "DATABASE GET fam key",
        "DATABASE DELTREE fam",
        "DATABASE GET fam key",
        "DATABASE DEL fam key",
    )
    assert replies == [
        b"200 result=1\n",
        b"200 result=1 (v)\n",
        b"200 result=0\n",  # res_agi's inverted answer for "deleted something"
        b"200 result=0\n",
        b"200 result=0\n",
    ]


class FakeQueues:
    def __init__(self, status: str) -> None:
        self.status = status
        self.calls: list[tuple[str, str, float | None]] = []

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str:
        self.calls.append((queue, options, max_wait))
        return self.status


async def test_exec_queue_goes_through_the_queue_service() -> None:
    sink = RecordingSink()
    agi = make_agi(CallerScript(hangup_at=100.0), sink=sink)
    agi.queues = FakeQueues("TIMEOUT")
    _, talk = await session(agi, commands("ANSWER", "EXEC Queue info,t,,,40"))
    assert talk.replies[1] == AgiReply(code=200, result="0")
    assert agi.queues.calls == [("info", "t", 40.0)]
    assert ("QUEUESTATUS", "TIMEOUT") in [
        (h["Variable"], h["Value"]) for _, h in sink.named("VarSet")
    ]


async def test_exec_queue_patience_runs_out_first() -> None:
    queues = FakeQueues("TIMEOUT")
    agi = make_agi(CallerScript(hangup_at=10.5))
    agi.queues = queues
    _, talk = await session(agi, commands("ANSWER", "EXEC Queue info,,,,40", "NOOP"))
    assert queues.calls == [("info", "", pytest.approx(10.0))]
    assert talk.replies[1] == AgiReply(code=200, result="-1")
    assert talk.hangups == 1


class SlowQueues:
    """A queue nobody answers: it waits out max_wait (in real seconds) unless cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str:
        try:
            await asyncio.sleep(10.0)
        except asyncio.CancelledError:
            self.cancelled = True  # the queue half turns this into QueueCallerAbandon
            raise
        return "TIMEOUT"


async def test_caller_hanging_up_in_a_queue_in_scaled_time_cancels_the_wait() -> None:
    queues = SlowQueues()
    # 20 simulated seconds are 0.2 s here: room for a loaded machine before EXEC Queue arrives
    agi = make_agi(CallerScript(hangup_at=20.0), clock=ScaledCallClock(0.01))
    agi.queues = queues
    _, talk = await session(agi, commands("ANSWER", "EXEC Queue info,,,,600", "NOOP"))
    assert queues.cancelled
    assert talk.replies[1] == AgiReply(code=200, result="-1")
    assert talk.hangups == 1
    assert "QUEUESTATUS" not in agi.channel.variables


async def test_answered_queue_call_ends_with_the_operator() -> None:
    agi = make_agi(CallerScript(hangup_at=100.0))
    agi.queues = FakeQueues("ANSWERED")
    _, talk = await session(agi, commands("ANSWER", "EXEC Queue info", "NOOP"))
    assert talk.replies[1] == AgiReply(code=200, result="-1")
    assert talk.hangups == 1 and not agi.caller_hung_up


async def test_scaled_clock_runs_in_real_time_scaled() -> None:
    clock = ScaledCallClock(0.01)
    script = CallerScript(send_dtmf(1.0, "4"), hangup_at=30.0)
    _, talk = await session(
        make_agi(script, clock=clock), commands("ANSWER", "WAIT FOR DIGIT 5000")
    )
    assert [r.result for r in talk.replies] == ["0", "52"]
    assert clock.now() >= 1.2  # real waits happened (a loaded machine only adds to them)


def test_scaled_clock_turns_simulated_seconds_into_scaled_real_ones() -> None:
    real = [1000.0]  # the loop's clock, moved by hand: no wall time involved
    clock = ScaledCallClock(0.01, time=lambda: real[0])
    assert clock.now() == 0.0
    real[0] += 0.5  # half a real second...
    assert clock.now() == pytest.approx(50.0)  # ...is fifty simulated ones
    assert clock.real_wait(80.0) == pytest.approx(0.3)  # 30 simulated seconds ahead
    assert clock.real_wait(10.0) == 0.0  # the past is not waited for


async def test_music_on_hold_is_reported_as_asterisk_reports_it() -> None:
    """ami-queue-call.txt: MusicOnHoldStart carries the channel block and Class; a stop with
    nothing playing reports nothing."""
    sink = RecordingSink()
    replies = await run_commands(
        "ANSWER",
        "EXEC StopMusicOnHold",
        "EXEC StartMusicOnHold",
        "EXEC StopMusicOnHold",
        "EXEC StartMusicOnHold hotline-hold",
        sink=sink,
    )
    assert replies[1:] == [b"200 result=0\n"] * 4
    moh = sink.named("MusicOnHoldStart", "MusicOnHoldStop")
    assert [(event, h.get("Class")) for event, h in moh] == [
        ("MusicOnHoldStart", "default"),
        ("MusicOnHoldStop", None),
        ("MusicOnHoldStart", "hotline-hold"),
    ]
    real = next(m for _, m in ami_messages("ami-queue-call.txt") if m.name == "MusicOnHoldStart")
    ours = next(h for e, h in sink.events if e == "MusicOnHoldStart")
    # the sink gets the headers that follow Event and Privilege
    assert [key for key, _ in ours] == [key for key, _ in real.headers][2:]


async def test_a_listening_caller_presses_each_key_when_a_menu_asks() -> None:
    """menu_keys: the first key goes to the first prompt that accepts it (not to one that
    does not), the next one only to a later command, whatever the prompts last."""
    replies = await run_commands(
        "ANSWER",
        'STREAM FILE demo-congrats "5"',  # does not accept "2": the caller waits
        'STREAM FILE demo-congrats "0123"',  # accepts: "2" pressed 0.5 s in, cuts it
        "WAIT FOR DIGIT 5000",  # the next key, 0.5 s after this one asks
        "WAIT FOR DIGIT 1000",  # nothing left to press
        script=CallerScript(hangup_at=600, menu_keys="20", reaction=0.5),
    )
    assert replies[1].startswith(b"200 result=0 endpos=")
    assert replies[2].startswith(b"200 result=50 endpos=")  # ord("2")
    assert replies[3:] == [b"200 result=48\n", b"200 result=0\n"]  # "0", then a timeout


def test_menu_keys_must_be_dtmf() -> None:
    with pytest.raises(CallerScriptError, match="not DTMF digits"):
        CallerScript(menu_keys="1x")
