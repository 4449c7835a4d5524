"""Attacks on staff accounts, replayed: each must fail safely.

(The forged FastAGI ``operator-feature`` session of issue 11 is replayed in
tests/agents/test_feature_codes.py: the log-in code now needs the operator's PIN.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from staff import START, Browser, Site, accounts_app, first_login, staff_kit, totp_code

from hotline.accounts.secrets import BoxKeyError, SecretBox
from hotline.accounts.settings import AccountsSettings
from hotline.clock import ManualClock


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = ManualClock(START)
    url = f"sqlite+aiosqlite:///{tmp_path / 'hotline.sqlite3'}"
    async with (
        staff_kit(url, tmp_path, clock=clock) as kit,
        TestClient(TestServer(accounts_app(kit))) as client,
    ):
        yield Site(kit, clock, client)


async def test_a_stolen_database_holds_no_usable_secret(site: Site, tmp_path: Path) -> None:
    browser = site.browser()
    person = await first_login(browser, site.kit, site.clock, "ivanova")
    _, html = await browser.form_post("/me", "/me/pin", {})
    pin = html.split('<strong id="new-pin">')[1].split("<")[0]
    await site.kit.engine.dispose()  # everything written out
    dump = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if "sqlite3" in p.name)  # noqa: ASYNC240
    for secret in (person.password, person.secret, browser.cookie, pin, *person.recovery_codes):
        assert secret and secret.encode() not in dump, secret


async def test_totp_secret_needs_the_key_file(site: Site, tmp_path: Path) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    key_file = tmp_path / "keys" / "totp.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    # the database copied to a machine with another key: the second factor fails closed
    site.kit.accounts._box = SecretBox(tmp_path / "other" / "totp.key")
    browser = site.browser()
    await browser.login("ivanova", person.password)
    site.clock.advance(30)
    status, html = await browser.form_post(
        "/login/totp", "/login/totp", {"code": totp_code(person.secret, site.clock)}
    )
    assert status == 400 and "Второй фактор недоступен" in html
    assert (await browser.api())[0] == 401


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "totp.key"
    SecretBox(key_file)
    os.chmod(key_file, 0o644)
    with pytest.raises(BoxKeyError, match="chmod 600"):
        SecretBox(key_file)


async def test_password_guessing_is_slowed_to_a_crawl(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    attacker = site.browser("10.6.6.6")
    statuses = []
    for n in range(100):
        status, _, _ = await attacker.post(
            "/login", {"account": "ivanova", "password": f"guess-{n:04d}"}
        )
        statuses.append(status)
    assert statuses.count(400) == 4  # checked; the other 96 refused before any check
    assert statuses.count(429) == 96
    assert await site.browser("10.0.0.1").login("ivanova", person.password) == "/login/totp"


@pytest.mark.parametrize(
    "fields",
    [
        {"account": "ivanova", "password": "x" * 500_000},
        {"account": "iva\nnova", "password": "x"},
        {"account": "ivanova' OR '1'='1", "password": "' OR '1'='1"},
        {"account": "", "password": ""},
        {},
    ],
)
async def test_hostile_login_forms_get_the_plain_refusal(
    site: Site, fields: dict[str, str]
) -> None:
    await first_login(site.browser(), site.kit, site.clock, "ivanova")
    status, html, _ = await site.browser("10.5.5.5").post("/login", fields)
    assert status == 400 and "Неверное имя пользователя или пароль" in html


async def test_forged_or_huge_cookies_open_nothing(site: Site) -> None:
    await first_login(site.browser(), site.kit, site.clock, "ivanova")
    for cookie in ("x" * 5_000, "' OR 1=1 --", "%00", "a" * 43):
        status, _, _ = await Browser(site.client, site.kit.cookie_name, cookie=cookie).get("/me")
        assert status == 401


async def test_half_logged_in_session_cannot_use_the_api_or_set_a_pin(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    browser = site.browser()
    await browser.login("ivanova", person.password)  # password only
    _, html, _ = await browser.get("/login/totp")
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    status, _, _ = await browser.post("/me/pin", {"csrf_token": csrf})
    assert status == 401
    account = await site.kit.accounts.get("ivanova")
    assert account is not None and not account.has_pin


async def test_session_tokens_do_not_cross_stages(site: Site) -> None:
    """A session waiting for its code cannot skip to the enrolment (and enrol a new secret)."""
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    browser = site.browser()
    await browser.login("ivanova", person.password)
    status, _, response = await browser.get("/login/enrol")
    assert status == 303 and response.headers["Location"] == "/login/totp"


async def test_plain_http_loopback_setting_cannot_weaken_a_public_server(tmp_path: Path) -> None:
    settings = AccountsSettings(totp_key_file=str(tmp_path / "k"), plain_http_loopback=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}"
    async with staff_kit(url, tmp_path, settings=settings, http_host="192.0.2.10") as kit:
        assert kit.secure_cookie
