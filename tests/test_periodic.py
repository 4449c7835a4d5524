"""Periodic: the polling loop of the file watchers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hotline.periodic import Periodic


async def test_a_failing_step_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    third = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise RuntimeError("a broken look")

    poll = Periodic(step, 0.001, name="test-watcher", log=logging.getLogger("test"))
    poll.start()
    poll.start()  # a second start does not start a second loop
    await asyncio.wait_for(third.wait(), 5)
    await poll.close()
    stopped_at = calls
    await asyncio.sleep(0.01)
    assert calls == stopped_at and not poll.running
    assert "test-watcher: step failed" in caplog.text and "a broken look" in caplog.text


async def test_an_interval_of_zero_never_polls() -> None:
    async def step() -> None:
        raise AssertionError("must not run")

    poll = Periodic(step, 0, name="off", log=logging.getLogger("test"))
    poll.start()
    await asyncio.sleep(0.01)
    assert not poll.running
    await poll.close()
