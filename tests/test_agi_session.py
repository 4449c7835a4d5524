"""AgiSession: the commands of one call, against the bytes a real Asterisk 22 sent.

The centre is `test_replays_the_real_asterisk_session`: the server under test talks to a peer
that plays tests/data/asterisk/agi-ivr-session.txt over a socket, and every command the typed
session methods write must be the transcript's bytes. Ordering rules that a socket cannot show
deterministically (serialised commands, a cancelled command's late reply) are driven through
the session's feed methods with a list standing in for the socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from agi_peer import TRANSCRIPT, AsteriskPeer, Outcomes, env_bytes, eventually, metric, serving
from prometheus_client import CollectorRegistry, Histogram
from transcripts import load

from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    Quoted,
    ReplyReader,
    parse_command,
    parse_reply_line,
)
from hotline.agi.session import (
    NO_SUCH_APPLICATION,
    AgiCommandError,
    AgiConnectionLost,
    AgiReplyTimeout,
    AgiSession,
    AgiUsageError,
    CallerHungUp,
    Digits,
    Playback,
    Recording,
    SessionSupport,
)

T = TypeVar("T")
CALL_ID = "1795563091.1"  # agi_uniqueid in the transcript


async def caught(awaitable: Awaitable[T]) -> T | BaseException:
    """The result, or the exception, so a handler can record it for the test to assert."""
    try:
        return await awaitable
    except Exception as exc:
        return exc


# --- the real session, replayed ------------------------------------------------------------------


async def test_replays_the_real_asterisk_session(agi_logs: pytest.LogCaptureFixture) -> None:
    blocks = load(TRANSCRIPT)
    env, *exchange = blocks
    # The server must stop at the first 511: the transcript's later commands (another STREAM
    # FILE, two NOOPs) are what a server that ignores the hang-up would send.
    first_511 = next(i for i, b in enumerate(exchange) if b.data.startswith(b"511 "))
    results: dict[str, Any] = {}
    noop_refused = metric("hotline_agi_commands_total", command="NOOP", result="hangup")

    async def hotline(session: AgiSession) -> None:
        results["request"] = (session.call_id, session.request.script, session.request.query)
        results["caller_name"] = session.env["agi_calleridname"]
        results["answer"] = await session.answer()
        results["beep"] = await session.stream_file("beep", "12#")
        results["digits"] = await session.get_data("demo-enterkeywords", 4000, 6)
        results["say_digits"] = await session.say_digits("123")
        results["say_number"] = await session.say_number(21)
        await session.set_variable("HOTLINE_TOPIC", "регистрация и вход")
        results["topic"] = await session.get_variable("HOTLINE_TOPIC")
        results["name"] = await session.get_full_variable("${CALLERID(name)}")
        results["missing"] = await session.get_variable("NO_SUCH_VAR")
        results["status"] = await session.channel_status()
        # exec() always quotes its options (`EXEC Playback "beep"`, parsed by Asterisk exactly
        # as the transcript's unquoted form): the raw command() gives the transcript's bytes.
        results["playback"] = (await session.command("EXEC", "Playback", "beep")).value
        results["no_app"] = await session.exec("NoSuchApplication", "x")
        await session.verbose("probe message", 1)
        results["unknown"] = await caught(session.command("FOO BAR"))
        results["usage"] = await caught(session.command("SAY DIGITS"))
        results["digit"] = await session.wait_for_digit(3000)
        results["recording"] = await session.record_file(
            "/tmp/agi-rec", "wav", "#", 4000, silence_s=2
        )
        results["congrats"] = await session.stream_file("demo-congrats")
        results["congrats_reply"] = session.last_reply
        results["hung_up_after_-1"] = session.hung_up
        results["after_hangup"] = await caught(session.stream_file("demo-congrats"))
        results["hung_up"] = session.hung_up
        await session.noop()  # refused without a byte sent: CallerHungUp ends the call

    outcomes = Outcomes()
    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port, env.data)
        await peer.replay(exchange[: first_511 + 1])
        await peer.expect_eof()  # the server ends the session; Asterisk never would
        await peer.close()

    assert results["request"] == (CALL_ID, "hotline", {"did": "88001000001"})
    assert results["caller_name"] == "Иванов Иван"
    assert results["answer"] == 0
    assert results["beep"] == Playback(digit=None, endpos=3404)
    assert results["digits"] == "112345" and not results["digits"].timed_out
    assert results["say_digits"] is None and results["say_number"] is None
    assert results["topic"] == "регистрация и вход"
    assert results["name"] == "Иванов Иван"
    assert results["missing"] is None
    assert results["status"] == 6
    assert results["playback"] == 0
    assert results["no_app"] == NO_SUCH_APPLICATION == -2
    unknown = results["unknown"]
    assert type(unknown) is AgiCommandError
    assert unknown.reply == AgiReply(code=510, text="Invalid or unknown command")
    usage = results["usage"]
    assert isinstance(usage, AgiUsageError)
    assert usage.usage.startswith("Invalid command syntax.  Proper usage follows:\nSay a given")
    assert usage.usage.endswith("or <literal>-1</literal> on error/hangup.")
    assert results["digit"] == "5"  # result=53
    assert results["recording"] == Recording(digit=None, endpos=0, reason="timeout")
    assert results["recording"].timed_out
    # Hung up during playback: -1 is returned, not raised; the notice had not come yet.
    assert results["congrats"] == Playback(digit=None, endpos=66080)
    assert results["congrats_reply"].result == "-1"
    assert results["hung_up_after_-1"] is False
    # HANGUP arrived between the command and its 511: not taken as the reply.
    assert isinstance(results["after_hangup"], CallerHungUp)
    assert "511" in str(results["after_hangup"])
    assert results["hung_up"] is True
    after = metric("hotline_agi_commands_total", command="NOOP", result="hangup")
    assert after - noop_refused == 1
    assert outcomes.changed() == {"hangup": 1}
    ended = [r for r in agi_logs.records if r.getMessage().startswith("call ended")]
    assert len(ended) == 1
    assert ended[0].levelno == logging.INFO and ended[0].exc_info is None
    assert getattr(ended[0], "call_id", None) == CALL_ID
    assert not [r for r in agi_logs.records if r.exc_info]


# --- hang-up, over a socket --------------------------------------------------------------------


async def test_hangup_notice_before_a_200_reply_returns_the_reply_and_stops_the_call() -> None:
    results: dict[str, Any] = {}

    async def hotline(session: AgiSession) -> None:
        results["played"] = await session.stream_file("demo-congrats")
        results["hung_up"] = session.hung_up
        results["next"] = await caught(session.answer())

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert await peer.command() == 'STREAM FILE demo-congrats ""'
        await peer.send(b"HANGUP\n")
        await peer.send(b"200 result=-1 endpos=12000\n")
        await peer.expect_eof()  # ANSWER was never sent

    assert results["played"] == Playback(None, 12000)
    assert results["hung_up"] is True
    assert isinstance(results["next"], CallerHungUp)


async def test_hangup_notice_between_commands_refuses_the_next_one() -> None:
    results: dict[str, Any] = {}

    async def hotline(session: AgiSession) -> None:
        await session.answer()
        await eventually(lambda: session.hung_up)  # the notice, read while the handler works
        results["next"] = await caught(session.noop())

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert await peer.command() == "ANSWER"
        await peer.send(b"200 result=0\nHANGUP\n")
        await peer.expect_eof()  # NOOP was never sent

    assert isinstance(results["next"], CallerHungUp)


async def test_hangup_in_the_same_read_as_the_environment() -> None:
    results: dict[str, Any] = {}

    async def hotline(session: AgiSession) -> None:
        results["hung_up"] = session.hung_up
        results["answer"] = await caught(session.answer())

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port, env_bytes() + b"HANGUP\n")
        await peer.expect_eof()

    assert results["hung_up"] is True
    assert isinstance(results["answer"], CallerHungUp)


async def test_511_without_a_notice_is_a_hang_up_too() -> None:
    results: dict[str, Any] = {}

    async def hotline(session: AgiSession) -> None:
        results["first"] = await caught(session.answer())
        results["hung_up"] = session.hung_up

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert await peer.command() == "ANSWER"
        await peer.reply("511 Command Not Permitted on a dead channel or intercept routine")
        await peer.expect_eof()

    assert isinstance(results["first"], CallerHungUp)
    assert results["hung_up"] is True


async def test_asterisk_closing_mid_command_is_a_hang_up() -> None:
    results: dict[str, Any] = {}
    outcomes = Outcomes()

    async def hotline(session: AgiSession) -> None:
        results["error"] = await caught(session.stream_file("demo-congrats"))
        raise results["error"]

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.command()
        await peer.close()
        await eventually(outcomes.changed)

    assert isinstance(results["error"], AgiConnectionLost)
    assert isinstance(results["error"], CallerHungUp)
    assert outcomes.changed() == {"hangup": 1}


# --- replies -------------------------------------------------------------------------------------


async def test_get_data_keeps_the_timeout_marker() -> None:
    results: list[Digits] = []

    async def hotline(session: AgiSession) -> None:
        results.append(await session.get_data("enter-number", 3000, 11))
        results.append(await session.get_data("enter-number", 3000, 11))
        results.append(await session.get_data("enter-number", 3000, 11))

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        for reply in ["200 result= (timeout)", "200 result=12 (timeout)", "200 result=-1"]:
            assert await peer.command() == "GET DATA enter-number 3000 11"
            await peer.reply(reply)
        await peer.expect_eof()

    assert [(d, d.timed_out) for d in results] == [("", True), ("12", True), ("", False)]


async def test_typed_commands_write_what_asterisk_parses() -> None:
    """Byte forms the transcript does not show."""
    results: list[Any] = []

    async def hotline(session: AgiSession) -> None:
        results.append(await session.record_file("/tmp/x", "wav", "#*", -1, True, 3))
        results.append(await session.say_number(1, gender="f"))
        results.append(await session.get_full_variable("${EXTEN}", "PJSIP/1-0001"))
        results.append(await session.exec("Answer"))
        results.append(await session.exec("Queue", "general", "t", "", "", "1800"))
        results.append(await session.exec("Playback", "beep"))
        results.append(await session.wait_for_digit(-1))
        results.append(await session.hangup())

    exchange = [
        ('RECORD FILE /tmp/x wav "#*" -1 0 BEEP s=3', "200 result=35 (dtmf) endpos=8000"),
        ('SAY NUMBER 1 "" f', "200 result=0"),
        ("GET FULL VARIABLE ${EXTEN} PJSIP/1-0001", "200 result=1 (88001000001)"),
        ("EXEC Answer", "200 result=0"),
        ('EXEC Queue "general,t,,,1800"', "200 result=0"),
        ('EXEC Playback "beep"', "200 result=0"),
        ("WAIT FOR DIGIT -1", "200 result=0"),
        ("HANGUP", "200 result=1"),
    ]
    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        for command, reply in exchange:
            assert await peer.command() == command
            await peer.reply(reply)
        await peer.expect_eof()

    assert results == [Recording("#", 8000, "dtmf"), None, "88001000001", 0, 0, 0, None, 1]


async def test_caller_id_cannot_inject_a_command(agi_logs: pytest.LogCaptureFixture) -> None:
    # What a hostile far end can put in its caller name: quotes, backslashes, a CR (a line
    # feed cannot travel inside the environment line, so that one is tried from Python).
    evil = 'Ivan" ; HANGUP \\" \r EXEC System "rm -rf /'
    results: dict[str, Any] = {}

    async def hotline(session: AgiSession) -> None:
        results["name"] = session.env["agi_calleridname"]
        await session.set_variable("CALLER", session.env["agi_calleridname"])
        await session.set_variable("NOTE", "a\nEXEC System reboot\r\n\x00")

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port, env_bytes(calleridname=evil))
        first = await peer.read_line()
        await peer.reply("200 result=1")
        second = await peer.read_line()
        await peer.reply("200 result=1")
        await peer.expect_eof()

    assert results["name"] == evil
    for line in (first, second):
        assert line.count(b"\n") == 1 and line.endswith(b"\n") and b"\r" not in line
    assert parse_command(first[:-1].decode()) == [
        "SET",
        "VARIABLE",
        "CALLER",
        evil.replace("\r", " "),
    ]
    assert parse_command(second[:-1].decode()) == [
        "SET",
        "VARIABLE",
        "NOTE",
        "a EXEC System reboot   ",
    ]


async def test_garbage_reply_ends_the_call_as_a_protocol_error() -> None:
    results: dict[str, Any] = {}
    outcomes = Outcomes()

    async def hotline(session: AgiSession) -> None:
        results["answer"] = await caught(session.answer())

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        await peer.command()
        await peer.send(b"\xff\xfe not a reply\n")
        await peer.expect_eof()

    assert isinstance(results["answer"], AgiProtocolError)
    assert outcomes.changed() == {"protocol_error": 1}


async def test_no_reply_within_the_reply_timeout_ends_the_call() -> None:
    results: dict[str, Any] = {}
    outcomes = Outcomes()

    async def hotline(session: AgiSession) -> None:
        results["answer"] = await caught(session.answer())
        results["again"] = await caught(session.noop())

    async with serving({"hotline": hotline}, reply_timeout=0.2) as server:
        peer = await AsteriskPeer.connect(server.port)
        assert await peer.command() == "ANSWER"
        await peer.expect_eof()  # never answered: the server gives up and closes

    assert isinstance(results["answer"], AgiReplyTimeout)
    assert isinstance(results["again"], AgiReplyTimeout)  # the session stays unusable
    assert outcomes.changed() == {"idle_timeout": 1}


async def test_command_metrics_by_reply_kind() -> None:
    def count(command: str, result: str) -> float:
        return metric("hotline_agi_commands_total", command=command, result=result)

    kinds = [("EXEC", "failure"), ("FOO", "invalid"), ("SAY DIGITS", "usage"), ("NOOP", "ok")]
    before = {kind: count(*kind) for kind in kinds}
    latencies = metric("hotline_agi_command_seconds_count")

    async def hotline(session: AgiSession) -> None:
        await session.exec("NoSuchApplication")
        await caught(session.command("FOO"))
        await caught(session.command("SAY DIGITS"))
        await session.noop()

    async with serving({"hotline": hotline}) as server:
        peer = await AsteriskPeer.connect(server.port)
        for reply in [
            "200 result=-2",
            "510 Invalid or unknown command",
            "520 Usage",
            "200 result=0",
        ]:
            await peer.command()
            await peer.reply(reply)
        await peer.expect_eof()

    assert {kind: count(*kind) - before[kind] for kind in kinds} == dict.fromkeys(kinds, 1)
    assert metric("hotline_agi_command_seconds_count") - latencies == 4


# --- ordering, with a list for a socket ----------------------------------------------------------


class Wire:
    """The session's side of the socket: what it wrote, and a way to answer."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.failed = False
        self.session = AgiSession(
            {"agi_uniqueid": "1.1", "agi_network_script": "hotline"},
            write=self.lines.append,
            on_failure=self._fail,
            reply_timeout=30,
        )
        self.reader = ReplyReader()

    def _fail(self) -> None:
        self.failed = True

    def answer(self, line: str) -> None:
        item = self.reader.feed(line)
        if isinstance(item, AgiReply):
            self.session._deliver(item)
        elif item is not None:
            self.session._hangup_notice()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_commands_are_sent_one_at_a_time() -> None:
    wire = Wire()
    first = asyncio.create_task(wire.session.answer())
    second = asyncio.create_task(wire.session.channel_status())
    await settle()
    assert wire.lines == [b"ANSWER\n"]  # the second waits for the first reply
    wire.answer("200 result=0")
    await settle()
    assert wire.lines == [b"ANSWER\n", b"CHANNEL STATUS\n"]
    wire.answer("200 result=6")
    assert (await first, await second) == (0, 6)


