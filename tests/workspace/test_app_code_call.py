"""The app's button end to end on the simulator: the app's backend registers an intent, the
citizen calls from that phone and keys the code, the ACD's queue data carries the application
and the operator's pop shows it; a wrong code changes nothing the caller hears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from controllers import WITHOUT_RECORDER
from people import as_user
from sim_rig import dial_in, groups_yaml, operators_yaml, sim_controller

from controller.node import Controller
from hotline.auth import Actor
from hotline.clock import SystemClock
from pbxsim.callers import CallerScript
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues

NUMBER = "88009000020"
MENU = f"""\
number: "{NUMBER}"
title: звонок из приложения
group: help
start: code
nodes:
  code:
    kind: app_code
    prompts: [hotline/enter-app-code]
    timeout: 5
    next: to-operator
    otherwise: to-operator
  to-operator: {{kind: queue, group: help, otherwise: busy}}
  busy: {{kind: hangup, prompts: [hotline/all-busy]}}
"""
GROUPS = groups_yaml("help", ring_seconds=1, max_wait_seconds=30, widen_after_seconds=30)
OPERATORS = operators_yaml(boris={"help": 5})
CALLER = "+79991234567"


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with sim_controller(
        tmp_path,
        {NUMBER: MENU},
        groups=GROUPS,
        operators=OPERATORS,
        staff=True,
        environment=WITHOUT_RECORDER,
    ) as node:
        yield node


async def call_in(controller: Controller, keys: str, uniqueid: str) -> list[str]:
    """One call from CALLER keying `keys` at the menu, answered by boris; the prompts heard."""
    assert controller.agi is not None
    queues = Queues(
        {}, SystemClock(), operators={"PJSIP/1002": Operator(ring_delay=0.1, talk_time=0.2)}
    )
    script = CallerScript(hangup_at=60, menu_keys=keys, reaction=0.05)
    agi, _ = await dial_in(
        controller.agi.port, queues, script, uniqueid=uniqueid, number=NUMBER, caller=CALLER
    )
    return list(agi.stats.prompts)


async def operator(controller: Controller, action: str) -> None:
    url = f"http://127.0.0.1:{controller.http_port}/api/operators/boris/{action}"
    async with aiohttp.ClientSession(headers=as_user("boris")) as http, http.post(url) as r:
        assert r.status == 200, await r.text()


async def app_backend_registers(controller: Controller, phone: str, application: str) -> str:
    """What the app's backend does when the citizen presses the button: a service key with
    the scope app:intents, POST /api/app/call-intents; the code it shows the citizen."""
    assert controller.accounts is not None
    key, _ = await controller.accounts.keys.add(
        "mobile-app", ["app:intents"], timedelta(days=1), by=Actor("cli:admin", "system", "system")
    )
    url = f"http://127.0.0.1:{controller.http_port}/api/app/call-intents"
    headers = {"Authorization": f"Bearer {key}"}
    body = {"phone": phone, "application": application}
    async with aiohttp.ClientSession(headers=headers) as http, http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["code"])


async def test_the_code_from_the_app_puts_the_application_on_the_pop(
    controller: Controller,
) -> None:
    workspace = controller.workspace
    assert workspace is not None
    code = await app_backend_registers(controller, "+7 999 123-45-67", "1234567897")
    await operator(controller, "login")
    with workspace.desk.subscribe("boris") as desk:
        heard = await call_in(controller, code + "#", "1795563091.1")
        await workspace.desk.idle()
        pop = next(e for e in iter(desk.get_nowait, None) if e.kind == "pop")  # past `state`
    assert pop.kind == "pop"
    assert pop.data["application_number"] == "1234567897"  # the queue data carried it
    contact = await workspace.registry.of_call("1795563091.1")
    assert contact is not None and contact.application_number == "1234567897"
    assert heard[0] == "hotline/enter-app-code"

    # the same code again (or any wrong one) reveals nothing: the caller hears the same
    # and the operator's pop has no application
    await operator(controller, "wrap-up-done")
    with workspace.desk.subscribe("boris") as desk:
        again = await call_in(controller, code + "#", "1795563091.2")
        await workspace.desk.idle()
        pop = next(e for e in iter(desk.get_nowait, None) if e.kind == "pop")  # past `state`
    assert pop.kind == "pop" and pop.data["application_number"] is None
    assert again == heard
