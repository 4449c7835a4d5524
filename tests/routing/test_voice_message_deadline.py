"""A voice message whose call back is still open past its group's message_deadline_minutes
(groups.yaml; the emergency group's is 10) raises the alarm metric the
``HotlineVoiceMessageOverdue`` rule watches; callbacks without a message, or done, do not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.voice_messages import OverdueMessages
from routing.callbacks.store import CallbackStore
from routing.groups import load_groups

SHIPPED_GROUPS = Path(__file__).resolve().parents[2] / "dialplans" / "groups.yaml"
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


@pytest.fixture(params=DATABASE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with (
        empty_database(request.param, tmp_path / "hotline.sqlite3", "hotline_vm") as url,
        migrated_engine(url) as migrated,
    ):
        yield migrated


async def book(store: CallbackStore, group: str, minutes_ago: float, **data: str) -> None:
    at = NOW - timedelta(minutes=minutes_ago)
    await store.add(
        phone="79161234567", application_id=None, group_id=group, priority=0, source="ivr",
        window_start=None, window_end=None, queue_seq=None, arrived_at=at, next_attempt_at=at,
        data=data, requested_at=at, state="pending", attempts=0, updated_at=at,
    )  # fmt: skip


def overdue_metric(group: str) -> float | None:
    return REGISTRY.get_sample_value("hotline_voice_messages_overdue", {"group": group})


async def test_a_message_left_unanswered_past_the_deadline_raises_the_alarm(
    engine: AsyncEngine,
) -> None:
    groups = load_groups(SHIPPED_GROUPS)
    assert groups["emergency"].message_deadline_minutes == 10
    store = CallbackStore(engine)
    await book(store, "emergency", 11, voice_message="1795563091.8-message")  # overdue
    await book(store, "emergency", 9, voice_message="1795563091.9-message")  # not yet
    await book(store, "emergency", 30)  # a plain callback: no message, no deadline
    await book(store, "general", 300, voice_message="1795563091.7-message")  # no deadline
    watch = OverdueMessages(engine, lambda: groups, clock=lambda: NOW)

    assert await watch.count() == {"emergency": 1}
    await watch.check()
    assert overdue_metric("emergency") == 1

    later = OverdueMessages(engine, lambda: groups, clock=lambda: NOW + timedelta(minutes=2))
    await later.check()
    assert overdue_metric("emergency") == 2
