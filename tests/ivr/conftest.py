"""Shared fixtures of the voice-menu tests: menus from YAML text, run on the console channel
(the one `hotline menus try` uses) with the real engine, opening hours and validators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline import say_ru
from hotline.agi.session import Playback
from hotline.hours import load_calendar, load_hours
from hotline.validators import VALIDATORS
from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.engine import CallResult, Engine
from ivr.menu.loader import parse_menu
from ivr.menu.model import Services

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
MOSCOW = ZoneInfo("Europe/Moscow")
# Moments used across the tests (Moscow time); the calendar says what kind of day each is.
WORKDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=MOSCOW)  # Friday
WORKDAY_EVENING = datetime(2026, 11, 27, 21, 30, tzinfo=MOSCOW)
SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=MOSCOW)
HOLIDAY = datetime(2026, 11, 4, 11, 0, tzinfo=MOSCOW)  # Unity Day, open 10-14
HOLIDAY_LATE = datetime(2026, 11, 4, 15, 0, tzinfo=MOSCOW)


class BargeChannel(ConsoleChannel):
    """The console channel, plus callers who press a key while a given prompt plays."""

    def __init__(self, entries: Iterable[str], barge: Mapping[str, str] | None = None, **kw: Any):
        super().__init__(ScriptedKeypad(entries), **kw)
        self.barge = dict(barge or {})

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback:
        played = await super().stream_file(name, escape_digits)
        digit = self.barge.pop(name, None)
        if digit is not None and digit in escape_digits:
            return Playback(digit, 4000)
        return played


@pytest.fixture
def hours() -> Callable[..., Any]:
    """The shipped opening hours and calendar, with the surge switch given."""
    return real_hours


def real_hours(surge: bool = False) -> Any:
    return load_hours(
        DIALPLANS / "hours.yaml", load_calendar(DIALPLANS / "calendar.yaml"), lambda: surge
    )


def services(**changes: Any) -> Services:
    base: dict[str, Any] = {"validators": VALIDATORS, "say": say_ru}
    base.update(changes)
    return Services(**base)


MENU_HEAD = 'number: "1000"\ngroup: general\nstart: {start}\nnodes:\n'


def menu_text(nodes: str, start: str = "a") -> str:
    return MENU_HEAD.format(start=start) + nodes


RunMenu = Callable[..., Awaitable[tuple[CallResult, BargeChannel]]]


@pytest.fixture
def run_menu() -> RunMenu:
    async def run(
        nodes: str,
        entries: Iterable[str] = (),
        *,
        start: str = "a",
        at: datetime = WORKDAY_NOON,
        barge: Mapping[str, str] | None = None,
        queue_status: str | None = None,
        max_steps: int = 200,
        caller_id: str = "",
        **service_changes: Any,
    ) -> tuple[CallResult, BargeChannel]:
        menu = parse_menu(menu_text(nodes, start), "test.yaml")
        channel = BargeChannel(entries, barge, queue_status=queue_status)
        result = await Engine(max_steps).run(
            channel, menu, services(**service_changes), at, caller_id=caller_id
        )
        return result, channel

    return run


def steps(result: CallResult, *kinds: str) -> list[str]:
    """The path as ``kind detail`` strings, optionally only some kinds."""
    return [f"{s.kind} {s.detail}".strip() for s in result.path if not kinds or s.kind in kinds]


@pytest.fixture
def path_of() -> Callable[..., list[str]]:
    return steps
