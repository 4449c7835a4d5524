"""The wallboard in a real headless Chromium against a running controller and the simulated
PBX: a supervisor logs in with password and TOTP and opens the wallboard; an operator goes
into the line, a caller placed by the simulator waits, rings and talks, and the wallboard
follows each step without being reloaded; the AMI link that cannot be reached is an alarm, and
the listen button of a supervisor with no phone of her own says so. A screenshot is saved in
the test's directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from controllers import WITHOUT_RECORDER, controller_settings, started
from desk_browser import (
    by_id,
    chromium_or_skip,
    first_login,
    place_call,
    shot,
    streams_notice_a_closed_page_soon,
    text_of,
)
from desk_browser import wait_for as wait
from ports import unused_port
from staff import ADMIN_CLI

from controller.node import Controller
from pbxsim.callers import CallerScript
from pbxsim.queue_state import Operator

NUMBER = "88009000011"
MENU = f"""\
number: "{NUMBER}"
title: проверка табло
group: help
start: to-operator
nodes:
  to-operator:
    kind: queue
    group: help
    otherwise: busy
  busy: {{kind: hangup, prompts: [hotline/all-busy]}}
"""
GROUPS = """\
groups:
  help:
    name: Справка
    schedule: round-the-clock
    wrap_up_seconds: 60
    ring_seconds: 10
    max_wait_seconds: 120
    widen_after_seconds: 120
"""
OPERATORS = """\
operators:
  anna:
    name: Анна
    device: PJSIP/1001
    skills: {help: 9}
"""


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    dialplans = tmp_path / "dialplans"
    dialplans.mkdir()
    (dialplans / f"{NUMBER}.yaml").write_text(MENU, encoding="utf-8")
    (tmp_path / "groups.yaml").write_text(GROUPS, encoding="utf-8")
    (tmp_path / "operators.yaml").write_text(OPERATORS, encoding="utf-8")
    settings = controller_settings(
        tmp_path,
        {
            "HOTLINE_IVR_DIALPLANS_DIR": str(dialplans),
            "HOTLINE_IVR_GENERAL_NUMBER": NUMBER,
            "HOTLINE_ROUTING_GROUPS_FILE": str(tmp_path / "groups.yaml"),
            "HOTLINE_ROUTING_OPERATORS_FILE": str(tmp_path / "operators.yaml"),
            "HOTLINE_ROUTING_SCHEDULES_DIR": str(dialplans),
            # an Asterisk nobody answers at: the link stays down
            "HOTLINE_AMI_ENABLED": "true",
            "HOTLINE_AMI_PORT": str(unused_port()),
            "HOTLINE_AMI_SECRET": "nobody-listens",
            **WITHOUT_RECORDER,
        },
    )
    async with started(settings) as node:
        yield node


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    streams_notice_a_closed_page_soon(monkeypatch)
    driver = chromium_or_skip()
    yield driver
    driver.quit()


def cell(driver: Any, row: str, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(by_id(driver, row).find_element(By.CSS_SELECTOR, css).text)


async def test_the_wallboard_follows_a_call_live_in_the_browser(
    controller: Controller, chromium: Any, tmp_path: Path
) -> None:
    driver = chromium
    assert controller.accounts is not None and controller.acd is not None
    one_time = await controller.accounts.accounts.add(
        "orlova", "supervisor", "Орлова Ольга", by=ADMIN_CLI
    )
    base = f"http://127.0.0.1:{controller.http_port}"
    await asyncio.to_thread(first_login, driver, base, "orlova", one_time)
    await asyncio.to_thread(driver.get, base + "/supervisor/wallboard")
    await asyncio.to_thread(wait, driver, text_of("op-anna", "не в линии"))
    assert driver.title == "Табло руководителя смены"
    # the PBX cannot be reached, and the open group has nobody in the line
    await asyncio.to_thread(wait, driver, text_of("alarms", "Нет связи с АТС"))
    assert "«Справка» открыта, но в ней никого нет" in by_id(driver, "alarms").text
    driver.execute_script("window.notReloaded = true;")

    await controller.acd.node.login("anna")  # the operator goes into the line
    await asyncio.to_thread(wait, driver, text_of("op-anna", "готовы"))
    assert "никого нет" not in by_id(driver, "alarms").text

    assert controller.agi is not None
    phone = Operator(ring_delay=2.0, talk_time=30.0)
    call = asyncio.create_task(
        place_call(
            controller.agi.port,
            {"PJSIP/1001": phone},
            CallerScript(hangup_at=60, reaction=0.1),
            uniqueid="1795563400.1",
            number=NUMBER,
            caller="+79991234567",
        )
    )
    await asyncio.to_thread(wait, driver, text_of("op-anna", "вызов"))
    await asyncio.to_thread(wait, driver, text_of("op-anna", "разговор"))
    assert cell(driver, "op-anna", ".call") == "1795563400.1"
    await asyncio.to_thread(wait, driver, lambda d: cell(d, "queue-help", ".answered") == "1")
    assert by_id(driver, "today-answered").text == "1"
    assert "цель: не более 20 с" in by_id(driver, "today").text
    assert driver.execute_script("return window.notReloaded === true;")  # pushed, not reloaded
    await asyncio.to_thread(shot, driver, tmp_path, "wallboard-talking")

    from selenium.webdriver.common.by import By

    by_id(driver, "op-anna").find_element(By.CSS_SELECTOR, "button.listen").click()
    # orlova has no seat in the operators file: the wallboard says so
    await asyncio.to_thread(wait, driver, text_of("message", "не закреплён телефон"))
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    await asyncio.to_thread(wait, driver, text_of("op-anna", "обработка"))  # caller gone

    # the supervisor pauses anna from the board: the reason typed goes to the audit log
    pause = "#op-anna button.pause"
    await asyncio.to_thread(wait, driver, lambda d: d.find_elements(By.CSS_SELECTOR, pause))
    driver.find_element(By.CSS_SELECTOR, pause).click()
    await asyncio.to_thread(wait, driver, text_of("message", "Укажите причину"))
    by_id(driver, "why").send_keys("оператор ушла на консультацию")
    driver.find_element(By.CSS_SELECTOR, pause).click()
    await asyncio.to_thread(wait, driver, text_of("op-anna", "пауза: по решению руководителя"))
    assert controller.audit is not None
    acts = [e for e in await controller.audit.entries() if e.action == "operator.pause"]
    assert [(e.user_id, e.role) for e in acts] == [("orlova", "supervisor")]
    assert "оператор ушла на консультацию" in acts[0].detail
