"""README checks 3 and 4 on the real Asterisk: a callback's two legs meeting in the ConfBridge
(the operator hangs up: the citizen gets a BYE) and an escalation to an agency (the carrier
gets the INVITE with the X-Hotline-* headers)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp
from calls import eventually, make_ready, place_call, state_becomes
from capture import keep
from people import SUPERVISOR, as_user
from softphones import Sipp
from wire_taps import RecordingAmi

from controller.node import Controller


async def _seen(phone: Sipp, method: str) -> bool:
    return phone.received(method) >= 1


async def test_a_callback_meets_in_the_confbridge_and_the_citizen_gets_the_bye(
    controller: Controller,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
    carrier: Callable[[], Awaitable[Sipp]],
) -> None:
    citizen = await carrier()
    # morozova, on duty round the clock (emergency), hangs up 8 s after answering; other
    # groups may be closed at the hour the suite runs and would schedule the callback later
    phones("1007", hold_ms=8000)
    await state_becomes(api, "morozova", "phone_registered", True)
    await make_ready(api, "morozova")
    async with api.post(
        "/api/callbacks",
        json={"phone": "+7 916 123-45-67", "group": "emergency"},
        headers=as_user(SUPERVISOR),  # staff may order one (a service needs callbacks:create)
    ) as reply:
        assert reply.status == 201, await reply.text()
    # the conference is named by the callback's row, not by the public id the reply gives
    joined = await ami.event(
        "ConfbridgeJoin",
        Conference_startswith="hotline-callback-",
        Channel_startswith="PJSIP/1007",
        within=30,
    )
    bridge = joined.get("Conference") or ""
    await ami.event("ConfbridgeJoin", Conference=bridge, Channel_startswith="Local/", within=30)
    await eventually(lambda: _seen(citizen, "INVITE"))
    await eventually(lambda: _seen(citizen, "BYE"), within=30)  # the operator left first
    await ami.event("ConfbridgeEnd", Conference=bridge)
    keep("ami-confbridge-callback.txt", ami.recording)


async def test_escalation_reaches_the_carrier_with_the_hotline_headers(
    controller: Controller,
    ami: RecordingAmi,
    api: aiohttp.ClientSession,
    phones: Callable[..., Sipp],
    carrier: Callable[[], Awaitable[Sipp]],
) -> None:
    agency = await carrier()
    phones("1007", hold_ms=30000)
    await state_becomes(api, "morozova", "phone_registered", True)
    await make_ready(api, "morozova")
    await place_call(ami, "88005000005", hold=40)
    await state_becomes(api, "morozova", "state", "talking")
    escalate = "/api/operators/morozova/escalate"  # by the operator holding the call
    async with api.post(escalate, json={"agency": "sfr"}, headers=as_user("morozova")) as reply:
        assert reply.status == 200, await reply.text()
    await eventually(lambda: _seen(agency, "INVITE"), within=20)
    invite = agency.log().split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    headers = dict(
        line.split(":", 1) for line in invite.splitlines()[1:] if line.startswith("X-Hotline-")
    )
    for name in ("X-Hotline-Call", "X-Hotline-Agency", "X-Hotline-Data", "X-Hotline-History"):
        assert headers.get(name, "").strip(), f"{name} missing or empty in {invite}"
    assert urllib.parse.unquote(headers["X-Hotline-Agency"].strip()) == "sfr"
    assert invite.startswith("78000000001@")
    await state_becomes(api, "morozova", "state", "wrap_up")
