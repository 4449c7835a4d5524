"""Which number and which keys bring a caller to each skill group's queue, found by running
the real menus with the real engine (never written by hand, so a menu edit moves the route).

    routes = await find_routes(Path("dialplans"), datetime(2026, 11, 27, 12, 0, tzinfo=MSK))
    routes["documents"]  # Route(number="88002000002", keys=("0",), group="documents")

For every menu number a breadth-first search tries key sequences, one key per request for
input as `ivr.menu.console.ScriptedKeypad` feeds them, on the console channel of
``hotline menus try``, for a caller not seen before at the moment given. A sequence is a route when
every key is accepted and the caller is queued right after the last one, with no timeout,
wrong key, fallback or step limit on the way: a simulated caller pressing those keys reaches
that queue at once. So a group reached only by pressing nothing (a menu's fallback), by
entering a number in a ``collect`` node (an application number, SNILS, INN), or by the ACD
widening or escalating (tech2, application-status in the shipped files) has no route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.engine import Engine
from ivr.menu.library import load_library
from ivr.menu.model import Menu, Services, Step
from ivr.settings import IvrSettings

__all__ = ["DTMF", "Route", "RouteError", "find_routes"]

DTMF = "0123456789*#"  # every key of a phone's keypad, tried in this order
# Steps after which the caller is no longer on a route they chose with their keys.
_DETOURS = frozenset({"timeout", "invalid", "fallback", "step-limit"})


@dataclass(frozen=True)
class Route:
    """Dial `number`, press `keys` one by one (one per menu): the caller waits for `group`."""

    number: str
    keys: tuple[str, ...]
    group: str


class RouteError(Exception):
    """The routes cannot be derived: a menu file is rejected, or a number has no menu."""


class _NewCaller:
    """The caller history of someone who never called before (no 'welcome back')."""

    async def seen_before(self, caller_id: str, call_id: str) -> bool:
        return False


async def find_routes(
    dialplans: Path,
    at: datetime,
    *,
    surge: bool | None = None,
    numbers: Iterable[str] | None = None,
    keys: str = DTMF,
    depth: int = 4,
    settings: IvrSettings | None = None,
) -> dict[str, Route]:
    """Group id -> the route to its queue, for every group some menu queues a caller to.

    `at`: the moment of the call (no offset: the hotline's time zone); pick one when the lines
    are open, or the menus offer callbacks instead of queues. `surge` overrides the surge
    switch (None: the switch file the hours name). `numbers`: the menus searched (default:
    every menu file of `dialplans`). `depth`: the most keys in a route. Of several routes to
    a group, the one from the number whose menu's own ``group:`` is that group wins, then the
    shortest, then the lowest number. Raises `RouteError` if a menu file is rejected or a
    number asked for has no menu file of its own."""
    ivr = settings or IvrSettings()
    moment = at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(ivr.timezone))
    menus = _load_menus(dialplans, ivr, surge)
    chosen = sorted(menus) if numbers is None else list(numbers)
    missing = [number for number in chosen if number not in menus]
    if missing:
        raise RouteError(f"no menu file in {dialplans} for {', '.join(missing)}")
    engine = Engine(ivr.max_steps)
    best: dict[str, tuple[tuple[bool, int, str], Route]] = {}
    for number in chosen:
        menu, services = menus[number]
        for group, pressed in (await _search(engine, menu, services, moment, keys, depth)).items():
            rank = (menu.group != group, len(pressed), number)
            if group not in best or rank < best[group][0]:
                best[group] = (rank, Route(number, pressed, group))
    return {group: route for group, (_, route) in sorted(best.items())}


def _load_menus(
    dialplans: Path, ivr: IvrSettings, surge: bool | None
) -> Mapping[str, tuple[Menu, Services]]:
    from ivr.entry import base_services

    # No status service: a lookup needs a collected number first, which no route has.
    base = replace(base_services(ivr, None), history=_NewCaller(), status=None)
    switch = None if surge is None else (lambda: surge)
    library, problems = load_library(dialplans, base, ivr.general_number, switch)
    if problems:
        raise RouteError("menu files rejected:\n" + "\n".join(str(p) for p in problems))
    return library.menus


async def _search(
    engine: Engine, menu: Menu, services: Services, at: datetime, keys: str, depth: int
) -> dict[str, tuple[str, ...]]:
    """Breadth first: group -> the first (shortest) key sequence that queues to it."""
    found: dict[str, tuple[str, ...]] = {}
    frontier: list[tuple[str, ...]] = [()]
    for length in range(depth + 1):
        longer: list[tuple[str, ...]] = []
        for pressed in frontier:
            group, wants_more = await _trial(engine, menu, services, at, pressed)
            if group is not None:
                found.setdefault(group, pressed)
            elif wants_more and length < depth:
                longer.extend((*pressed, key) for key in keys)
        frontier = longer
    return found


async def _trial(
    engine: Engine, menu: Menu, services: Services, at: datetime, pressed: tuple[str, ...]
) -> tuple[str | None, bool]:
    """One call pressing `pressed` and then nothing: the group it was queued to on a clean
    route (else None), and whether the menu was waiting for one more key."""
    channel = ConsoleChannel(ScriptedKeypad(pressed), call_id="routes.1")
    result = await engine.run(channel, menu, services, at)
    return judge(result.path, len(pressed))


def judge(path: Iterable[Step], pressed: int) -> tuple[str | None, bool]:
    """Read a call's path (see `_trial`): a queue reached right after the last of `pressed`
    keys with no detour is a route; a timeout right after them means one more key may be."""
    inputs = 0
    for step in path:
        if step.kind in _DETOURS:
            return None, step.kind == "timeout" and inputs == pressed
        if step.kind == "input":
            inputs += 1
        elif step.kind == "queue":  # detail: "<group>: <outcome>"; group ids have no colon
            return (step.detail.partition(":")[0] if inputs == pressed else None), False
    return None, False
