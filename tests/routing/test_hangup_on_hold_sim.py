"""The simulated Asterisk (pbxsim) and the whole controller: a caller on the ACD's hold music
hangs up; the simulator sends ``HANGUP`` while no command runs, as Asterisk does, and the ACD
lets the caller go on that notice, not at the next announcement (an hour away here): the call
is logged as a hang-up, counted abandoned, and the simulator is sent no command after the
notice. Order of events only; no time is asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from controllers import recorder_environment
from sim_rig import sim_controller

from controller.node import Controller
from pbxsim.callers import CallerScript
from tests.routing.test_call_flow import GROUPS, MENU, NUMBER, OPERATORS, call_outcome, place_call

GUARD = 20.0  # only keeps a broken build from hanging the suite


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with sim_controller(
        tmp_path,
        {NUMBER: MENU},
        groups=GROUPS,
        operators=OPERATORS,
        environment={
            "HOTLINE_ROUTING_ANNOUNCE_EVERY_SECONDS": "3600",
            **recorder_environment(tmp_path / "recorder"),
        },
    ) as node:
        yield node


async def test_caller_hanging_up_on_hold_music_leaves_the_acd_on_the_notice(
    controller: Controller,
) -> None:
    assert controller.acd is not None
    await controller.acd.node.login("anna", paused_reason="обед")  # logged in, not free
    agi, events, status = await asyncio.wait_for(
        place_call(controller, {}, CallerScript(hangup_at=1.0)), GUARD
    )

    assert status == "HANGUP" and agi.caller_hung_up
    names = [name for name, _ in events.seen]
    # hold music started, then the caller hung up while it played; the controller never
    # stopped it to announce anything: no command reached the dead channel
    assert "MusicOnHoldStart" in names and "MusicOnHoldStop" not in names
    assert not [
        h for name, h in events.seen if name == "AGIExecEnd" and h.get("ResultCode") == "511"
    ]
    stats = controller.acd.node.acd.stats["help"]
    assert (stats.offered, stats.abandoned) == (1, 1)
    assert controller.acd.node.acd.waiting("help") == 0
    assert await call_outcome(controller) == "hangup"
