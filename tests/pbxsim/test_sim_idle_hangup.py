"""The simulator against agi-idle-hangup-and-record-failures.txt (a real Asterisk 22.10.1,
tests/asterisk/test_hangup_notice.py): the server's commands replayed, the caller hanging up
while no command runs; every byte after the environment equals the capture's (the run's
spool path masked), and AGIExecEnd says what the capture's AMI side says."""

from __future__ import annotations

import re
from pathlib import Path

from test_sim_agi import Peer, RecordingSink, make_agi, session
from transcripts import load, stream

from hotline.ami.protocol import AmiMessage, AmiParser
from pbxsim.callers import CallerScript

CAPTURE = "agi-idle-hangup-and-record-failures.txt"
# The capture's RECORD FILE paths lie under the test run's own spool directory.
SPOOL = re.compile(rb"/tmp/pytest-of-[^/]+/pytest-\d+/asterisk\d+/var/spool")


def after_environment(data: bytes) -> bytes:
    return data.partition(b"\n\n")[2]


async def test_the_idle_hangup_and_record_failures_replay_byte_for_byte(tmp_path: Path) -> None:
    blocks = load(CAPTURE)
    sent = [b.data for b in blocks if b.direction == "server->asterisk" and not b.eof]
    spool = str(tmp_path).encode()
    lines = [SPOOL.sub(spool, line) for line in sent]
    hangup_at = next(b.at for b in blocks if b.data == b"HANGUP\n")

    async def server(peer: Peer) -> None:
        for line in lines[:3]:  # ANSWER and the two RECORD FILEs
            await peer.send(line)
        assert await peer.line() == "HANGUP"  # nothing runs: the notice comes by itself
        for line in lines[3:]:  # a command on the dead channel, then NOOP
            await peer.send(line)
        peer.writer.write_eof()  # the server is done: Asterisk's farewell HANGUP, then EOF
        await peer.drain_rest()

    sink = RecordingSink()
    agi = make_agi(CallerScript(hangup_at=hangup_at), sink=sink)
    result, talk = await session(agi, server)

    real = SPOOL.sub(spool, after_environment(stream(blocks, "asterisk->server")))
    assert after_environment(bytes(talk.received)) == real
    assert result.status == "FAILURE"  # RECORD FILE failed while the caller was still there
    ends = [dict(h) for e, h in sink.events if e == "AGIExecEnd"]
    assert [(e["Command"], e["ResultCode"], e["Result"]) for e in ends] == [
        (SPOOL.sub(spool, real_end["Command"].encode()).decode(), *code)
        for real_end, code in captured_ends()
    ]


def captured_ends() -> list[tuple[AmiMessage, tuple[str, str]]]:
    parser = AmiParser(expect_greeting=True)
    data = stream(load("ami-idle-hangup-and-record-failures.txt"), "asterisk->client")
    ends = [
        m for m in parser.feed(data) if isinstance(m, AmiMessage) and m.get("Event") == "AGIExecEnd"
    ]
    return [(m, (m.get("ResultCode") or "", m.get("Result") or "")) for m in ends]