async def test_a_cancelled_commands_reply_is_not_given_to_the_next() -> None:
    wire = Wire()
    slow = asyncio.create_task(wire.session.stream_file("long-prompt"))
    await settle()
    slow.cancel()
    await settle()
    status = asyncio.create_task(wire.session.channel_status())
    await settle()
    assert len(wire.lines) == 1  # the prompt still owns the wire until its reply
    wire.answer("200 result=0 endpos=96000")  # the orphan: dropped
    await settle()
    assert wire.lines[1] == b"CHANNEL STATUS\n"
    wire.answer("200 result=6")
    assert await status == 6
    assert slow.cancelled()


async def test_hangup_between_command_and_reply_is_never_the_reply() -> None:
    wire = Wire()
    status = asyncio.create_task(wire.session.channel_status())
    await settle()
    wire.answer("HANGUP")
    await settle()
    assert not status.done()  # panoramisk would have returned HANGUP here
    wire.answer("200 result=6")
    assert await status == 6
    assert wire.session.hung_up
    with pytest.raises(CallerHungUp):
        await wire.session.noop()
    assert wire.lines == [b"CHANNEL STATUS\n"]


@pytest.mark.parametrize("gone_by", ["HANGUP", "511 Command Not Permitted on a dead channel"])
async def test_commands_queued_or_asked_after_the_caller_left_are_refused_unsent(
    gone_by: str,
) -> None:
    refused_before = metric("hotline_agi_commands_total", command="NOOP", result="hangup")
    wire = Wire()
    first = asyncio.create_task(caught(wire.session.channel_status()))
    queued = asyncio.create_task(caught(wire.session.noop()))  # waits for the wire
    await settle()
    wire.answer(gone_by)
    if gone_by == "HANGUP":  # the notice is no reply: the status is still on the wire
        later = asyncio.create_task(caught(wire.session.noop()))
        await settle()
        assert isinstance(later.result(), CallerHungUp)  # refused at once, not queued
        wire.answer("200 result=6")
    status = await first
    assert status == 6 if gone_by == "HANGUP" else isinstance(status, CallerHungUp)
    assert isinstance(await queued, CallerHungUp)
    with pytest.raises(CallerHungUp):
        await wire.session.answer()
    assert wire.lines == [b"CHANNEL STATUS\n"]
    refused = metric("hotline_agi_commands_total", command="NOOP", result="hangup")
    assert refused - refused_before == (2 if gone_by == "HANGUP" else 1)


