"""``condition``: opening hours (open, closed, holiday, surge), variables, caller seen before
(the real call log, in SQLite)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline.hours import load_calendar, load_hours
from hotline.store.db import Base, CallLog, create_engine
from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.history import CallLogHistory
from ivr.menu.loader import parse_menu
from ivr.menu.model import Call
from tests.ivr.conftest import menu_text, services

MOSCOW = ZoneInfo("Europe/Moscow")
DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
WORKDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=MOSCOW)  # Friday
WORKDAY_EVENING = datetime(2026, 11, 27, 21, 30, tzinfo=MOSCOW)
SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=MOSCOW)
HOLIDAY = datetime(2026, 11, 4, 11, 0, tzinfo=MOSCOW)  # Unity Day: open 10-14
HOLIDAY_LATE = datetime(2026, 11, 4, 15, 0, tzinfo=MOSCOW)

HOURS = """\
  a:
    kind: condition
    branches:
      - {when: surge, goto: surge}
      - {when: holiday, goto: holiday}
      - {when: closed, goto: closed}
      - {when: saturday, goto: saturday}
    otherwise: open
  surge: {kind: queue, group: surge}
  holiday: {kind: queue, group: holiday}
  closed: {kind: queue, group: closed}
  saturday: {kind: queue, group: saturday}
  open: {kind: queue, group: open}
"""


@pytest.mark.parametrize(
    ("at", "surge", "expected"),
    [
        (WORKDAY_NOON, False, "open"),
        (WORKDAY_EVENING, False, "closed"),
        (SATURDAY, False, "saturday"),
        (HOLIDAY, False, "holiday"),
        (WORKDAY_EVENING, True, "surge"),
    ],
)
async def test_hours_branches(run_menu, hours, at, surge: bool, expected: str) -> None:
    result, _ = await run_menu(HOURS, at=at, hours=hours(surge))
    assert str(result.end) == f"queue {expected}"


async def test_holiday_outside_its_short_hours_is_closed(run_menu, hours) -> None:
    nodes = """\
  a:
    kind: condition
    branches: [{when: open, goto: open}]
    otherwise: closed
  open: {kind: queue, group: open}
  closed: {kind: queue, group: closed}
"""
    result, _ = await run_menu(nodes, at=HOLIDAY_LATE, hours=hours())
    assert str(result.end) == "queue closed"


async def test_variable_equals(run_menu) -> None:
    nodes = """\
  a: {kind: set, values: {topic: "оплата"}, next: b}
  b:
    kind: condition
    branches: [{when: {variable: topic, equals: "оплата"}, goto: pay}]
    otherwise: other
  pay: {kind: queue, group: payments}
  other: {kind: queue, group: general}
"""
    result, _ = await run_menu(nodes)
    assert str(result.end) == "queue payments"


SEEN = """\
  a:
    kind: condition
    branches: [{when: seen_before, goto: back}]
    otherwise: new
  back: {kind: queue, group: returning}
  new: {kind: queue, group: new}
"""


async def test_caller_seen_before_in_the_call_log(run_menu, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    log = CallLog(engine)
    history = CallLogHistory(engine)
    try:
        first, _ = await run_menu(SEEN, caller_id="79161234567", history=history)
        await log.call_started(
            "old.1",
            channel="c",
            dialled_number="1000",
            caller_id="79161234567",
            script="hotline",
            node="n",
        )
        again, _ = await run_menu(SEEN, caller_id="79161234567", history=history)
        other, _ = await run_menu(SEEN, caller_id="79035550011", history=history)
        withheld, _ = await run_menu(SEEN, caller_id="", history=history)
    finally:
        await engine.dispose()
    assert str(first.end) == "queue new"
    assert str(again.end) == "queue returning"
    assert str(other.end) == "queue new"
    assert str(withheld.end) == "queue new"


async def test_each_call_is_tested_against_the_hours_at_its_own_moment_and_switch(
    run_menu,
) -> None:
    # One schedule serving call after call (as the controller's does): the surge switch
    # flipped between two calls, and calls at other times of day, each go where their own
    # moment says, whatever the call before them was told.
    switch = {"surge": False}
    hours = load_hours(
        DIALPLANS / "hours.yaml",
        load_calendar(DIALPLANS / "calendar.yaml"),
        lambda: switch["surge"],
    )
    seen: list[str] = []
    for at, surge in [
        (WORKDAY_NOON, False),
        (WORKDAY_NOON, True),
        (WORKDAY_NOON, False),
        (WORKDAY_EVENING, False),
        (SATURDAY, False),
        (HOLIDAY, False),
        (WORKDAY_NOON, False),
    ]:
        switch["surge"] = surge
        result, _ = await run_menu(HOURS, at=at, hours=hours)
        seen.append(str(result.end))
    assert seen == [
        "queue open",
        "queue surge",
        "queue open",
        "queue closed",
        "queue saturday",
        "queue holiday",
        "queue open",
    ]


class _History:
    """A call log that says whether callers were seen, and keeps who it was asked about."""

    def __init__(self, seen: bool) -> None:
        self.seen = seen
        self.asked: list[str] = []

    async def seen_before(self, caller_id: str, call_id: str) -> bool:
        self.asked.append(caller_id)
        return self.seen


AMID = """\
  a: {kind: set, values: {topic: "${caller_topic}"}, next: b}
  b:
    kind: condition
    branches:
      - {when: {variable: topic, equals: "оплата"}, goto: pay}
      - {when: seen_before, goto: back}
      - {when: closed, goto: closed}
    otherwise: new
  pay: {kind: queue, group: payments}
  back: {kind: queue, group: returning}
  closed: {kind: queue, group: closed}
  new: {kind: queue, group: new}
