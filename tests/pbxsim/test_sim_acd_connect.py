"""The ACD's connect path replayed against agi-acd-dial-session.txt and
agi-acd-answered-session.txt (captured from a real Asterisk 22.10.1 by tests/asterisk/).

A FastAGI server written here sends the controller's commands of the capture to the
simulator, which runs ``Dial(PJSIP/1007,10,gU(hotline-acd-answered^<call>))`` to a simulated
seat; the shipped extensions.conf runs the ``U()`` subroutine on the operator's channel, whose
own FastAGI session comes back to the same server. Both sessions' bytes from the simulator must
equal what Asterisk wrote, masking only what differs from run to run (listed in `masked`).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from test_sim_agi import RecordingSink, ami_messages
from transcripts import load, stream

from hotline.clock import InstantCallClock, SystemClock
from pbxsim.call_dialplan import DialplanSubroutines, load_dialplan_interpreter
from pbxsim.callers import CallerScript
from pbxsim.channel import AgiChannel
from pbxsim.fastagi import AgiRequestSpec, run_agi
from pbxsim.model import ChannelState, SimChannel
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues
from pbxsim.sounds import SoundLibrary

GUARD = 10.0
DIAL = "agi-acd-dial-session.txt"
HOOK = "agi-acd-answered-session.txt"
# The real run's MixMonitor file: a directory of that test run, not of this one.
REAL_SPOOL = re.compile(rb"/tmp/astwork/\S+?/spool_dir/")


def masked(data: bytes) -> bytes:
    """What differs between two runs and is not the simulator's to copy: the FastAGI port of
    the URL, the operator channel's sequence number and uniqueid, the MixMonitor spool."""
    data = re.sub(rb"agi://127\.0\.0\.1:\d+/", b"agi://127.0.0.1:PORT/", data)
    data = re.sub(rb"(agi_channel: PJSIP/1007-)[0-9a-f]{8}", rb"\1SEQ", data)
    data = re.sub(rb"(agi_uniqueid: )(?!1796425902\.13\n)\S+", rb"\1ID", data)
    return REAL_SPOOL.sub(b"SPOOL/", data)


def caller_channel() -> SimChannel:
    """The caller's half as the capture shows it (agi_channel, agi_uniqueid...)."""
    return SimChannel(
        name="Local/88005000005@from-pstn-00000005;2",
        uniqueid="1796425902.13",
        linkedid="1796425902.12",
        context="from-pstn",
        exten="88005000005",
        priority=3,
        state=ChannelState.RING,
        language="ru",
    )


async def replay(tmp_path: Path, sink: RecordingSink | None = None) -> dict[str, bytes]:
    """Run the capture's controller side against the simulator; what the simulator wrote,
    per script name."""
    commands = [b.data for b in load(DIAL) if b.direction == "server->asterisk"]
    commands = [REAL_SPOOL.sub(f"{tmp_path}/".encode(), c) for c in commands]
    received: dict[str, bytearray] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = bytearray()
        while (line := await reader.readline()) not in (b"\n", b""):
            seen += line
        seen += line
        script = re.search(rb"agi_network_script: (\w[\w-]*)", seen)
        assert script is not None
        received[script[1].decode()] = seen
        if script[1] == b"hotline":
            for command in filter(None, commands):  # the last block is the close
                writer.write(command)
                await writer.drain()
                seen += await reader.readline()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    seat = {"PJSIP/1007": Operator(ring_delay=1.0, talk_time=5.0)}
    queues = Queues({}, SystemClock(), sink=sink, operators=seat)
    agi = AgiChannel(
        caller_channel(),
        CallerScript(hangup_at=60),
        clock=InstantCallClock(idle_grace=0.05),
        sink=sink,
        sounds=SoundLibrary(samples={"hotline/greeting-emergency": 31364}),
        queues=queues,
        caller_num="79161234567",
        caller_name="Тест",
        callee_dialplan=DialplanSubroutines(load_dialplan_interpreter(None, "127.0.0.1", port)),
    )
    url = f"agi://127.0.0.1:{port}/hotline?did=88005000005"
    request = AgiRequestSpec(url=url, threadid=140419298203328)
    try:
        await asyncio.wait_for(run_agi(agi, request, "127.0.0.1", port), GUARD)
    finally:
        server.close()
        await server.wait_closed()
        await queues.close()
    return {name: bytes(data) for name, data in received.items()}


async def test_dial_session_replies_as_asterisk_did(tmp_path: Path) -> None:
    sessions = await replay(tmp_path)
    expected = stream(load(DIAL), "asterisk->server")
    assert masked(sessions["hotline"]) == masked(expected)


