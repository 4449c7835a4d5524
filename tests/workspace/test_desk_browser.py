"""The desktop in a real headless Chromium against a running controller and the simulated PBX:
the operator logs in with password and TOTP, goes ready with Alt+R, a caller placed by the
simulator pops with the menu's data, the contact opens at answer, the wrap-up form is filled
and saved with Ctrl+Enter, the state bar counts the wrap-up down and Alt+W ends it, the
caller's history is found by contact number, and the operator logs out. Screenshots of each
screen are saved in the test's directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from controllers import recorder_environment
from desk_browser import (
    by_id,
    chromium_or_skip,
    first_login,
    place_call,
    shortcut,
    shot,
    streams_notice_a_closed_page_soon,
    text_of,
)
from desk_browser import wait_for as wait
from sim_rig import REPEAT_MENU, REPEAT_NUMBER, groups_yaml, operators_yaml, sim_controller
from staff import ADMIN_CLI

from controller.node import Controller
from pbxsim.callers import CallerScript
from pbxsim.queue_state import Operator

NUMBER = "88009000009"
MENU = f"""\
number: "{NUMBER}"
title: проверка рабочего места
group: help
start: welcome
nodes:
  welcome: {{kind: play, prompts: [hotline/greeting-general], next: mark-topic}}
  mark-topic: {{kind: set, values: {{topic: "статус заявления"}}, next: to-operator}}
  to-operator:
    kind: queue
    group: help
    data: [topic]
    then_rating: rate
    otherwise: busy
  rate:
    kind: rating
    prompts: [hotline/rating-request]
    thanks: [hotline/rating-thanks]
    timeout: 1
    retries: 1
    next: goodbye
  busy: {{kind: hangup, prompts: [hotline/all-busy]}}
  goodbye: {{kind: hangup, prompts: [hotline/goodbye]}}
"""
GROUPS = groups_yaml("help", "tier2", ring_seconds=5, max_wait_seconds=60, widen_after_seconds=60)
OPERATORS = operators_yaml(anna={"help": 9, "tier2": 1})
CALLER = "+79991234567"


@asynccontextmanager
async def desk_controller(tmp_path: Path) -> AsyncIterator[Controller]:
    """A controller with the desk's menus, groups and one operator (anna) in `tmp_path`."""
    async with sim_controller(
        tmp_path,
        {NUMBER: MENU, REPEAT_NUMBER: REPEAT_MENU},
        groups=GROUPS,
        operators=OPERATORS,
        environment={
            "HOTLINE_NODE_NAME": "desk-node",
            **recorder_environment(tmp_path / "recorder"),
        },
    ) as node:
        yield node


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with desk_controller(tmp_path) as node:
        yield node


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    streams_notice_a_closed_page_soon(monkeypatch)
    driver = chromium_or_skip()
    yield driver
    driver.quit()


async def logged_in_desk(controller: Controller, driver: Any, tmp_path: Path) -> str:
    assert controller.accounts is not None
    one_time = await controller.accounts.accounts.add(
        "anna", "operator", "Иванова Анна Петровна", by=ADMIN_CLI
    )
    base = f"http://127.0.0.1:{controller.http_port}"
    await asyncio.to_thread(first_login, driver, base, "anna", one_time)
    await asyncio.to_thread(driver.get, base + "/desk")
    await asyncio.to_thread(wait, driver, text_of("state", "не в линии"))
    return base