async def test_hangup_inside_a_usage_block() -> None:
    wire = Wire()
    bad = asyncio.create_task(wire.session.command("SAY DIGITS"))
    await settle()
    for line in ["520-Invalid command syntax.  Proper usage follows:", "HANGUP", "Usage text."]:
        wire.answer(line)
    wire.answer("520 End of proper usage.")
    with pytest.raises(AgiUsageError) as error:
        await bad
    assert error.value.usage == "Invalid command syntax.  Proper usage follows:\nUsage text."
    assert wire.session.hung_up


async def test_a_reply_nobody_asked_for_is_a_protocol_error() -> None:
    wire = Wire()
    with pytest.raises(AgiProtocolError):
        wire.session._deliver(parse_reply_line("200 result=0"))


async def test_connection_lost_fails_the_waiting_and_queued_commands() -> None:
    wire = Wire()
    first = asyncio.create_task(wire.session.answer())
    second = asyncio.create_task(wire.session.noop())
    await settle()
    wire.session._connection_lost()
    with pytest.raises(AgiConnectionLost):
        await first
    with pytest.raises(AgiConnectionLost):
        await second
    assert wire.lines == [b"ANSWER\n"]
    assert not wire.failed  # the connection is already gone: nothing to close


async def test_a_command_after_the_connection_was_lost_is_refused_unsent() -> None:
    wire = Wire()
    wire.session._connection_lost()  # with no command on the wire
    with pytest.raises(AgiConnectionLost):
        await asyncio.wait_for(wire.session.noop(), 5)
    assert wire.lines == []


