"""A supervisor listens to and whispers on an operator's live call, on the real Asterisk:
the wallboard's POST /api/supervisor/calls/{call}/listen|whisper rings the supervisor's own
seat (AMI Originate, Application ChanSpy, Data ``<uniqueid>,qEu`` / ``qwEu``); Asterisk's
app_chanspy spies on the operator's channel and, with ``E``, ends the supervisor's leg when
the operator's channel hangs up."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from calls import eventually, make_ready, place_call, state_becomes
from capture import keep
from people import as_user
from softphones import Sipp
from wire_taps import RecordingAmi, matches

from controller.node import Controller
from hotline.ami.protocol import AmiMessage

OPERATOR = "morozova"  # PJSIP/1007, on duty round the clock (emergency, 88005000005)
SUPERVISOR_SEAT = "ivanova"  # PJSIP/1001 in operators.yaml; here her account is a supervisor


@pytest.fixture
def roles() -> dict[str, str]:
    """ivanova's account is a supervisor's: her seat in operators.yaml (PJSIP/1001) is the
    phone the supervision part rings."""
    return {SUPERVISOR_SEAT: "supervisor"}


async def _next(ami: RecordingAmi, since: int, name: str, **match: str) -> AmiMessage:
    """The first event named so, among those after the first `since`, whose headers match."""

    def found() -> AmiMessage | None:
        for event in ami.events[since:]:
            if event.name == name and all(matches(event, k, v) for k, v in match.items()):
                return event
        return None

    await ami.until(lambda: found() is not None, within=30)
    event = found()
    assert event is not None
    return event


async def _bye_seen(phone: Sipp, count: int) -> bool:
    return phone.received("BYE") >= count


async def _spy_on_the_next_call(
    mode: str, controller: Controller, ami: RecordingAmi, api: aiohttp.ClientSession
) -> tuple[str, str, str]:
    """A caller reaches the operator; the supervisor POSTs `mode`. Returns the operator's
    channel and its uniqueid, and the supervisor's channel once ChanSpy runs."""
    since = len(ami.events)  # this call's events only
    await make_ready(api, OPERATOR)
    await place_call(ami, "88005000005", hold=60)
    await state_becomes(api, OPERATOR, "state", "talking")
    assert controller.acd is not None
    call_id = controller.acd.node.acd.operators[OPERATOR].call_id
    assert call_id
    answered = await _next(
        ami, since, "Newstate", ChannelStateDesc="Up", Channel_startswith="PJSIP/1007-"
    )
    operator_channel = answered.get("Channel") or ""
    async with api.post(
        f"/api/supervisor/calls/{call_id}/{mode}", headers=as_user(SUPERVISOR_SEAT)
    ) as reply:
        assert reply.status == 202, await reply.text()
        assert (await reply.json())["device"] == "PJSIP/1001"
    start = await _next(ami, since, "ChanSpyStart", SpyeeChannel=operator_channel)
    spyer = start.get("SpyerChannel") or ""
    assert spyer.startswith("PJSIP/1001-")
    originated = await _next(ami, since, "OriginateResponse", Channel_startswith="PJSIP/1001")
    assert originated.get("Response") == "Success"
    assert originated.get("Application") in (None, "ChanSpy")
    assert start.get("SpyeeUniqueid") == answered.get("Uniqueid")
    return operator_channel, answered.get("Uniqueid") or "", spyer


async def test_a_supervisor_listens_then_whispers_and_the_spy_ends_with_the_call(
    controller: Controller,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
) -> None:
    phones("1007", hold_ms=120_000)  # the operator never hangs up by themselves
    supervisor_phone = phones("1001", hold_ms=120_000)  # nor does the supervisor
    await state_becomes(api, OPERATOR, "phone_registered", True)

    for turn, mode in enumerate(("listen", "whisper"), start=1):
        operator_channel, uniqueid, spyer = await _spy_on_the_next_call(mode, controller, ami, api)
        listing = await ami.listing("Status", Channel=spyer)
        spying = next(item for item in listing if item.get("Event") == "Status")
        options = "qEu" if mode == "listen" else "qwEu"
        assert (spying.get("Application"), spying.get("Data")) == (
            "ChanSpy",
            f"{uniqueid},{options}",
        )
        # the operator hangs up: E ends ChanSpy, and Asterisk hangs the supervisor's leg up
        hangup = await ami.action("Hangup", Channel=operator_channel)
        assert hangup.get("Response") == "Success", hangup
        stop = await ami.event("ChanSpyStop", SpyerChannel=spyer)
        assert stop.get("SpyeeChannel") == operator_channel
        await ami.event("Hangup", Channel=spyer)
        await eventually(lambda turn=turn: _bye_seen(supervisor_phone, turn))
        await state_becomes(api, OPERATOR, "state", "wrap_up")
    keep("ami-chanspy.txt", ami.recording)
