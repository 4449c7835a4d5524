"""The parts of a controller start in order, stop in reverse, and a failed start cleans up."""

from __future__ import annotations

import gc

import pytest

from hotline.lifecycle import Lifecycle, settle_heap


class _Part:
    def __init__(self, name: str, journal: list[str], *, fail: str = "") -> None:
        self.name, self._journal, self._fail = name, journal, fail

    async def start(self) -> None:
        if self._fail == "start":
            raise OSError(f"{self.name}: port taken")
        self._journal.append(f"start {self.name}")

    async def health(self) -> str:
        if self._fail == "health":
            raise ConnectionError
        return "ok"

    async def stop(self) -> None:
        self._journal.append(f"stop {self.name}")
        if self._fail == "stop":
            raise RuntimeError("stuck")


async def test_parts_stop_in_the_reverse_order_of_their_start() -> None:
    journal: list[str] = []
    lifecycle = Lifecycle()
    for name in ("database", "acd", "agi"):
        await lifecycle.start(_Part(name, journal))
    assert await lifecycle.health() == {"database": "ok", "acd": "ok", "agi": "ok"}
    await lifecycle.stop()
    assert journal == [
        "start database", "start acd", "start agi", "stop agi", "stop acd", "stop database",
    ]  # fmt: skip
    assert await lifecycle.health() == {}


async def test_a_failed_start_leaves_the_started_parts_to_be_stopped() -> None:
    journal: list[str] = []
    lifecycle = Lifecycle()
    await lifecycle.start(_Part("database", journal))
    with pytest.raises(OSError, match="port taken"):
        await lifecycle.start(_Part("agi", journal, fail="start"))
    await lifecycle.stop()
    assert journal == ["start database", "stop database"]


async def test_one_part_failing_to_stop_does_not_keep_the_others_running() -> None:
    journal: list[str] = []
    lifecycle = Lifecycle()
    await lifecycle.start(_Part("database", journal))
    await lifecycle.start(_Part("recorder", journal, fail="stop"))
    await lifecycle.start(_Part("agi", journal))
    await lifecycle.stop()
    assert journal[-3:] == ["stop agi", "stop recorder", "stop database"]


async def test_a_health_check_that_raises_reports_the_error() -> None:
    lifecycle = Lifecycle()
    await lifecycle.start(_Part("state", [], fail="health"))
    assert await lifecycle.health() == {"state": "error: ConnectionError"}


def test_settled_heap_is_frozen_and_collected_young_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        kept = [object() for _ in range(3)] + [[] for _ in range(1000)]
        frozen = settle_heap()
        assert frozen == gc.get_freeze_count() >= 1000  # the lists above among them
        young, *older = gc.get_threshold()
        assert young >= 10 * threshold[0] and older == list(threshold[1:])
        del kept
    finally:
        gc.unfreeze()  # other tests start controllers in this process: give the heap back
        gc.set_threshold(*threshold)
