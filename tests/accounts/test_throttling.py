"""Back-off per account and per address, and no way to lock someone out for good."""

from __future__ import annotations

import pytest
from staff import ADMIN_CLI, Site, first_login

from hotline.accounts.throttle import LoginThrottle, ThrottleRules
from hotline.clock import ManualClock


def events(caplog: pytest.LogCaptureFixture, category: str) -> int:
    return sum(
        1 for record in caplog.records if getattr(record, "security_category", None) == category
    )


async def test_guessing_from_one_address_backs_off_while_another_address_logs_in(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    guesser = site.browser("10.6.6.6")
    for _ in range(4):  # three free failures, the fourth starts a wait
        status, _, _ = await guesser.post("/login", {"account": "ivanova", "password": "x" * 12})
        assert status == 400
    status, html, response = await guesser.post(
        "/login", {"account": "ivanova", "password": person.password}
    )
    assert status == 429 and "Повторите через" in html
    assert int(response.headers["Retry-After"]) >= 1
    assert events(caplog, "login_failed") == 4 and events(caplog, "login_throttled") == 1
    # ivanova at another workstation is not held back
    assert await site.browser("10.0.0.2").login("ivanova", person.password) == "/login/totp"
    # and the guesser's wait ends: no hard lock
    site.clock.advance(int(response.headers["Retry-After"]))
    assert await guesser.login("ivanova", person.password) == "/login/totp"


async def test_one_address_spraying_many_accounts_backs_off(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    sprayer = site.browser("10.6.6.6")
    for n in range(21):  # the address's 20 free failures spread over accounts, and one more
        await sprayer.post("/login", {"account": f"user{n}", "password": "Password123!"})
    status, _, _ = await sprayer.post("/login", {"account": "ivanova", "password": person.password})
    assert status == 429  # even a right password, from this address
    assert await site.browser("10.0.0.3").login("ivanova", person.password) == "/login/totp"


async def test_many_addresses_against_one_account_wait_briefly_and_spare_its_workstation(
    site: Site,
) -> None:
    workstation = site.browser("10.0.0.1")
    person = await first_login(workstation, site.kit, site.clock, "ivanova")
    for n in range(11):  # a botnet, one guess per address
        await site.browser(f"10.8.0.{n}").post(
            "/login", {"account": "ivanova", "password": "Password123!"}
        )
    status, _, response = await site.browser("10.0.0.9").post(
        "/login", {"account": "ivanova", "password": person.password}
    )
    assert status == 429  # a new address waits...
    wait = int(response.headers["Retry-After"])
    assert wait <= site.kit.accounts.throttle.rules.account_max_delay  # ...briefly
    # the workstation ivanova last logged in from is not held back at all
    assert await site.browser("10.0.0.1").login("ivanova", person.password) == "/login/totp"
    site.clock.advance(wait)
    assert await site.browser("10.0.0.9").login("ivanova", person.password) == "/login/totp"


async def test_second_factor_guesses_back_off_too(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    attacker = site.browser("10.6.6.6")  # has the password, guesses codes
    await attacker.login("ivanova", person.password)
    statuses = []
    for guess in range(5):
        status, _ = await attacker.form_post("/login/totp", "/login/totp", {"code": f"{guess:06d}"})
        statuses.append(status)
    assert statuses[:3] == [400, 400, 400] and statuses[-1] == 429
    status, _ = await attacker.form_post(
        "/login/recovery", "/login/recovery", {"code": person.recovery_codes[0]}
    )
    assert status == 429  # the recovery form is no way around the wait


def test_waits_double_up_to_a_ceiling_and_are_forgotten() -> None:
    clock = ManualClock(0.0)
    throttle = LoginThrottle(ThrottleRules(pair_free=1, pair_max_delay=8.0), clock)
    waits = []
    for _ in range(7):
        throttle.failed("a", "10.0.0.1")
        waits.append(throttle.wait("a", "10.0.0.1"))
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    clock.advance(throttle.rules.forget_after)
    assert throttle.wait("a", "10.0.0.1") == 0.0
    throttle.failed("a", "10.0.0.1")
    assert throttle.wait("a", "10.0.0.1") == 0.0  # counting from scratch


def test_memory_is_bounded_under_a_flood_of_addresses() -> None:
    throttle = LoginThrottle(ThrottleRules(max_entries=1000), ManualClock(0.0))
    for n in range(5000):
        throttle.failed(f"user{n}", f"10.{n // 256 % 256}.{n % 256}.1")
    assert len(throttle._counts) <= 1000


async def test_a_success_does_not_clear_a_spraying_address(site: Site) -> None:
    person = await first_login(site.browser(), site.kit, site.clock, "ivanova")
    await site.kit.accounts.add("petrov", "operator", "Петров", by=ADMIN_CLI)
    sprayer = site.browser("10.6.6.6")
    for n in range(19):
        await sprayer.post("/login", {"account": f"user{n}", "password": "Password123!"})
    assert await sprayer.login("ivanova", person.password) == "/login/totp"  # its own account
    for n in (98, 99):  # the 20th and 21st failures
        await sprayer.post("/login", {"account": f"user{n}", "password": "Password123!"})
    status, _, _ = await sprayer.post("/login", {"account": "ivanova", "password": person.password})
    assert status == 429
