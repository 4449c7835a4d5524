"""A real headless Chromium (Debian's chromium and chromium-driver) driven by Selenium against
a running controller, for the desktop's browser tests. Selenium is synchronous: every step
runs in a thread (`asyncio.to_thread`) so the controller in the test's event loop keeps
serving the page while the browser waits."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NEW_PASSWORD = "корректная лошадь батарея скрепка"
BROWSER_ABSENT = not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists())


def chromium_or_skip() -> Any:
    """A headless Chromium, or the test is skipped when the browser is not installed."""
    if BROWSER_ABSENT:
        pytest.skip("chromium and chromium-driver are not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1000", "--lang=ru"):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        options=options,
        service=Service(shutil.which(CHROMEDRIVER), env={**os.environ, "LANGUAGE": "ru"}),
    )
    driver.implicitly_wait(0)
    return driver


def streams_notice_a_closed_page_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live pages' event streams (`hotline.push.stream_events`) write a keepalive after
    0.2 s of silence instead of 15 s. aiohttp does not cancel a handler whose client left: a
    stream learns the page is gone at its next write, and stopping the controller waits for
    it, so each browser test's teardown took 15 s once chromium had quit."""
    from hotline.push import stream_events

    assert stream_events.__kwdefaults__ is not None
    monkeypatch.setitem(stream_events.__kwdefaults__, "keepalive", 0.2)


def wait_for(driver: Any, what: Callable[[Any], Any], seconds: float = 20) -> Any:
    """Selenium's explicit wait (the limit only turns a hang into a failure). A condition that
    reads an element while the page is being replaced (a form posted, a redirect followed) may
    find it in the old document: chromium then answers "Node with given id does not belong to
    the document", a plain WebDriverException that Selenium's conditions do not catch. That is
    asked again at the next poll; a real failure still ends in the timeout below."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(
        driver, seconds, poll_frequency=0.05, ignored_exceptions=(WebDriverException,)
    )
    try:
        return waiting.until(what)
    except TimeoutException:  # say where the browser was and what it showed
        body = driver.find_element("tag name", "body").text[:1500]
        raise AssertionError(f"{driver.current_url}:\n{body}") from None


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def text_of(element_id: str, contains: str) -> Callable[[Any], bool]:
    return lambda driver: contains in by_id(driver, element_id).text


def chromium_in(profile: Path, window_size: str) -> Any:
    """A headless Chromium keeping its profile in `profile`, its window `window_size`
    ("width,height"); the test skips when Selenium is not installed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={window_size}",
        f"--user-data-dir={profile}",
        "--lang=ru",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


def type_and_enter(driver: Any, fields: dict[str, str]) -> None:
    """Each field (by name) cleared and typed into, then Enter in the last, as a person
    without a mouse sends a form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    last = None
    for name, value in fields.items():
        last = driver.find_element(By.NAME, name)
        last.clear()
        last.send_keys(value)
    assert last is not None
    last.send_keys(Keys.ENTER)


def current_totp(secret: str) -> str:
    """The code an authenticator app shows now."""
    return str(pyotp.TOTP(secret).now())


def first_login(
    driver: Any,
    base: str,
    account: str,
    one_time: str,
    *,
    new_password: str = NEW_PASSWORD,
    code: Callable[[str], str] = current_totp,
    enrol_shot: Path | None = None,
) -> str:
    """An account's first login through the pages, by keyboard: the one-time password, a new
    password, the TOTP enrolment read off the page and confirmed with `code(secret)`, up to
    the recovery codes shown. `enrol_shot`: where to save a screenshot of the enrolment page.
    Returns the TOTP secret."""
    driver.get(base + "/login")
    type_and_enter(driver, {"account": account, "password": one_time})
    wait_for(driver, lambda d: "/login/password" in d.current_url)
    type_and_enter(driver, {"new_password": new_password, "new_password_again": new_password})
    wait_for(driver, lambda d: "/login/enrol" in d.current_url)
    if enrol_shot is not None:
        driver.save_screenshot(str(enrol_shot))
    secret = str(by_id(driver, "secret").text.replace(" ", ""))
    type_and_enter(driver, {"code": code(secret)})
    wait_for(driver, lambda d: d.find_elements("id", "recovery-codes"))  # logged in
    return secret


def shortcut(driver: Any, key: str) -> None:
    """Alt+<key>, as the operator presses it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).key_down(Keys.ALT).send_keys(key).key_up(Keys.ALT).perform()


def shot(driver: Any, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


# --- a caller placed by the simulated PBX against a running controller ---------------------


async def place_call(
    agi_port: int,
    operators: dict[str, Any],
    script: Any,
    *,
    uniqueid: str,
    number: str,
    caller: str,
) -> tuple[Any, str]:
    """One caller dialling `number` (`sim_rig.dial_in`), a channel named after `uniqueid`, 10 ms
    per prompt, no AMI events kept; returns the channel and how the AGI session ended."""
    from sim_rig import dial_in

    from hotline.clock import SystemClock
    from pbxsim.queues import Queues

    queues = Queues({}, SystemClock(), sink=None, operators=operators)
    return await dial_in(
        agi_port,
        queues,
        script,
        uniqueid=uniqueid,
        number=number,
        caller=caller,
        channel_name=f"PJSIP/carrier-{uniqueid.replace('.', '')}",
        prompt_samples=80,
    )
