"""One real browser (Debian's chromium through chromedriver, headless) through the back office:
a back-office person logs in (password, TOTP enrolment), opens the work queue, opens the
overdue ticket with the keyboard (j, Enter), comments (c), and resolves it; the citizen's
letter arrives at the local SMTP server. Screenshots of each page are saved under tmp_path.
Skips only when chromium or chromedriver is not installed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from desk_browser import BROWSER_ABSENT, chromium_in, first_login, wait_for
from ports import served
from staff import ADMIN_CLI, accounts_app, browser_kit, totp_code
from ticket_kit import HOUR, SIDOROV, Office, office

from hotline.accounts.build import AccountsKit
from hotline.clock import ManualClock
from workspace.backoffice_http import add_backoffice_routes
from workspace.model import Category

PASSWORD = "длинный пароль сотрудника"

pytestmark = pytest.mark.skipif(BROWSER_ABSENT, reason="chromium/chromedriver absent")


@dataclass
class LiveOffice:
    url: str
    kit: AccountsKit
    clock: ManualClock
    office: Office
    ticket: int


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveOffice]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    async with browser_kit(url, tmp_path) as (kit, clock), office(url, tmp_path) as tickets:
        await tickets.unresolved_contact(Category.TECHNICAL_FAULT)
        await tickets.desk.adopt()
        [row] = await tickets.desk.queue(actor=SIDOROV, source="test")
        await tickets.desk.set_email(row.id, "citizen@example.org", actor=SIDOROV, source="t")
        tickets.clock.advance(49 * HOUR)  # past the technical department's 48 hours
        await tickets.desk.escalate()
        app = accounts_app(kit)
        add_backoffice_routes(app, tickets.desk)
        async with served(app) as base:
            yield LiveOffice(base, kit, clock, tickets, row.id)


def work(live: LiveOffice, one_time: str, shots: Path) -> None:
    """The whole visit, run in a worker thread while the server serves on the test's loop."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select

    driver = chromium_in(shots / "profile", "1200,1000")
    d: object = driver
    try:
        first_login(
            driver, live.url, "sidorov", one_time,
            new_password=PASSWORD, code=lambda secret: totp_code(secret, live.clock),
        )  # fmt: skip

        d.get(live.url + "/backoffice")  # type: ignore[attr-defined]
        wait_for(driver, EC.presence_of_element_located((By.ID, "queue")))
        row = d.find_element(By.CSS_SELECTOR, "#queue tbody tr")  # type: ignore[attr-defined]
        assert "overdue" in row.get_attribute("class")
        assert "просрочена" in row.text
        d.save_screenshot(str(shots / "1-queue.png"))  # type: ignore[attr-defined]
        body = d.find_element(By.TAG_NAME, "body")  # type: ignore[attr-defined]
        body.send_keys("j")  # the first ticket, its link focused
        d.switch_to.active_element.send_keys(Keys.ENTER)  # type: ignore[attr-defined]
        wait_for(driver, EC.url_contains(f"/backoffice/tickets/{live.ticket}"))
        assert "Иванов Иван" in d.page_source  # type: ignore[attr-defined]
        d.save_screenshot(str(shots / "2-ticket.png"))  # type: ignore[attr-defined]

        d.find_element(By.TAG_NAME, "body").send_keys("c")  # type: ignore[attr-defined]
        box = d.switch_to.active_element  # type: ignore[attr-defined]
        assert box.get_attribute("id") == "comment"
        box.send_keys("Сбой устранён, <b>проверено</b>")
        box.send_keys(Keys.TAB)
        d.switch_to.active_element.send_keys(Keys.ENTER)  # type: ignore[attr-defined]
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "comments"), "Сбой устранён"))
        assert "<b>проверено</b>" in d.find_element(By.ID, "comments").text  # type: ignore[attr-defined]

        Select(d.find_element(By.ID, "state")).select_by_value("resolved")  # type: ignore[attr-defined]
        d.find_element(By.ID, "change-state").send_keys(Keys.ENTER)  # type: ignore[attr-defined]
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "ticket-state"), "Решена"))
        assert "просрочена" not in d.find_element(By.ID, "ticket-title").text  # type: ignore[attr-defined]
        d.save_screenshot(str(shots / "3-resolved.png"))  # type: ignore[attr-defined]
        d.get(live.url + "/backoffice")  # type: ignore[attr-defined]
        assert "Открытых заявок нет" in d.page_source  # type: ignore[attr-defined]
        d.save_screenshot(str(shots / "4-queue-empty.png"))  # type: ignore[attr-defined]
    finally:
        d.quit()  # type: ignore[attr-defined]


async def test_a_back_office_person_resolves_a_ticket_in_chromium(
    live: LiveOffice, tmp_path: Path
) -> None:
    one_time = await live.kit.accounts.add("sidorov", "back_office", "Сидоров Семён", by=ADMIN_CLI)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    await asyncio.to_thread(work, live, one_time, shots)
    assert len(list(shots.glob("*.png"))) == 4  # tmp_path/screenshots, to look at
    to_citizen = [m for m in live.office.mailbox.messages if m["To"] == "citizen@example.org"]
    assert len(to_citizen) == 1  # the overdue mark went to the department's address
