"""Placing test calls on the real Asterisk and waiting on what the controller and Asterisk do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from people import acting
from wire_taps import RecordingAmi

from hotline.ami.protocol import AmiMessage


async def place_call(
    ami: RecordingAmi,
    number: str,
    *,
    dtmf: str = "",
    wait: int = 2,
    hold: int = 20,
    caller: str = "79161234567",
) -> str:
    """AMI Originate of Local/<number>@from-pstn; the other half runs [hotline-test-caller].
    Returns the Originate's ActionID."""
    return await ami.send(
        "Originate",
        Channel=f"Local/{number}@from-pstn",
        Context="hotline-test-caller",
        Exten="s",
        Priority="1",
        CallerID=f"Тест <{caller}>",
        Variable=f"CALLER_WAIT={wait},CALLER_DTMF={dtmf},CALLER_HOLD={hold}",
        Async="true",
        Timeout="30000",
    )


def agi_commands(ami: RecordingAmi) -> list[str]:
    """The FastAGI commands Asterisk reported running (AGIExecStart), in order."""
    return [event.get("Command") or "" for event in ami.named("AGIExecStart")]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - state in other processes (sipp, HTTP)
            await asyncio.sleep(0.2)


async def operator(api: aiohttp.ClientSession, op_id: str) -> dict[str, Any]:
    async with api.get("/api/operators", headers=acting("")) as reply:
        rows: list[dict[str, Any]] = (await reply.json())["operators"]
    return next(row for row in rows if row["id"] == op_id)


async def make_ready(api: aiohttp.ClientSession, op_id: str) -> None:
    login = f"/{op_id}/login"
    async with api.post(f"/api/operators{login}", json={}, headers=acting(login)) as reply:
        assert reply.status == 200, await reply.text()
    if (await operator(api, op_id))["state"] != "ready":  # login may already make ready
        ready = f"/{op_id}/ready"
        async with api.post(f"/api/operators{ready}", json={}, headers=acting(ready)) as reply:
            assert reply.status == 200, await reply.text()


async def state_becomes(api: aiohttp.ClientSession, op_id: str, field: str, value: Any) -> None:
    async def check() -> bool:
        return (await operator(api, op_id))[field] == value

    await eventually(check)


def headers_of(event: AmiMessage) -> dict[str, str]:
    return event.as_dict()
