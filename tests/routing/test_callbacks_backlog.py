"""The callbacks backlog on /metrics: what the "callback backlog growing" alert watches.
Pending and due callbacks per group, counted in the shared database; a group with none shows
0 (a series from the start); placed callbacks leave the backlog."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from tests.routing.test_callbacks import db_url, world
from tests.routing.test_callbacks_limits import with_emergency

__all__ = ["db_url"]  # the fixture, imported for this module's tests


def exported(name: str, group: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"group": group})


async def test_backlog_counts_pending_and_due_callbacks_per_group(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await with_emergency(w)  # each group has its operator logged in
        for phone in ("79161112233", "79161112244"):
            await scheduler.request(phone=phone, group="general")
        later = w.now() + timedelta(hours=2)  # booked for later: pending, not yet due
        await scheduler.request(phone="79161112255", group="general", window_start=later)
        await scheduler.request(phone="79031112233", group="emergency")

        await scheduler.count_backlog()

        assert exported("hotline_callbacks_pending", "general") == 3
        assert exported("hotline_callbacks_due", "general") == 2
        assert exported("hotline_callbacks_pending", "emergency") == 1

        await scheduler.run_due()  # the due ones are claimed and placed
        await scheduler.count_backlog()

        assert exported("hotline_callbacks_pending", "emergency") == 0
        assert exported("hotline_callbacks_due", "emergency") == 0
        assert exported("hotline_callbacks_pending", "general") == 1  # the one for later
        assert exported("hotline_callbacks_due", "general") == 0
        w.now.advance(2 * 3600)  # its window has opened
        await scheduler.count_backlog()
        assert exported("hotline_callbacks_due", "general") == 1


async def test_a_group_without_callbacks_is_exported_as_zero(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await with_emergency(w)

        assert await scheduler.count_backlog() == {}

        assert exported("hotline_callbacks_pending", "general") == 0
        assert exported("hotline_callbacks_due", "emergency") == 0
