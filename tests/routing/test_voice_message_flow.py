"""A voice message on a line nobody answers, end to end: the simulated Asterisk (pbxsim)
calls the whole controller (ACD, callbacks and recorder on), nobody is logged in, the menu
records a message into the recorder's spool; the recorder's pipeline stores it encrypted
under the voice_message category, and a call back carrying the message is booked for the
group, where operators see it (the callbacks table behind /api/callbacks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from controllers import recorder_environment
from sim_rig import sim_controller
from sqlalchemy import select

from controller.node import Controller
from pbxsim.callers import CallerScript, send_dtmf
from recorder.models import RecordingStore, State
from routing.callbacks.model import Callback
from tests.routing.test_call_flow import GROUPS, NUMBER, OPERATORS, place_call
from workspace.model import ContactChannel, ContactState

GUARD = 20.0  # only keeps a broken build from hanging the suite
MENU = f"""\
number: "{NUMBER}"
title: сообщение
group: help
start: to-operator
nodes:
  to-operator: {{kind: queue, group: help, otherwise: leave}}
  leave:
    kind: record
    prompts: [hotline/all-busy, hotline/record-message]
    next: saved
  saved: {{kind: hangup, prompts: [hotline/message-saved, hotline/goodbye]}}
"""


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with sim_controller(
        tmp_path,
        {NUMBER: MENU},
        groups=GROUPS,
        operators=OPERATORS,
        environment={
            "HOTLINE_RECORDER_SETTLE_SECONDS": "0.05",
            **recorder_environment(tmp_path / "recorder"),
        },
    ) as node:
        yield node


async def test_a_message_nobody_answered_is_stored_encrypted_and_becomes_a_callback(
    controller: Controller,
) -> None:
    # nobody logged in: the menu asks for a message; "#" ends it a moment after the beep
    script = CallerScript(send_dtmf(1.5, "#"), hangup_at=60)
    agi, _, _ = await asyncio.wait_for(place_call(controller, {}, script), GUARD)
    assert agi.stats.prompts[-2:] == ["hotline/message-saved", "hotline/goodbye"]
    message = f"{agi.channel.uniqueid}-message"

    assert controller.engine is not None
    recordings = RecordingStore(controller.engine)

    async def verified() -> bool:
        row = await recordings.get(message)
        return row is not None and row.state == State.VERIFIED

    async with asyncio.timeout(GUARD):
        while not await verified():  # noqa: ASYNC110 - the pipeline runs in the background
            await asyncio.sleep(0.05)
    row = await recordings.get(message)
    assert row is not None and row.retention_category == "voice_message"
    assert row.storage_key is not None and row.storage_key.endswith(".enc")

    async with controller.engine.connect() as connection:
        booked = (await connection.execute(select(Callback.group_id, Callback.data))).all()
    assert [(group, data.get("voice_message")) for group, data in booked] == [("help", message)]
    # and a contact of its own in the registry, whose number the call back carries
    assert controller.workspace is not None
    contact = await controller.workspace.registry.of_call(agi.channel.uniqueid)
    assert contact is not None and contact.channel == ContactChannel.VOICE_MESSAGE
    assert contact.group == "help" and contact.state == ContactState.OPEN
    assert [data.get("contact") for _, data in booked] == [str(contact.number)]