async def test_a_bad_verb_is_refused_before_anything_is_sent() -> None:
    wire = Wire()
    with pytest.raises(ValueError):
        await wire.session.command("ANSWER\nEXEC System")
    assert wire.lines == []


# --- gone: the hang-up seen while no command runs ------------------------------------------------


async def test_gone_completes_on_a_hangup_notice_with_no_command_on_the_wire() -> None:
    wire = Wire()
    gone = wire.session.gone()
    await settle()
    assert not gone.done()
    wire.answer("HANGUP")  # Asterisk: the caller left while the controller sent nothing
    assert gone.done() and wire.session.hung_up
    assert wire.lines == []  # nothing had to be sent to learn it
    assert wire.session.gone() is gone


async def test_gone_completes_on_511_and_on_a_lost_connection_but_not_on_cancel() -> None:
    dead = Wire()
    command = asyncio.create_task(dead.session.noop())
    await settle()
    dead.answer("511 Command Not Permitted on a dead channel or intercept routine")
    with pytest.raises(CallerHungUp):
        await command
    assert dead.session.gone().done()

    lost = Wire()
    gone = lost.session.gone()
    lost.session._connection_lost()
    assert gone.done() and not lost.session.hung_up  # gone, though not by a notice

    handed_back = Wire()  # the server cancels the handler: the caller is still there
    gone = handed_back.session.gone()
    waiting = asyncio.create_task(asyncio.wait({gone}))
    await settle()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not gone.done()


