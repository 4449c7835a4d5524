"""Issue 15 on a real Asterisk 22: the ``HANGUP`` notice sent while no AGI command runs (the
socket left open, ``511`` to a command after it), RECORD FILE's failure forms, and a queued
caller on hold music who hangs up leaving the controller's queue on that notice.

With ``ASTERISK_CAPTURE_DIR`` the first test writes the transcripts kept in tests/data/asterisk/
(``agi-idle-hangup-and-record-failures.txt`` and its AMI side), which tests/pbxsim replays.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
from calls import make_ready, place_call, state_becomes
from capture import keep
from people import acting
from real_pbx import RealAsterisk
from softphones import Sipp
from wire_taps import AgiScript, AgiTap, RecordingAmi

from controller.node import Controller

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


async def test_the_hangup_notice_while_idle_and_record_file_failures(
    asterisk: RealAsterisk, tap: AgiTap, ami: RecordingAmi
) -> None:
    spool = asterisk.root / "var" / "spool"
    replies: dict[str, bytes] = {}

    async def server(agi: AgiScript) -> None:
        await agi.environment()
        replies["answer"] = await agi.command("ANSWER")
        missing = f'RECORD FILE {spool}/no-such-dir/message wav "#" 3000'
        replies["missing_dir"] = await agi.command(missing)
        unknown = f'RECORD FILE {spool}/message nosuchformat "#" 3000'
        replies["unknown_format"] = await agi.command(unknown)
        replies["notice"] = await agi.line()  # nothing runs: the caller hangs up meanwhile
        replies["after"] = await agi.command('STREAM FILE beep ""')
        replies["noop"] = await agi.command("NOOP")
        replies["farewell"] = await agi.close()

    tap.script = server
    await place_call(ami, "88001000001", wait=1, hold=3)
    channel = (await ami.event("AGIExecStart", Command="ANSWER")).get("Channel") or ""
    await ami.event("Hangup", Channel=channel, within=30)
    await ami.event("VarSet", Channel=channel, Variable="AGISTATUS", within=30)
    await ami.until(lambda: "farewell" in replies)  # our side saw Asterisk close
    keep("agi-idle-hangup-and-record-failures.txt", *tap.sessions)
    keep("ami-idle-hangup-and-record-failures.txt", ami.recording)

    assert replies["answer"] == b"200 result=0\n"
    assert replies["missing_dir"] == b"200 result=-1 (writefile)\n"
    assert replies["unknown_format"] == b"200 result=-1 (writefile)\n"
    assert not list(spool.glob("message*"))
    assert replies["notice"] == b"HANGUP\n"
    assert replies["after"] == DEAD
    assert replies["noop"] == b"200 result=0\n"
    ends = [e for e in ami.named("AGIExecEnd") if e.get("Channel") == channel]
    records = [e for e in ends if (e.get("Command") or "").startswith("RECORD FILE")]
    # res_agi's RESULT_FAILURE: the AMI says -1 although the reply line said 200
    assert [(e.get("ResultCode"), e.get("Result")) for e in records] == [("-1", "Failure")] * 2


async def test_a_call_the_controller_finished_ends_even_after_a_failed_command(
    tap: AgiTap, ami: RecordingAmi
) -> None:
    """A command that fails on the live channel (here a missing prompt) makes Asterisk end the
    session with AGISTATUS=FAILURE even though the controller finished the call: the dialplan
    must hang up (HOTLINE_DONE=1), not hand the caller back to a controller again."""

    async def server(agi: AgiScript) -> None:
        await agi.environment()
        await agi.command("SET VARIABLE HOTLINE_DID 88001000001")
        missing = await agi.command('STREAM FILE hotline/no-such-prompt ""')
        assert missing == b"200 result=-1 endpos=0\n"
        await agi.command("SET VARIABLE HOTLINE_DONE 1")
        await agi.close()

    tap.script = server
    await place_call(ami, "88001000001", wait=1, hold=20)
    status = await ami.event("VarSet", Variable="AGISTATUS", within=30)
    channel = status.get("Channel") or ""
    assert status.get("Value") == "FAILURE"
    await ami.event("Hangup", Channel=channel, within=30)
    runs = [
        e
        for e in ami.named("Newexten")
        if e.get("Channel") == channel and e.get("Application") == "AGI"
    ]
    assert len(runs) == 1
    assert len(tap.sessions) == 1


async def test_a_queued_caller_who_hangs_up_leaves_the_queue_on_the_notice(
    controller: Controller,
    tap: AgiTap,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
) -> None:
    """morozova is logged in and paused: the emergency caller waits on hold music (no
    announcement is due for a long while) and hangs up; the ACD lets them go on Asterisk's
    HANGUP notice, not at the next command."""
    phones("1007")
    await state_becomes(api, "morozova", "phone_registered", True)
    await make_ready(api, "morozova")
    pause = "/morozova/pause"
    async with api.post(
        f"/api/operators{pause}", json={"reason": "обед"}, headers=acting(pause)
    ) as reply:
        assert reply.status == 200, await reply.text()
    assert controller.acd is not None
    node = controller.acd.node
    left: dict[str, float] = {}
    abandon = node.abandon

    async def noted(call_id: str, *, counted: bool = True) -> object:
        offers = await abandon(call_id, counted=counted)
        left.setdefault(call_id, time.monotonic())
        return offers

    node.abandon = noted  # type: ignore[method-assign]  # a spy: the ACD's own abandon runs
    await place_call(ami, "88005000005", wait=1, hold=12)
    held = await ami.event("AGIExecStart", Command_startswith="EXEC StartMusicOnHold", within=30)
    call_id = held.get("Uniqueid") or ""
    assert call_id in node.acd.callers
    hangup = await ami.event("Hangup", Uniqueid=call_id, within=30)
    await ami.until(lambda: call_id in left, within=10)
    assert call_id not in node.acd.callers
    assert node.acd.waiting("emergency") == 0
    # the session sent nothing between hold music and the notice: the notice ended the wait
    session = next(s for s in tap.sessions if call_id.encode() in s.blocks[0][2])
    notice = session.started + next(
        at
        for direction, at, data, _ in session.blocks
        if direction == "asterisk->server" and data.startswith(b"HANGUP")
    )
    hangup_seen = ami.recording.started + next(
        at
        for _, at, data, _ in ami.recording.blocks
        if b"Event: Hangup\r\n" in data and call_id.encode() in data
    )
    assert hangup.get("Uniqueid") == call_id
    assert notice <= left[call_id]
    print(
        f"\nqueued caller's hang-up -> queue update: "
        f"{(left[call_id] - notice) * 1000:.1f} ms from the HANGUP notice at the tap, "
        f"{(left[call_id] - hangup_seen) * 1000:.1f} ms from the AMI Hangup event "
        "(target under 100 ms)"
    )
