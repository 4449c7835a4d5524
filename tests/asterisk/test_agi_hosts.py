"""Issue 10 on a real Asterisk 22: several controller hosts in ``HOTLINE_AGI_HOSTS`` (the first
down, the next takes the call at once) and a restart that keeps a queued caller's place (the
arrival, ``HOTLINE_QUEUED_AT``, travels on the channel)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from calls import make_ready, place_call, state_becomes
from people import acting
from ports import unused_port
from softphones import Sipp
from wire_taps import AgiTap, RecordingAmi

from controller.node import Controller
from hotline.ami.protocol import AmiMessage


@pytest.fixture
async def hosts(ami: RecordingAmi) -> AsyncIterator[Callable[[str], object]]:
    """Set the global HOTLINE_AGI_HOSTS over AMI (Setvar without a channel), as an admin's
    edit of [globals] would; the shipped value is put back afterwards."""
    shipped = (await ami.action("Getvar", Variable="HOTLINE_AGI_HOSTS")).get("Value") or ""
    assert shipped.startswith("127.0.0.1:")

    async def change(value: str) -> None:
        reply = await ami.action("Setvar", Variable="HOTLINE_AGI_HOSTS", Value=value)
        assert reply.get("Response") == "Success", reply

    yield change
    await change(shipped)


def agi_hosts_tried(ami: RecordingAmi, channel: str) -> list[str]:
    """The host of each AGI() the channel ran, in order."""
    return [
        (event.get("AppData") or "").removeprefix("agi://").split("/", 1)[0]
        for event in ami.named("Newexten")
        if event.get("Channel") == channel and event.get("Application") == "AGI"
    ]


async def test_the_second_host_takes_the_call_when_the_first_is_down(
    controller: Controller, tap: AgiTap, ami: RecordingAmi, hosts: Callable[[str], object]
) -> None:
    down = f"127.0.0.1:{unused_port()}"  # nothing listens there
    up = f"127.0.0.1:{tap.port}"
    await hosts(f"{down}&{up}")  # type: ignore[misc]
    await place_call(ami, "88001000001", hold=8)
    tagged = await ami.event(
        "AGIExecStart", Command="SET VARIABLE HOTLINE_DID 88001000001", within=30
    )
    channel = tagged.get("Channel") or ""
    assert agi_hosts_tried(ami, channel) == [down, up]
    failed = [
        e.get("Value")
        for e in ami.named("VarSet")
        if e.get("Channel") == channel and e.get("Variable") == "AGISTATUS"
    ]
    assert failed[:1] == ["FAILURE"]
    # straight to the next host: no hold music between the two tries, and nobody hung up
    assert not [e for e in ami.named("MusicOnHoldStart") if e.get("Channel") == channel]
    assert not [e for e in ami.named("Hangup") if e.get("Channel") == channel]
    await ami.event("AGIExecStart", Channel=channel, Command_startswith="STREAM FILE hotline/")


def queued_at(ami: RecordingAmi, channel: str) -> list[str]:
    return [
        event.get("Value") or ""
        for event in ami.named("VarSet")
        if event.get("Channel") == channel and event.get("Variable") == "HOTLINE_QUEUED_AT"
    ]


async def test_a_restart_keeps_a_queued_callers_place(
    controller: Controller,
    tap: AgiTap,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
) -> None:
    """Two emergency callers wait (morozova paused); the controller stops and starts again;
    both come back, and the one who called first is the first morozova is offered, with the
    arrival carried on the channel."""
    phones("1007", hold_ms=3000)
    await state_becomes(api, "morozova", "phone_registered", True)
    await make_ready(api, "morozova")
    pause = "/morozova/pause"
    async with api.post(
        f"/api/operators{pause}", json={"reason": "обед"}, headers=acting(pause)
    ) as reply:
        assert reply.status == 200, await reply.text()
    for callers in (1, 2):  # one after the other: their order of arrival is known
        await place_call(ami, "88005000005", wait=1, hold=60)
        await ami.until(lambda n=callers: len(_held(ami)) == n, within=30)
    channels = _held(ami)
    first, second = channels
    arrival = {channel: queued_at(ami, channel) for channel in channels}
    assert all(arrival.values()), arrival  # the first controller carried each arrival
    await controller.stop()  # what SIGTERM does: both callers handed back, on hold music
    restarted = Controller(controller.settings)
    await restarted.start()
    assert restarted.agi is not None and restarted.acd is not None
    tap.target = restarted.agi.port
    try:
        base = f"http://127.0.0.1:{restarted.http_port}"
        async with aiohttp.ClientSession(base_url=base) as http:
            for channel in channels:  # each re-entered and is on hold music again
                await ami.until(lambda c=channel: len(_held_on(ami, c)) == 2, within=40)
            ready = "/morozova/ready"
            async with http.post(f"/api/operators{ready}", json={}, headers=acting(ready)) as reply:
                assert reply.status == 200, await reply.text()
            dial = await ami.event("DialBegin", DestChannel_startswith="PJSIP/1007", within=40)
        assert dial.get("Channel") == first, (dial.get("Channel"), first, second)
        assert not [e for e in ami.named("Hangup") if e.get("Channel") in channels]
        # the restarted controller queued them at the arrival the channel carried
        assert set(queued_at(ami, first)) - {""} == {arrival[first][0]}
    finally:
        tap.target = None
        await restarted.stop()


def _held(ami: RecordingAmi) -> list[str]:
    """Channels the controller put on hold music (each once, in order)."""
    seen: list[str] = []
    for event in ami.named("AGIExecStart"):
        if (event.get("Command") or "").startswith("EXEC StartMusicOnHold"):
            channel = event.get("Channel") or ""
            if channel not in seen:
                seen.append(channel)
    return seen


def _held_on(ami: RecordingAmi, channel: str) -> list[AmiMessage]:
    return [
        event
        for event in ami.named("AGIExecStart")
        if event.get("Channel") == channel
        and (event.get("Command") or "").startswith("EXEC StartMusicOnHold")
    ]