async def test_gone_asked_after_the_hangup_is_already_done() -> None:
    wire = Wire()
    wire.answer("HANGUP")
    assert wire.session.gone().done()


def test_latencies_land_in_the_bucket_observe_would_pick() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("probe_seconds", "probe", buckets=(0.001, 0.005, 1), registry=registry)
    support = SessionSupport(immediate=False, histogram=histogram)
    for seconds in (0.0005, 0.001, 0.005, 0.0051, 2.0):  # on a bound: in that bound's bucket
        support.observe(seconds)
    support.answered("NOOP", 0.003)
    assert registry.get_sample_value("probe_seconds_count") == 0  # nothing before the flush
    support.flush()

    def bucket(bound: str) -> float | None:
        return registry.get_sample_value("probe_seconds_bucket", {"le": bound})

    assert [bucket(b) for b in ("0.001", "0.005", "1.0", "+Inf")] == [2, 4, 5, 6]
    total = registry.get_sample_value("probe_seconds_sum")
    assert total == pytest.approx(0.0005 + 0.001 + 0.005 + 0.0051 + 2 + 0.003)


def test_ok_commands_noted_after_a_flush_are_counted_at_the_next() -> None:
    # Sessions hold `note_ok`, bound to the support's list: a flush must empty that list,
    # not replace it.
    registry = CollectorRegistry()
    histogram = Histogram("probe_seconds", "probe", buckets=(0.001, 1), registry=registry)
    support = SessionSupport(immediate=False, histogram=histogram)
    note_ok = support.note_ok
    before = metric("hotline_agi_commands_total", command="PROBE OK", result="ok")
    for _ in range(2):
        note_ok(("PROBE OK", 0.5))
        support.flush()
    assert metric("hotline_agi_commands_total", command="PROBE OK", result="ok") - before == 2
    assert registry.get_sample_value("probe_seconds_bucket", {"le": "1.0"}) == 2
    assert registry.get_sample_value("probe_seconds_sum") == 1.0


