"""Logging in through the pages: password, then TOTP (enrolled at the first login), sessions."""

from __future__ import annotations

import re

import pytest
from staff import ADMIN_CLI, CODES_SHOWN, NEW_PASSWORD, Site, first_login, totp_code

from hotline.access import routes_without_policy


@pytest.mark.parametrize(
    "db_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_first_login_enrols_totp_and_reaches_me(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    assert len(person.recovery_codes) == 10 == len(set(person.recovery_codes))
    status, html, _ = await browser.get("/me")
    assert status == 200
    assert "Иванова Анна Петровна" in html and "оператор" in html
    assert await browser.api() == (
        200,
        {"user_id": "ivanova", "role": "operator", "kind": "person", "scopes": []},
    )
    account = await site.kit.accounts.get("ivanova")
    assert account is not None and account.totp_enrolled and not account.must_change_password


async def test_enrolment_page_shows_an_inline_qr_code_and_loads_nothing_from_outside(
    site: Site,
) -> None:
    browser = site.browser()
    one_time = await site.kit.accounts.add("petrov", "supervisor", "Петров", by=ADMIN_CLI)
    await browser.login("petrov", one_time)
    await browser.form_post(
        "/login/password",
        "/login/password",
        {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
    )
    status, html, response = await browser.get("/login/enrol")
    assert status == 200 and "<svg" in html and "QR-код" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    # the enrolment page is not a way in: the API still refuses this session
    assert (await browser.api())[0] == 401


async def test_one_time_password_must_be_replaced_by_a_long_enough_one(site: Site) -> None:
    browser = site.browser()
    one_time = await site.kit.accounts.add("sidorova", "operator", "Сидорова", by=ADMIN_CLI)
    await browser.login("sidorova", one_time)
    for new, again in (("short", "short"), (NEW_PASSWORD, NEW_PASSWORD + "x")):
        status, html = await browser.form_post(
            "/login/password",
            "/login/password",
            {"new_password": new, "new_password_again": again},
        )
        assert status == 400 and 'class="error"' in html
    assert (await browser.get("/login/enrol"))[2].headers["Location"] == "/login/password"
    assert (await browser.api())[0] == 401


async def test_second_login_asks_for_the_code(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    other = site.browser()
    assert await other.login("ivanova", person.password) == "/login/totp"
    assert (await other.api())[0] == 401  # a password alone opens nothing
    assert (await other.get("/me"))[0] == 401
    site.clock.advance(30)
    status, where = await other.form_post(
        "/login/totp", "/login/totp", {"code": totp_code(person.secret, site.clock)}
    )
    assert (status, where) == (303, "/me")
    assert (await other.api())[1]["user_id"] == "ivanova"


async def test_wrong_code_is_refused(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    await browser.login("ivanova", person.password)
    site.clock.advance(30)
    good = totp_code(person.secret, site.clock)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    status, html = await browser.form_post("/login/totp", "/login/totp", {"code": wrong})
    assert status == 400 and "Неверный код" in html
    assert (await browser.api())[0] == 401


async def test_replayed_totp_code_is_refused(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    enrolment_code = totp_code(person.secret, site.clock)
    await browser.login("ivanova", person.password)
    # the very code that confirmed the enrolment, within its 30 seconds
    status, _ = await browser.form_post("/login/totp", "/login/totp", {"code": enrolment_code})
    assert status == 400
    site.clock.advance(30)
    code = totp_code(person.secret, site.clock)
    assert (await browser.form_post("/login/totp", "/login/totp", {"code": code}))[0] == 303
    thief = site.browser("10.9.9.9")  # saw the code over the shoulder, uses it at once
    await thief.login("ivanova", person.password)
    assert (await thief.form_post("/login/totp", "/login/totp", {"code": code}))[0] == 400
    assert (await thief.api())[0] == 401


async def test_recovery_code_works_once(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    code = person.recovery_codes[3]
    for attempt in ("first", "again"):
        other = site.browser()
        await other.login("ivanova", person.password)
        typed = code.upper().replace("-", " ")  # as read aloud from paper
        status, where = await other.form_post("/login/recovery", "/login/recovery", {"code": typed})
        if attempt == "first":
            assert (status, where) == (303, "/me")
            assert (await other.api())[0] == 200
            assert '<dd id="codes-left">9</dd>' in (await other.get("/me"))[1]
        else:
            assert status == 400 and "уже использованный" in where
            assert (await other.api())[0] == 401


async def test_recovery_codes_are_shown_once(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    for page in ("/me", "/login/enrol", "/login"):
        _, html, _ = await browser.get(page)
        assert not CODES_SHOWN.findall(html)


async def test_unknown_disabled_and_wrong_password_get_the_same_answer(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    await site.kit.accounts.add("gone", "operator", "Уволенный", by=ADMIN_CLI)
    await site.kit.accounts.disable("gone", by=ADMIN_CLI)
    answers = set()
    for account, password in (("ivanova", "wrong password!"), ("nobody", "x"), ("gone", "x")):
        status, html, _ = await site.browser(f"10.1.0.{len(answers)}").post(
            "/login", {"account": account, "password": password}
        )
        answers.add((status, re.sub(r'value="[^"]*"', "", html)))
    assert len(answers) == 1 and next(iter(answers))[0] == 400
    assert "Неверное имя пользователя или пароль" in next(iter(answers))[1]
    assert person.password  # the right one still works
    assert await site.browser().login("ivanova", person.password) == "/login/totp"


async def test_every_route_declares_its_policy(site: Site) -> None:
    assert routes_without_policy(site.client.app) == []