"""


@pytest.mark.parametrize(
    ("seen", "at", "topic", "expected", "asked"),
    [
        (True, WORKDAY_EVENING, "", "returning", True),  # asked, and it decides
        (False, WORKDAY_EVENING, "", "closed", True),  # asked; the branches after it follow
        (False, WORKDAY_NOON, "", "new", True),
        (None, WORKDAY_EVENING, "", "closed", False),  # no call log: never seen before
        (True, WORKDAY_EVENING, "оплата", "payments", False),  # decided before the log
    ],
)
async def test_seen_before_among_other_branches(
    run_menu, hours, seen: bool | None, at: datetime, topic: str, expected: str, asked: bool
) -> None:
    history = _History(bool(seen)) if seen is not None else None
    nodes = AMID.replace("${caller_topic}", topic)
    result, _ = await run_menu(
        nodes, at=at, hours=hours(), caller_id="79161234567", history=history
    )
    assert str(result.end) == f"queue {expected}"
    assert (history is not None and history.asked == ["79161234567"]) == asked


ORDERED = """\
  a: {kind: set, values: {group: "${chosen}"}, next: b}
  b:
    kind: condition
    branches:
      - {when: {variable: group, equals: tech}, goto: first-tech}
      - {when: {variable: group, equals: tech}, goto: second-tech}
      - {when: {variable: group, equals: pay}, goto: pay}
      - {when: closed, goto: closed}
      - {when: {variable: group, equals: late}, goto: late}
      - {when: {variable: group, equals: pay}, goto: pay-again}
    otherwise: other
  first-tech: {kind: queue, group: first-tech}
  second-tech: {kind: queue, group: second-tech}
  pay: {kind: queue, group: pay}
  closed: {kind: queue, group: closed}
  late: {kind: queue, group: late}
  pay-again: {kind: queue, group: pay-again}
  other: {kind: queue, group: other}
"""


@pytest.mark.parametrize(
    ("chosen", "at", "expected", "noted"),
    [
        ("tech", WORKDAY_NOON, "first-tech", ["group = tech"]),  # the first one written wins
        ("tech", WORKDAY_EVENING, "first-tech", ["group = tech"]),  # before the hours test
        ("pay", WORKDAY_EVENING, "pay", ["group = pay"]),
        ("late", WORKDAY_NOON, "late", ["group = late"]),  # the hours test fails: on it goes
        ("late", WORKDAY_EVENING, "closed", ["closed"]),  # it holds: nothing after it counts
        ("", WORKDAY_EVENING, "closed", ["closed"]),
        ("", WORKDAY_NOON, "other", []),
    ],
)
async def test_branches_decide_in_the_order_written_among_variables_and_hours(
    run_menu, hours, path_of, chosen: str, at: datetime, expected: str, noted: list[str]
) -> None:
    result, _ = await run_menu(ORDERED.replace("${chosen}", chosen), at=at, hours=hours())
    assert str(result.end) == f"queue {expected}"
    assert path_of(result, "branch") == [f"branch {test}" for test in noted]


@pytest.mark.parametrize(("at", "expected"), [(WORKDAY_NOON, "open"), (WORKDAY_EVENING, "closed")])
def test_a_call_the_engine_did_not_start_is_tested_against_its_own_hours(
    hours, at: datetime, expected: str
) -> None:
    # The engine fills in a call's hours facts as it starts it; a call made otherwise (a
    # node run on its own) has none, and the node asks the opening hours itself.
    menu = parse_menu(menu_text(HOURS), "test.yaml")
    call = Call(ConsoleChannel(ScriptedKeypad([])), menu, services(hours=hours()), at)
    assert call.facts is None
    assert menu.nodes["a"].run(call) == expected
    # a node with no hours test asks none, and still decides
    menu = parse_menu(
        menu_text(
            "  a:\n    kind: condition\n    branches: [{when: {variable: topic, equals: x},"
            " goto: x}]\n    otherwise: other\n  x: {kind: hangup}\n  other: {kind: hangup}\n"
        ),
        "test.yaml",
    )
    call = Call(ConsoleChannel(ScriptedKeypad([])), menu, services(hours=None), at)
    call.variables["topic"] = "x"
    assert menu.nodes["a"].run(call) == "x"
