"""The operator's feedback form in a real browser (Debian's chromium, headless, through
chromedriver): a staff member logged in with password and TOTP fills the form with the
keyboard, attaches a PDF, sends it, reads the confirmation number; then an EICAR file is
refused on the page with what was typed kept. Screenshots under the test's tmp_path."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_browser import BROWSER_ABSENT, chromium_in
from feedback_kit import EICAR, PDF, REPOSITORY, workspace_settings
from staff import START, Browser, accounts_app, first_login, staff_kit

from hotline.accounts.settings import AccountsSettings
from hotline.clock import ManualClock
from hotline.store.db import create_engine
from workspace.model import ContactChannel
from workspace.part import WorkspaceService

pytestmark = [
    pytest.mark.skipif(BROWSER_ABSENT, reason="chromium/chromedriver absent"),
    pytest.mark.skipif(shutil.which("clamscan") is None, reason="ClamAV is not installed"),
]


def fill_by_keyboard(driver: object, files: list[Path]) -> None:
    """Tab from the name field through the form, typing as an operator does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    name = driver.find_element(By.ID, "name")  # type: ignore[attr-defined]
    assert driver.switch_to.active_element == name  # type: ignore[attr-defined]  # autofocus
    for text in ("Сидоров Пётр", "8 916 555-44-33", "1234567897"):
        driver.switch_to.active_element.send_keys(text, Keys.TAB)  # type: ignore[attr-defined]
    focused = driver.switch_to.active_element  # type: ignore[attr-defined]
    assert focused.get_attribute("id") == "category"
    focused.send_keys("Платежи", Keys.TAB)  # typing an option's title picks it
    driver.switch_to.active_element.send_keys(  # type: ignore[attr-defined]
        "Платёж прошёл, а в личном кабинете долг <b>не погашен</b>."
    )
    # the file chooser is the one control a keyboard cannot drive headless: chromedriver
    # hands the path to the input, as a person picking the file would
    upload = driver.find_element(By.ID, "attachments")  # type: ignore[attr-defined]
    upload.send_keys("\n".join(str(f) for f in files))


def visit(base: str, cookie: tuple[str, str], shots: Path) -> tuple[str, str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    pdf, eicar = shots / "квитанция.pdf", shots / "eicar.txt"
    pdf.write_bytes(PDF)
    eicar.write_bytes(EICAR)
    driver = chromium_in(shots / "profile", "1000,1300")
    wait = WebDriverWait(driver, 20)
    try:
        driver.get(base + "/login")
        driver.add_cookie({"name": cookie[0], "value": cookie[1], "path": "/"})
        driver.get(base + "/desk/feedback")
        assert driver.title == "Форма обратной связи"
        driver.save_screenshot(str(shots / "1-empty-form.png"))
        fill_by_keyboard(driver, [pdf])
        driver.save_screenshot(str(shots / "2-filled.png"))
        driver.find_element(By.ID, "phone").send_keys(Keys.ENTER)
        number = wait.until(EC.presence_of_element_located((By.ID, "confirmation"))).text
        driver.save_screenshot(str(shots / "3-confirmed.png"))
        fill_by_keyboard(driver, [eicar])
        driver.find_element(By.ID, "phone").send_keys(Keys.ENTER)
        refusal = wait.until(EC.presence_of_element_located((By.ID, "refusal"))).text
        assert driver.find_element(By.ID, "name").get_attribute("value") == "Сидоров Пётр"
        driver.save_screenshot(str(shots / "4-eicar-refused.png"))
        return number, refusal
    finally:
        driver.quit()


async def test_an_operator_sends_the_form_with_a_pdf_and_an_eicar_file_is_refused(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    accounts = AccountsSettings(
        totp_key_file=str(tmp_path / "keys" / "totp.key"), plain_http_loopback=True,
        trusted_proxies="127.0.0.1",
    )  # fmt: skip
    async with staff_kit(url, tmp_path, clock=clock, settings=accounts) as kit:
        engine = create_engine(url)
        service = WorkspaceService.build(
            engine, workspace_settings(tmp_path),
            retention_file=str(REPOSITORY / "dialplans" / "retention.yaml"), clock=clock,
        )  # fmt: skip
        await service.start()
        app = accounts_app(kit)
        service.install(app)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            browser = Browser(client, kit.cookie_name, "127.0.0.1")
            await first_login(browser, kit, clock, "ivanova")  # password and TOTP
            assert browser.cookie is not None
            shots = tmp_path / "screenshots"
            shots.mkdir()
            base = str(client.make_url("")).rstrip("/")
            number, refusal = await asyncio.to_thread(
                visit, base, (kit.cookie_name, browser.cookie), shots
            )
        await engine.dispose()
    assert "антивирус обнаружил угрозу" in refusal and "eicar.txt" in refusal
    contacts = await service.registry.search("погашен", actor=kit_actor(), source="test")
    assert [str(c.number) for c in contacts] == [number]  # the EICAR form stored nothing
    (contact,) = contacts
    assert contact.channel == ContactChannel.FEEDBACK and contact.operator_id == "ivanova"
    assert contact.caller_phone == "79165554433" and contact.category.value == "payments"
    (attachment,) = await service.feedback.attachments.of_contact(contact.number)
    assert (attachment.name, attachment.media_type) == ("квитанция.pdf", "application/pdf")
    assert len(list(shots.glob("*.png"))) == 4  # tmp_path/screenshots, to look at


def kit_actor() -> object:
    from hotline.auth import Actor

    return Actor("test", "system", kind="system")