async def test_an_operator_takes_a_call_in_the_browser_from_login_to_logout(
    controller: Controller, chromium: Any, tmp_path: Path
) -> None:
    driver = chromium
    base = await logged_in_desk(controller, driver, tmp_path)
    await asyncio.to_thread(shot, driver, tmp_path, "1-desk-logged-out")
    assert "Рабочее место" in driver.title or "оператора" in driver.title

    await asyncio.to_thread(shortcut, driver, "r")  # Alt+R: ready, pushed back by the ACD
    await asyncio.to_thread(wait, driver, text_of("state", "готов"))
    await asyncio.to_thread(shot, driver, tmp_path, "2-ready")

    assert controller.agi is not None
    phone = Operator(ring_delay=1.5, talk_time=4.0)
    call = asyncio.create_task(
        place_call(
            controller.agi.port,
            {"PJSIP/1001": phone},
            CallerScript(hangup_at=60, menu_keys="5", reaction=0.1),
            uniqueid="1795563091.1",
            number=NUMBER,
            caller=CALLER,
        )
    )
    await asyncio.to_thread(wait, driver, lambda d: by_id(d, "pop").is_displayed())
    assert by_id(driver, "pop-phone").text == "79991234567"
    assert by_id(driver, "pop-line").text == NUMBER
    assert by_id(driver, "pop-group").text == "help"
    assert by_id(driver, "pop-path").text.startswith("welcome")
    await asyncio.to_thread(shot, driver, tmp_path, "3-pop")

    await asyncio.to_thread(wait, driver, lambda d: by_id(d, "contact").is_displayed())
    await asyncio.to_thread(wait, driver, text_of("state", "разговор"))
    number = by_id(driver, "contact-number").text
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, "category")).select_by_value("application_status")
    resolution = by_id(driver, "resolution")
    resolution.send_keys("Сообщили статус заявления, вопрос решён")
    resolution.send_keys(Keys.CONTROL, Keys.ENTER)  # Ctrl+Enter saves the wrap-up
    await asyncio.to_thread(wait, driver, text_of("message", "сохранено"))
    await asyncio.to_thread(shot, driver, tmp_path, "4-wrap-up-saved")

    _, status = await call  # the operator hangs up; the caller rates 5
    assert status == "HANGUP"
    await asyncio.to_thread(wait, driver, text_of("state", "осталось"))  # wrap-up countdown
    await asyncio.to_thread(shot, driver, tmp_path, "5-wrap-up-countdown")
    assert controller.workspace is not None
    await controller.workspace.desk.idle()
    contact = await controller.workspace.registry.of_call("1795563091.1")
    assert contact is not None and str(contact.number) == number
    assert (contact.operator_id, contact.resolution) == (
        "anna",
        "Сообщили статус заявления, вопрос решён",
    )
    assert contact.rating == 5 and contact.first_contact_resolution

    await asyncio.to_thread(shortcut, driver, "w")  # Alt+W: wrap-up done
    await asyncio.to_thread(wait, driver, text_of("state", "готов"))
    # Alt+T asks the ACD to transfer the caller: there is none now, and the screen says so
    await asyncio.to_thread(shortcut, driver, "t")
    await asyncio.to_thread(wait, driver, text_of("message", "не в разговоре"))

    by_id(driver, "query").send_keys(number)
    by_id(driver, "query").submit()
    await asyncio.to_thread(wait, driver, text_of("results", number))
    assert "Сообщили статус заявления" in by_id(driver, "results").text
    await asyncio.to_thread(shot, driver, tmp_path, "6-history")

    await asyncio.to_thread(shortcut, driver, "p")  # Alt+P: pause with the chosen reason
    await asyncio.to_thread(wait, driver, text_of("state", "пауза (перерыв)"))
    await asyncio.to_thread(lambda: by_id(driver, "leave").submit())
    await asyncio.to_thread(wait, driver, lambda d: d.current_url.endswith("/login"))
    await asyncio.to_thread(shot, driver, tmp_path, "7-logged-out")
    await asyncio.to_thread(driver.get, base + "/desk")  # the session is over
    assert "/desk" not in driver.current_url or "Рабочее место:" not in driver.page_source


SHIFT = 50
CALLERS = [f"+7916555{n:04d}" for n in range(12)]  # a dozen citizens, most call again


def showing(section: str, call_id: str) -> Any:
    return lambda driver: by_id(driver, section).get_attribute("data-call") == call_id