async def test_answer_hook_environment_is_asterisks(tmp_path: Path) -> None:
    sessions = await replay(tmp_path)
    expected = stream(load(HOOK), "asterisk->server")
    assert masked(sessions["acd-answered"]) == masked(expected)


# --- the AMI side of Dial ------------------------------------------------------------------
# No AMI was captured for the ACD call itself; ami-confbridge-callback.txt holds the same
# application's events (app_dial on the citizen's Local leg dialling PJSIP/...@trunk), and the
# simulator's Dial must print them in the same order with the same headers. Not simulated:
# the dialled channel's NewCallerid/NewConnectedLine, its Newexten "AppDial (Outgoing Line)"
# and DIALEDPEER*/RINGTIME VarSets, the basic bridge (BridgeCreate/Enter/Leave) and the
# emptied DestExten Asterisk prints once the trunk answered.
DIAL_EVENTS = ("Newchannel", "DialBegin", "Newstate", "DialState", "DialEnd", "Hangup")


def real_dial() -> list[tuple[str, dict[str, str]]]:
    trunk = "PJSIP/trunk-00000001"
    return [
        (m.name, m.as_dict())
        for _, m in ami_messages("ami-confbridge-callback.txt")
        if m.name in DIAL_EVENTS and trunk in (m.get("Channel"), m.get("DestChannel"))
    ]


async def sim_dial(tmp_path: Path) -> list[tuple[str, dict[str, str]]]:
    sink = RecordingSink()
    await replay(tmp_path, sink)
    seat = next(h["Channel"] for e, h in sink.named("Newchannel"))
    return [
        (e, h)
        for e, h in sink.named(*DIAL_EVENTS)
        if seat in (h.get("Channel"), h.get("DestChannel"))
    ]


async def test_dial_prints_app_dials_events_in_order(tmp_path: Path) -> None:
    ours = await sim_dial(tmp_path)
    states = [(e, h.get("DestChannelState", h.get("ChannelState"))) for e, h in ours]
    assert states == [(e, h.get("DestChannelState", h.get("ChannelState"))) for e, h in real_dial()]
    assert states[:6] == [
        ("Newchannel", "0"),
        ("DialBegin", "0"),
        ("Newstate", "5"),
        ("DialState", "5"),
        ("Newstate", "6"),
        ("DialEnd", "6"),
    ]


async def test_dial_events_have_asterisks_headers(tmp_path: Path) -> None:
    ours = dict(await sim_dial(tmp_path))
    real = dict(real_dial())
    for event in ("DialBegin", "DialState", "DialEnd", "Hangup"):
        assert list(ours[event]) == [k for k in real[event] if k not in ("Event", "Privilege")]
    begin = ours["DialBegin"]
    # app_dial's stored CallerID and inherited extension; the seat endpoint's context
    assert (begin["DestCallerIDNum"], begin["DestCallerIDName"]) == ("88005000005", "Тест")
    assert begin["DestConnectedLineNum"] == begin["CallerIDNum"] == "79161234567"
    assert (begin["DestContext"], begin["DestExten"]) == ("operators", "88005000005")
    assert begin["DialString"] == "1007"
    assert ours["DialEnd"]["DialStatus"] == "ANSWER"
    assert (ours["Hangup"]["Cause"], ours["Hangup"]["Cause-txt"]) == ("16", "Normal Clearing")


async def test_server_closing_after_the_environment_is_agistatus_success() -> None:
    """agi-server-closes-after-environment.txt: the same environment (Asterisk sent it in two
    reads, which only the reader sees), then the close; AGISTATUS=SUCCESS as in its AMI
    capture."""
    capture = "agi-server-closes-after-environment.txt"
    received = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (line := await reader.readline()) not in (b"\n", b""):
            received.extend(line)
        received.extend(line)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = caller_channel()
    channel.name, channel.exten = "Local/88004000004@from-pstn-00000003;2", "88004000004"
    channel.uniqueid = "1796426054.11"
    agi = AgiChannel(
        channel,
        CallerScript(hangup_at=60),
        clock=InstantCallClock(idle_grace=0.05),
        caller_num="79161234567",
        caller_name="Тест",
    )
    url = f"agi://127.0.0.1:{port}/hotline?did=88004000004"
    request = AgiRequestSpec(url=url, threadid=140359571314368)
    try:
        result = await asyncio.wait_for(run_agi(agi, request, "127.0.0.1", port), GUARD)
    finally:
        server.close()
        await server.wait_closed()
    assert masked(bytes(received)) == masked(stream(load(capture), "asterisk->server"))
    assert (result.status, result.commands) == ("SUCCESS", 0)
    assert agi.variable_value("AGISTATUS") == "SUCCESS"