async def test_a_session_without_a_server_counts_each_command_at_once() -> None:
    before = (
        metric("hotline_agi_commands_total", command="NOOP", result="ok"),
        metric("hotline_agi_command_seconds_count"),
    )
    wire = Wire()
    command = asyncio.create_task(wire.session.noop())
    await settle()
    wire.answer("200 result=0")
    await command
    assert (
        metric("hotline_agi_commands_total", command="NOOP", result="ok"),
        metric("hotline_agi_command_seconds_count"),
    ) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("send", "reply", "plain", "quoted"),
    [
        (
            lambda session, name: session.set_variable(name, "v"),
            "200 result=1",
            b"SET VARIABLE HOTLINE_PROBE v\n",
            b'SET VARIABLE "HOTLINE_PROBE" v\n',
        ),
        (
            lambda session, name: session.stream_file(name, "#"),
            "200 result=0 endpos=800",
            b'STREAM FILE HOTLINE_PROBE "#"\n',
            b'STREAM FILE "HOTLINE_PROBE" "#"\n',
        ),
    ],
    ids=["variable", "prompt"],
)
async def test_a_name_goes_out_as_given_each_time(
    send: Callable[[AgiSession, str], Coroutine[Any, Any, object]],
    reply: str,
    plain: bytes,
    quoted: bytes,
) -> None:
    # The same name as a plain word and as a Quoted one: two different lines, whichever
    # came first (the session remembers the formatted variable names and prompt lines, and a
    # Quoted name equals the plain one, so it must not share their entry).
    wire = Wire()
    for name in ("HOTLINE_PROBE", Quoted("HOTLINE_PROBE"), "HOTLINE_PROBE"):
        command = asyncio.create_task(send(wire.session, name))
        await settle()
        wire.answer(reply)
        await command
    assert wire.lines == [plain, quoted, plain]


