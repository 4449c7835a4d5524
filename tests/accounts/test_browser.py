"""One real browser (Debian's chromium through chromedriver, headless) through the login:
password, the TOTP enrolment, the recovery codes, /me, log out; then password and code again.

Only the keyboard is used (fields filled, forms sent with Enter, the log-out button reached
with Tab), as an operator without a mouse would. Screenshots of each page are saved under the
test's tmp_path. Skips only when chromium or chromedriver is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from desk_browser import BROWSER_ABSENT, chromium_in, first_login, type_and_enter
from ports import served
from staff import ADMIN_CLI, accounts_app, browser_kit, totp_code

from hotline.accounts.build import AccountsKit
from hotline.clock import ManualClock

PASSWORD = "длинный пароль для браузера"

pytestmark = pytest.mark.skipif(BROWSER_ABSENT, reason="chromium/chromedriver absent")


@dataclass
class LiveSite:
    url: str
    kit: AccountsKit
    clock: ManualClock


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveSite]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    async with browser_kit(url, tmp_path) as (kit, clock), served(accounts_app(kit)) as base:
        yield LiveSite(base, kit, clock)


def log_out_by_keyboard(driver: object) -> None:
    """Tab from the top of /me until the log-out button has the focus, then Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    body = driver.find_element(By.TAG_NAME, "body")  # type: ignore[attr-defined]
    body.send_keys(Keys.TAB)
    for _ in range(10):
        focused = driver.switch_to.active_element  # type: ignore[attr-defined]
        if focused.get_attribute("id") == "logout":
            focused.send_keys(Keys.ENTER)
            return
        focused.send_keys(Keys.TAB)
    raise AssertionError("the log-out button cannot be reached with Tab")


def browse(live: LiveSite, one_time: str, shots: Path, loop: asyncio.AbstractEventLoop) -> None:
    """The whole visit, run in a worker thread while the server serves on the test's loop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_in(shots / "profile", "1000,1100")
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(live.url + "/login")
        driver.save_screenshot(str(shots / "1-login.png"))
        assert "Вход" in driver.title
        secret = first_login(
            driver, live.url, "ivanova", one_time,
            new_password=PASSWORD, code=lambda secret: totp_code(secret, live.clock),
            enrol_shot=shots / "2-enrol.png",
        )  # fmt: skip
        codes = driver.find_elements(By.CSS_SELECTOR, "#recovery-codes li")
        assert len(codes) == 10
        driver.save_screenshot(str(shots / "3-recovery-codes.png"))
        driver.find_element(By.ID, "continue").click()
        wait.until(EC.presence_of_element_located((By.ID, "account-id")))
        assert driver.find_element(By.ID, "name").text == "Иванова Анна Петровна"
        assert driver.find_element(By.ID, "role").text == "оператор"
        driver.save_screenshot(str(shots / "4-me.png"))
        driver.find_element(By.ID, "new-pin-button").send_keys(Keys.ENTER)
        pin = wait.until(EC.presence_of_element_located((By.ID, "new-pin"))).text
        assert len(pin) == 6 and pin.isdigit()
        driver.save_screenshot(str(shots / "4b-new-pin.png"))
        log_out_by_keyboard(driver)
        wait.until(EC.url_contains("/login"))
        assert driver.get_cookies() == []
        # the next shift: password, then the code the app shows 30 seconds later
        driver.get(live.url + "/me")
        assert "Требуется вход" in driver.page_source
        driver.get(live.url + "/login")
        type_and_enter(driver, {"account": "ivanova", "password": PASSWORD})
        wait.until(EC.url_contains("/login/totp"))
        driver.save_screenshot(str(shots / "5-totp.png"))
        asyncio.run_coroutine_threadsafe(_advance(live.clock, 30), loop).result()
        type_and_enter(driver, {"code": totp_code(secret, live.clock)})
        wait.until(EC.presence_of_element_located((By.ID, "account-id")))
        driver.save_screenshot(str(shots / "6-me-again.png"))
        log_out_by_keyboard(driver)
        wait.until(EC.url_contains("/login"))
        driver.save_screenshot(str(shots / "7-logged-out.png"))
    finally:
        driver.quit()


async def _advance(clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)


async def test_login_enrol_me_and_logout_in_chromium(live: LiveSite, tmp_path: Path) -> None:
    one_time = await live.kit.accounts.add(
        "ivanova", "operator", "Иванова Анна Петровна", by=ADMIN_CLI
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    await asyncio.to_thread(browse, live, one_time, shots, asyncio.get_running_loop())
    assert len(list(shots.glob("*.png"))) == 8  # tmp_path/screenshots, to look at