async def take_call(
    controller: Controller, driver: Any, n: int, number: str, keys: str, caller: str
) -> str:
    """One call of the shift, worked in the browser; returns the contact's number."""
    from selenium.webdriver.common.keys import Keys

    assert controller.agi is not None
    call_id = f"1795563{n:03d}.1"
    phone = Operator(ring_delay=0.2, talk_time=0.3)
    call = asyncio.create_task(
        place_call(
            controller.agi.port,
            {"PJSIP/1001": phone},
            CallerScript(hangup_at=60, menu_keys=keys, reaction=0.05),
            uniqueid=call_id,
            number=number,
            caller=caller,
        )
    )
    await asyncio.to_thread(
        wait, driver, lambda d: by_id(d, "pop").get_attribute("data-call") == call_id
    )
    await asyncio.to_thread(
        wait, driver, lambda d: by_id(d, "contact").get_attribute("data-call") == call_id
    )
    contact = by_id(driver, "contact-number").text
    resolution = by_id(driver, "resolution")
    resolution.clear()
    resolution.send_keys(f"Разъяснили порядок, звонок {n}")
    resolution.send_keys(Keys.CONTROL, Keys.ENTER)
    await asyncio.to_thread(wait, driver, text_of("message", f"{contact} сохранено"))
    _, status = await call
    assert status == "HANGUP"
    await asyncio.to_thread(wait, driver, text_of("state", "обработка"))
    await asyncio.to_thread(shortcut, driver, "w")
    await asyncio.to_thread(wait, driver, text_of("state", "готов"))
    return contact


# About six minutes on two shared cores (each call runs the whole menu, the contact number
# told digit by digit and the rating): over the suite's one-minute budget, so it is run by
# bench/desk_shift.py, which calls this very function.
@pytest.mark.skip(reason="a six-minute shift: run bench/desk_shift.py")
async def test_a_compressed_shift_of_50_calls_leaves_complete_contacts_and_knows_repeats(
    controller: Controller, chromium: Any, tmp_path: Path
) -> None:
    driver = chromium
    await logged_in_desk(controller, driver, tmp_path)
    await asyncio.to_thread(shortcut, driver, "r")
    await asyncio.to_thread(wait, driver, text_of("state", "готов"))
    assert controller.workspace is not None
    registry = controller.workspace.registry
    numbers: list[str] = []
    repeats_by_phone = repeats_by_number = 0
    for n in range(SHIFT):
        caller = CALLERS[n % len(CALLERS)]
        if n % 10 == 9:  # the caller keys in the number of a contact they heard earlier
            earlier = numbers[n - 5].replace("-", "")
            contact = await take_call(controller, driver, n, REPEAT_NUMBER, earlier + "#4", caller)
            assert by_id(driver, "pop-about").text.startswith(numbers[n - 5])
            repeats_by_number += 1
        else:
            contact = await take_call(controller, driver, n, NUMBER, "4", caller)
            if n >= len(CALLERS):  # this phone called earlier today
                assert by_id(driver, "pop-repeat").is_displayed()
                assert len(by_id(driver, "pop-history").find_elements("tag name", "li")) >= 1
                repeats_by_phone += 1
        numbers.append(contact)
    await controller.workspace.desk.idle()
    await asyncio.to_thread(shot, driver, tmp_path, "shift-last-call")
    for n, printed in enumerate(numbers):
        stored = await registry.of_call(f"1795563{n:03d}.1")
        assert stored is not None and str(stored.number) == printed
        assert stored.operator_id == "anna" and stored.rating == 4
        assert stored.resolution == f"Разъяснили порядок, звонок {n}"
        assert stored.waited_seconds is not None and stored.waited_seconds >= 0
        assert stored.topic == ("статус заявления" if n % 10 != 9 else "")
        assert stored.repeat == (n >= len(CALLERS))  # by phone; a keyed number is `about`
    assert (repeats_by_phone, repeats_by_number) == (34, 5)
