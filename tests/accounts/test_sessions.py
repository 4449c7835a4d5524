"""Sessions: the cookie's flags, timeouts, fixation, logout, CSRF, accounts disabled or reset."""

from __future__ import annotations

from pathlib import Path

import pytest
from databases import DATABASE_KINDS
from staff import ADMIN_CLI, Browser, Site, first_login, staff_kit, totp_code

from hotline.accounts.settings import AccountsSettings


async def test_session_cookie_is_httponly_secure_strict_and_host_only(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    cookie = browser.last_set_cookie
    assert cookie is not None and cookie.key == "__Host-hotline-session"
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["domain"] and not cookie["max-age"] and not cookie["expires"]


@pytest.mark.parametrize(
    ("plain_http", "host", "secure"),
    [
        (True, "127.0.0.1", False),
        (True, "::1", False),
        (True, "0.0.0.0", True),
        (False, "127.0.0.1", True),
    ],
)
async def test_secure_is_dropped_only_for_plain_http_on_loopback(
    tmp_path: Path, plain_http: bool, host: str, secure: bool
) -> None:
    settings = AccountsSettings(
        totp_key_file=str(tmp_path / "totp.key"), plain_http_loopback=plain_http
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}"
    async with staff_kit(url, tmp_path, settings=settings, http_host=host) as kit:
        assert kit.secure_cookie is secure
        assert kit.cookie_name.startswith("__Host-") is secure


async def test_idle_session_ends(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    idle = site.kit.accounts.sessions.timeouts.idle
    site.clock.advance(idle - 60)
    assert (await browser.api())[0] == 200  # used: the idle time starts again
    site.clock.advance(idle - 60)
    assert (await browser.api())[0] == 200
    site.clock.advance(idle)
    assert (await browser.api())[0] == 401
    assert (await browser.get("/me"))[0] == 401


async def test_session_ends_at_the_absolute_timeout_however_busy(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    timeouts = site.kit.accounts.sessions.timeouts
    used_for = 0.0
    while used_for + 600 < timeouts.absolute:
        site.clock.advance(600)
        used_for += 600
        assert (await browser.api())[0] == 200
    site.clock.advance(timeouts.absolute - used_for)
    assert (await browser.api())[0] == 401


async def test_a_planted_session_id_never_becomes_a_logged_in_one(site: Site) -> None:
    """Fixation: an attacker gets a session at the password step and plants its cookie in the
    victim's browser; every step of the login issues a new id, the planted one stays useless."""
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    attacker = site.browser("10.6.6.6")
    await site.kit.accounts.add("attacker", "operator", "Злоумышленник", by=ADMIN_CLI)
    victim = site.browser()
    victim.cookie = "planted-by-the-attacker"
    await victim.login("ivanova", person.password)
    after_password = victim.cookie
    assert after_password not in (None, "planted-by-the-attacker")
    site.clock.advance(30)
    code = totp_code(person.secret, site.clock)
    await victim.form_post("/login/totp", "/login/totp", {"code": code})
    assert victim.cookie not in (None, after_password)
    assert (await victim.api())[0] == 200
    for stale in ("planted-by-the-attacker", after_password):
        attacker.cookie = stale
        assert (await attacker.api())[0] == 401


async def test_login_ends_the_session_the_browser_came_with(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    before = browser.cookie
    await browser.login("ivanova", person.password)
    copy = Browser(site.client, site.kit.cookie_name, cookie=before)
    assert (await copy.api())[0] == 401


async def test_logout_destroys_the_session(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    stolen = Browser(site.client, site.kit.cookie_name, "10.7.7.7", cookie=browser.cookie)
    status, where = await browser.form_post("/me", "/logout", {})
    assert (status, where) == (303, "/login")
    assert browser.cookie is None  # the browser was told to forget it
    assert (await stolen.api())[0] == 401  # and a copy of it is dead on the server


async def test_logout_without_the_forms_token_is_refused(site: Site) -> None:
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    status, _, _ = await browser.post("/logout", {})
    assert status == 403
    assert (await browser.api())[0] == 200


async def test_cross_site_form_post_is_refused(site: Site) -> None:
    """A page elsewhere posting a form to /me/pin with the victim's cookie has no CSRF token;
    the middleware refuses it and nothing changes."""
    browser = site.browser()
    await first_login(browser, site.kit, site.clock, "ivanova")
    status, _, _ = await browser.post(
        "/me/pin", {}, headers={"Origin": "https://evil.example", "Content-Type": "text/plain"}
    )
    assert status == 403
    status, _, _ = await browser.post("/me/pin", {"csrf_token": "guessed"})
    assert status == 403
    account = await site.kit.accounts.get("ivanova")
    assert account is not None and not account.has_pin
    status, html = await browser.form_post("/me", "/me/pin", {})
    assert status == 200 and 'id="new-pin"' in html


async def test_cross_site_login_form_is_refused(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    status, _, _ = await site.browser().post(
        "/login",
        {"account": "ivanova", "password": person.password},
        headers={"Origin": "https://evil.example"},
    )
    assert status == 403


async def test_disabled_account_loses_its_session_at_once(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    await site.kit.accounts.disable("ivanova", by=ADMIN_CLI)
    assert (await browser.api())[0] == 401
    assert (await browser.post("/login", {"account": "ivanova", "password": person.password}))[
        0
    ] == 400


@pytest.mark.parametrize("db_kind", DATABASE_KINDS)
async def test_reset_ends_sessions_and_enrols_again(site: Site) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    one_time = await site.kit.accounts.reset("ivanova", by=ADMIN_CLI)
    assert (await browser.api())[0] == 401
    status, _, _ = await browser.post("/login", {"account": "ivanova", "password": person.password})
    assert status == 400
    assert await site.browser().login("ivanova", one_time) == "/login/password"
    assert await site.kit.accounts.recovery_codes_left("ivanova") == 0


async def test_a_login_left_half_way_ends_sooner(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    browser = site.browser()
    await browser.login("ivanova", person.password)
    site.clock.advance(15 * 60)
    status, _, response = await browser.get("/login/totp")
    assert status == 303 and response.headers["Location"] == "/login"


async def test_abandoned_sessions_do_not_pile_up(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    for _ in range(5):  # password given, the browser closed
        await site.browser().login("ivanova", person.password)
    assert await site.kit.accounts.sessions.count() == 6
    site.clock.advance(site.kit.accounts.sessions.timeouts.idle)
    await site.browser().login("ivanova", person.password)
    assert await site.kit.accounts.sessions.count() == 1
