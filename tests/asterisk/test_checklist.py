"""The checks of asterisk-conf/README.md ("Checks on a real Asterisk 22"), automated against a
real Asterisk 22 running the shipped configuration."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from calls import agi_commands, eventually, make_ready, operator, place_call, state_becomes
from capture import keep
from ports import unused_port
from real_pbx import SEAT_PASSWORD, RealAsterisk
from softphones import Sipp, register
from wire_taps import AgiTap, RecordingAmi

from controller.node import Controller
from hotline.ami.protocol import AmiMessage


async def test_the_trunk_identify_with_a_port_is_accepted(asterisk: RealAsterisk) -> None:
    """pjsip.conf's ``match = <ip>:<port>`` form: Asterisk 22 keeps it as a /32 with the port."""
    shown = asterisk.cli("pjsip show identify trunk")
    assert f"127.0.0.1:{asterisk.ports.carrier}/32" in shown
    assert "Failed to parse" not in asterisk.console()


async def test_the_ami_user_may_call_and_originate_but_not_run_commands(
    ami: RecordingAmi,
) -> None:
    denied = await ami.action("Command", Command="core show version")
    assert denied.get("Response") == "Error"
    assert denied.get("Message") == "Permission denied"
    setvar = await ami.action("Setvar", Variable="HOTLINE_SUITE_PROBE", Value="1")
    assert setvar.get("Response") == "Success"
    redirect = await ami.action(
        "Redirect", Channel="PJSIP/none-00000000", Context="from-pstn", Exten="s", Priority="1"
    )
    assert redirect.get("Message") != "Permission denied"
    listing = await ami.listing("DeviceStateList")
    assert listing[0].get("Response") == "Success"
    originate = await ami.action(
        "Originate", Channel="Local/0@hotline-test-caller", Application="Wait", Data="0"
    )
    assert originate.get("Message") != "Permission denied"


async def test_a_call_reaches_the_controller_and_the_menu_runs(
    controller: Controller, ami: RecordingAmi
) -> None:
    await place_call(ami, "88001000001", hold=4)
    await ami.event("AGIExecStart", Command="SET VARIABLE HOTLINE_DID 88001000001")
    await ami.event("AGIExecStart", Command='STREAM FILE hotline/greeting-general "0123459"')
    commands = agi_commands(ami)
    assert commands[0] == "ANSWER"
    await ami.event("Hangup", Exten="88001000001")


async def test_controller_down_the_caller_lands_in_the_numbers_queue(
    asterisk: RealAsterisk, tap: AgiTap, ami: RecordingAmi
) -> None:
    await tap.stop()  # nothing listens where HOTLINE_CONTROLLER points
    await place_call(ami, "88002000002", hold=3)
    await ami.event("VarSet", Variable="AGISTATUS", Value="FAILURE")
    joined = await ami.event("QueueCallerJoin")
    assert joined.get("Queue") == "hotline-documents"
    await place_call(ami, "88001000001", hold=3)
    await ami.event("QueueCallerJoin", Queue="hotline-general")


async def test_the_acd_connects_a_queued_caller_to_a_registered_seat(
    controller: Controller,
    tap: AgiTap,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
) -> None:
    phone = phones("1007", hold_ms=6000)
    await state_becomes(api, "morozova", "phone_registered", True)
    await make_ready(api, "morozova")
    await place_call(ami, "88005000005", hold=30)
    dial = await ami.event("DialBegin", DestChannel_startswith="PJSIP/1007", within=30)
    assert dial is not None
    await state_becomes(api, "morozova", "state", "talking")
    assert any(
        c.startswith("EXEC Dial") and "U(hotline-acd-answered^" in c for c in agi_commands(ami)
    )
    await eventually(lambda: _true(phone.received("ACK") >= 1))
    await state_becomes(api, "morozova", "state", "wrap_up")
    scripts = [session.blocks[0][2] for session in tap.sessions]
    dial = next(i for i, head in enumerate(scripts) if b"/hotline?did=88005000005" in head)
    hook = next(i for i, head in enumerate(scripts) if b"/acd-answered?call=" in head)
    keep("agi-acd-dial-session.txt", tap.sessions[dial])
    keep("agi-acd-answered-session.txt", tap.sessions[hook])


