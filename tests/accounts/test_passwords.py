"""Password hashes: argon2id, renewed when the parameters change; the controller's wiring."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from argon2 import PasswordHasher
from controllers import WITHOUT_RECORDER, controller_settings, started
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from staff import ADMIN_CLI, CHEAP_HASHER, START, staff_kit

from hotline.accounts.secrets import Passwords
from hotline.clock import ManualClock


async def stored_hash(kit_engine: AsyncEngine, account: str) -> str:
    async with kit_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT password_hash FROM staff_accounts WHERE id = :id"), {"id": account}
        )
        return str(result.scalar_one())


async def test_hash_is_argon2id_and_renewed_when_parameters_change(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite3'}"
    clock = ManualClock(START)
    async with staff_kit(url, tmp_path, clock=clock) as kit:
        one_time = await kit.accounts.add("ivanova", "operator", "Иванова", by=ADMIN_CLI)
        old = await stored_hash(kit.engine, "ivanova")
        assert old.startswith("$argon2id$") and "m=1024,t=1,p=1" in old
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    async with staff_kit(url, tmp_path, clock=clock, passwords=stronger) as kit:
        await kit.accounts.login_password("ivanova", one_time, "10.0.0.1")
        new = await stored_hash(kit.engine, "ivanova")
        assert "m=2048,t=2,p=1" in new
        # the renewed hash still takes the same password
        await kit.accounts.login_password("ivanova", one_time, "10.0.0.1")
    async with staff_kit(url, tmp_path, clock=clock, passwords=Passwords(CHEAP_HASHER)) as kit:
        await kit.accounts.login_password("ivanova", one_time, "10.0.0.1")


def test_production_parameters_are_argon2id_defaults() -> None:
    hashed = PasswordHasher().hash("x")
    assert hashed.startswith("$argon2id$") and Passwords().needs_rehash(hashed) is False


async def test_controller_serves_the_login_page_and_builds_the_lookup(tmp_path: Path) -> None:
    async with started(controller_settings(tmp_path, WITHOUT_RECORDER)) as controller:
        assert controller.actor_lookup is not None
        base = f"http://127.0.0.1:{controller.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/login") as response:
                assert response.status == 200
                assert "Имя пользователя" in await response.text()
            async with http.get(f"{base}/accounts/static/accounts.css") as response:
                assert response.status == 200 and response.content_type == "text/css"