# Values as a caller or an operator may supply them: each of the quoting's cases (none needed,
# a blank, a quote, a backslash, both, a line break, NUL, Unicode blanks that are not a space,
# characters that are neither printable nor blanks, empty, non-ASCII).
VARIABLE_VALUES = [
    "88001000001",
    "регистрация и вход",
    'Ivan" ; EXEC System "rm -rf /',
    "C:\\path\\",
    '\\"',
    'ends "quoted"',
    "a\nEXEC System reboot\r\n\x00",
    "tab\there",
    "non\u00a0breaking",
    "line\u2028separator",
    "zero\u200bwidth",
    "",
    " ",
    "Ёлка🎄",
]


async def test_a_variable_value_reaches_asterisk_as_itself_on_one_line() -> None:
    # Asterisk splits the line as `parse_command` does: every value comes back as it was
    # given (line breaks and NUL as blanks), and a value with nothing to escape goes bare.
    wire = Wire()
    for value in VARIABLE_VALUES:
        command = asyncio.create_task(wire.session.set_variable("HOTLINE_NOTE", value))
        await settle()
        wire.answer("200 result=1")
        await command
    for value, line in zip(VARIABLE_VALUES, wire.lines, strict=True):
        assert line.count(b"\n") == 1 and line.endswith(b"\n") and b"\r" not in line
        assert b"\x00" not in line
        expected = value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
        assert parse_command(line[:-1].decode()) == ["SET", "VARIABLE", "HOTLINE_NOTE", expected]
    assert wire.lines[0] == b"SET VARIABLE HOTLINE_NOTE 88001000001\n"
    assert wire.lines[-1] == "SET VARIABLE HOTLINE_NOTE Ёлка🎄\n".encode()


async def test_a_prompt_played_to_its_end_says_where_it_stopped() -> None:
    wire = Wire()
    played = []
    for reply in ("200 result=0 endpos=12640", "200 result=0", "200 result=35 endpos=800"):
        command = asyncio.create_task(wire.session.stream_file("beep", "#"))
        await settle()
        wire.answer(reply)
        played.append(await command)
    assert played == [Playback(None, 12640), Playback(None, 0), Playback("#", 800)]


async def test_a_command_left_without_a_reply_is_counted_by_why() -> None:
    def count(result: str) -> float:
        return metric("hotline_agi_commands_total", command="WAIT FOR DIGIT", result=result)

    before = {result: count(result) for result in ("timeout", "hangup", "ok")}
    silent, lost = Wire(), Wire()
    waiting = [asyncio.create_task(wire.session.wait_for_digit(1000)) for wire in (silent, lost)]
    await settle()
    assert silent.lines == lost.lines == [b"WAIT FOR DIGIT 1000\n"]
    silent.session.check_overdue(time.monotonic() + 31)  # the Wire's reply_timeout is 30 s
    lost.session._connection_lost()
    with pytest.raises(AgiReplyTimeout):
        await waiting[0]
    with pytest.raises(AgiConnectionLost):
        await waiting[1]
    counted = {result: count(result) - before[result] for result in before}
    assert counted == {"timeout": 1, "hangup": 1, "ok": 0}