async def test_unregistering_a_seat_marks_the_operator_unavailable(
    asterisk: RealAsterisk,
    controller: Controller,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
) -> None:
    from real_pbx import SEAT_PASSWORD
    from softphones import register

    phone = phones("1001")
    await state_becomes(api, "ivanova", "phone_registered", True)
    register("1001", SEAT_PASSWORD, asterisk.ports.sip, phone.port, expires=0)
    await ami.event("DeviceStateChange", Device="PJSIP/1001", State="UNAVAILABLE")
    await state_becomes(api, "ivanova", "phone_registered", False)
    listing = await ami.listing("DeviceStateList")
    states = {item.get("Device"): item.get("State") for item in listing}
    assert states.get("PJSIP/1001") == "UNAVAILABLE"
    keep("ami-pjsip-registration.txt", ami.recording)


async def test_a_seat_without_a_password_on_the_host_is_not_offered_calls(
    asterisk: RealAsterisk, controller: Controller, ami: RecordingAmi, api: aiohttp.ClientSession
) -> None:
    """Every operator's seat is generated; 1003 has no auth section on the host, so its
    phone cannot register and sidorova is never offered a call."""
    assert "1003" in asterisk.cli("pjsip show endpoints")
    with pytest.raises(AssertionError):
        register("1003", SEAT_PASSWORD, asterisk.ports.sip, unused_port(), expires=60)
    listing = await ami.listing("DeviceStateList")
    states = {item.get("Device"): item.get("State") for item in listing}
    assert states.get("PJSIP/1003", "UNAVAILABLE") == "UNAVAILABLE"

    async def missing() -> bool:
        return (await operator(api, "sidorova"))["phone_registered"] is False

    await eventually(missing)


async def _true(value: bool) -> bool:
    return value


async def test_a_fastagi_server_that_closes_after_the_environment(
    asterisk: RealAsterisk, tap: AgiTap, ami: RecordingAmi
) -> None:
    """Issue 16: the server reads the environment and closes without a command. What
    AGISTATUS does Asterisk 22 set? (the dialplan then goes to [controller-down], because the
    call was never tagged with HOTLINE_DID)"""
    tap.hang_up_after_env = True
    await place_call(ami, "88004000004", hold=3)
    status = await ami.event("VarSet", Variable="AGISTATUS")
    await ami.event("QueueCallerJoin", Queue="hotline-social")
    await ami.event("Hangup", Channel_startswith="Local/88004000004@from-pstn", within=30)
    keep("ami-agi-server-closes-after-environment.txt", ami.recording)
    keep("agi-server-closes-after-environment.txt", *tap.sessions)
    assert status.get("Value") == "SUCCESS"


async def test_a_controller_restart_hands_the_caller_back_not_up(
    tap: AgiTap, ami: RecordingAmi, controller: Controller
) -> None:
    """Issue 10: a routine restart used to hang up every caller in progress. Now the caller in
    the menu hears hold music and re-enters the next controller, on the same channel."""
    await place_call(ami, "88001000001", hold=40)
    first = await ami.event("AGIExecStart", Command="SET VARIABLE HOTLINE_DID 88001000001")
    channel = first.get("Channel") or ""
    await controller.stop()  # what SIGTERM does; the caller is in the menu
    await ami.event("MusicOnHoldStart", Channel=channel)
    restarted = Controller(controller.settings)  # the same node, started again
    await restarted.start()
    assert restarted.agi is not None
    tap.target = restarted.agi.port
    try:
        # the restarted controller runs the menu for the same channel: it tags the call again
        await ami.until(lambda: len(tagged(ami, channel)) == 2, within=30)
        tries = [run.get("AppData", "").rpartition("reentry=")[2] for run in agi_runs(ami, channel)]
        assert tries == ["0", "1"]
        hung_up = [e for e in ami.named("Hangup") if e.get("Channel") == channel]
        assert hung_up == []  # the caller was never dropped
    finally:
        tap.target = None
        await restarted.stop()


def tagged(ami: RecordingAmi, channel: str) -> list[AmiMessage]:
    """Each time a controller tagged the channel's call (its menu's first step)."""
    command = "SET VARIABLE HOTLINE_DID 88001000001"
    return [
        event
        for event in ami.named("AGIExecStart")
        if event.get("Channel") == channel and event.get("Command") == command
    ]


def agi_runs(ami: RecordingAmi, channel: str) -> list[AmiMessage]:
    """Every time the channel's dialplan ran AGI() (each try of the hand-back loop)."""
    return [
        event
        for event in ami.named("Newexten")
        if event.get("Channel") == channel and event.get("Application") == "AGI"
    ]
