"""The contact registry on both databases: numbering, repeats, history, search, and the audit
row every view leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.clock import ManualClock
from workspace.model import Category, ContactChannel, ContactDraft, ContactState, Identifier
from workspace.numbers import ContactNumber, parse_contact_number
from workspace.registry import ContactRegistry
from workspace.store import ContactStore

OPERATOR = Actor("ivanova", "operator")
DAY = 86_400.0
# 2026-03-02 09:00 UTC, a Monday
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


@pytest.fixture(params=DATABASE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with empty_database(request.param, tmp_path / "ws.sqlite3", "hotline_ws") as url:
        async with migrated_engine(url) as engine:
            yield engine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def registry(engine: AsyncEngine, clock: ManualClock) -> ContactRegistry:
    return ContactRegistry(ContactStore(engine), AuditLog(engine), clock)


def call_from(phone: str, *, application: str | None = None, text: str = "") -> ContactDraft:
    return ContactDraft(
        channel=ContactChannel.CALL,
        line="88001000001",
        caller_phone=phone,
        application_number=application,
        description=text,
        group="general",
        operator_id="ivanova",
        identifiers={Identifier.SNILS: "112-233-445 95"},
    )


async def test_numbers_run_on_within_a_year_and_restart_with_the_next(
    registry: ContactRegistry, clock: ManualClock
) -> None:
    first = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    second = await registry.open(call_from("79161234568"), actor=OPERATOR, source="test")
    # Luhn by hand over 20260000001: 1->2, 6, 2->4, 2->4 = 16 -> 4; over ...2: 4+6+4+4 = 18 -> 2
    assert (str(first.number), str(second.number)) == ("2026-0000001-4", "2026-0000002-2")
    clock.now = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    next_year = await registry.open(call_from("79161234569"), actor=OPERATOR, source="test")
    assert next_year.number == ContactNumber(2027, 1)
    # what is printed is what a caller keys in
    assert parse_contact_number(str(second.number)) == second.number


async def test_concurrent_openings_never_share_a_number(registry: ContactRegistry) -> None:
    opened = await asyncio.gather(
        *(
            registry.open(call_from(f"7916000{i:04d}"), actor=OPERATOR, source="test")
            for i in range(20)
        )
    )
    assert sorted(c.number.sequence for c in opened) == list(range(1, 21))


async def test_a_repeat_is_the_same_phone_or_application_within_seven_days(
    registry: ContactRegistry, clock: ManualClock
) -> None:
    first = await registry.open(
        call_from("79161234567", application="1234567897"), actor=OPERATOR, source="test"
    )
    assert not first.repeat
    clock.advance(6 * DAY)
    same_phone = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    same_application = await registry.open(
        call_from("79990000000", application="1234567897"), actor=OPERATOR, source="test"
    )
    stranger = await registry.open(call_from("79990000001"), actor=OPERATOR, source="test")
    assert (same_phone.repeat, same_application.repeat, stranger.repeat) == (True, True, False)
    clock.advance(8 * DAY)  # the stranger's earlier contact is now 8 days old
    assert not (await registry.open(call_from("79990000001"), actor=OPERATOR, source="t")).repeat


async def test_history_shows_thirty_days_newest_first_and_is_audited(
    registry: ContactRegistry, engine: AsyncEngine, clock: ManualClock
) -> None:
    old = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    clock.advance(31 * DAY)
    middle = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    clock.advance(DAY)
    newest = await registry.open(
        call_from("79990000000", application="1234567897"), actor=OPERATOR, source="test"
    )
    found = await registry.history(
        phone="79161234567", application="1234567897", actor=OPERATOR, source="10.0.0.5"
    )
    assert [c.number for c in found] == [newest.number, middle.number]
    assert old.number not in [c.number for c in found]
    audit = await AuditLog(engine).entries()
    last = audit[-1]
    assert (last.user_id, last.action, last.source) == ("ivanova", "contact.history", "10.0.0.5")
    assert last.detail_data["numbers"] == [str(newest.number), str(middle.number)]


async def test_view_audits_hits_and_misses_alike(
    registry: ContactRegistry, engine: AsyncEngine
) -> None:
    contact = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    seen = await registry.view(contact.number, actor=OPERATOR, source="desk")
    assert seen is not None and seen.identifiers == {Identifier.SNILS: "112-233-445 95"}
    assert await registry.view(ContactNumber(2026, 999), actor=OPERATOR, source="desk") is None
    rows = (await AuditLog(engine).entries())[-2:]
    assert [(r.action, r.recording_id, r.outcome) for r in rows] == [
        ("contact.view", str(contact.number), "ok"),
        (
            "contact.view",
            "2026-0000999-9",  # 9->9, 9, 9->9, 6, 2->4, 2->4 = 41 -> 9
            "not_found",
        ),
    ]


async def test_search_finds_words_in_description_and_resolution(
    registry: ContactRegistry,
) -> None:
    a = await registry.open(
        call_from("79161234567", text="Не приходит СМС с кодом подтверждения"),
        actor=OPERATOR,
        source="test",
    )
    await registry.open(
        call_from("79161234568", text="Вопрос об оплате"), actor=OPERATOR, source="test"
    )
    await registry.close(
        a.number,
        resolution="Код отправлен повторно",
        category=Category.REGISTRATION_LOGIN,
        first_contact_resolution=True,
        actor=OPERATOR,
        source="test",
    )
    by_description = await registry.search("смс кодом", actor=OPERATOR, source="test")
    by_resolution = await registry.search("отправлен повторно", actor=OPERATOR, source="test")
    assert [c.number for c in by_description] == [a.number]
    assert [c.number for c in by_resolution] == [a.number]
    assert await registry.search("налог", actor=OPERATOR, source="test") == []
    assert await registry.search("   ", actor=OPERATOR, source="test") == []


async def test_close_and_rate_are_stored_on_the_contact(registry: ContactRegistry) -> None:
    contact = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    assert contact.state is ContactState.OPEN
    closed = await registry.close(
        contact.number,
        resolution="Передано в технический отдел",
        category=Category.TECHNICAL_FAULT,
        first_contact_resolution=False,
        actor=OPERATOR,
        source="test",
    )
    assert closed is not None
    assert (closed.state, closed.category, closed.first_contact_resolution) == (
        ContactState.TICKET,
        Category.TECHNICAL_FAULT,
        False,
    )
    rated = await registry.rate(contact.number, 5)
    assert rated is not None and rated.rating == 5
    with pytest.raises(ValueError):
        await registry.rate(contact.number, 6)


async def test_a_keyed_in_number_routes_with_priority_only_from_the_contacts_own_phone(
    registry: ContactRegistry,
) -> None:
    contact = await registry.open(call_from("79161234567"), actor=OPERATOR, source="test")
    own = await registry.repeat_route(contact.number, "79161234567")
    guessed = await registry.repeat_route(contact.number, "79990000000")
    assert own is not None and guessed is not None
    assert (own.group, own.operator_id, own.priority) == ("general", "ivanova", True)
    assert guessed.priority is False
    assert await registry.repeat_route(ContactNumber(2026, 4242), "79161234567") is None
