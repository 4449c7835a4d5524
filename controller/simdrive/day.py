"""A live day: the traffic file's calls played against the running controller.

`hotline sim --live-day` is the live twin of ``--virtual``: the same callers (routing.des's
`day_callers`, same seed, same arrivals, handle times and patience) but placed as FastAGI calls
on the controller, answering its real menus, queued by its real ACD, ringing simulated
softphones, while operators come on and go off duty per the traffic file's shifts through the
controller's operator API. The figures come from the simulator's own events
(`controller.simdrive.kpis`), not from the controller.

What it needs from the controller's files (the same configuration the controller reads):
- how to reach each group: `routes`, a number and the keys a caller presses (found in the real
  menus by ``ivr.menu.routes.find_routes``); groups no menu leads to get no calls, and say so;
- the operators (``dialplans/operators.yaml``): each shift of the traffic file is filled with
  operators who have the group's skill, best level first; a shift that cannot be filled is
  reported in ``warnings``.

Simplifications, stated in the report: patience counts from the call's arrival (the menu's
few seconds included); a softphone's talk times follow the handle-time distribution of the
operator's main group, whatever group the call came from.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from controller.settings import Settings
from controller.simdrive.kpis import KpiObserver
from ivr.menu.routes import RouteError
from pbxsim.queue_state import Operator
from pbxsim.scenario import CallGroup, PbxSettings, Scenario
from routing.des import day_callers
from routing.operators import OperatorSpec
from routing.traffic import GroupTraffic, TrafficPlan, format_clock

__all__ = ["DayPlan", "Duty", "LiveDay", "parse_window", "plan_live_day", "run_live_day"]

log = logging.getLogger("controller.simdrive.day")

# Seconds an operator takes to pick up: under 1 s because Dial's timeout is whole seconds of
# the controller's clock, which a compressed run makes one simulated second at least.
RING_DELAY: Final = 0.5
LOGIN_AHEAD: Final = 60.0  # operators log in this long before their shift starts
LOGOUT_RETRY: Final = 5.0  # simulated seconds between tries to log off a busy operator


@dataclass(frozen=True)
class Duty:
    """One operator on duty for one shift (seconds from the window's start)."""

    operator_id: str
    group: str
    start: float
    end: float


@dataclass(frozen=True)
class DayPlan:
    calls: tuple[CallGroup, ...]
    group_of_call: tuple[str, ...]  # the group each call of `calls` is for
    duties: tuple[Duty, ...]
    softphones: dict[str, Operator]  # device -> the simulated person behind it
    warnings: tuple[str, ...]
    span: float  # seconds from the window's start to its end


def plan_live_day(
    plan: TrafficPlan,
    routes: Mapping[str, tuple[str, str]],
    operators: Mapping[str, OperatorSpec],
    *,
    window: tuple[float, float],
    seed: int = 1,
) -> DayPlan:
    """The calls and the duty roster of `window` (seconds of the day); `routes` maps a group
    to (number, keys)."""
    start, end = window
    rng = random.Random(seed)
    warnings: list[str] = []
    calls: list[CallGroup] = []
    groups: list[str] = []
    unrouted: set[str] = set()
    for caller in day_callers(plan, random.Random(seed)):
        if not start <= caller.arrived < end:
            continue
        route = routes.get(caller.group)
        if route is None:
            unrouted.add(caller.group)
            continue
        number, keys = route
        patience = caller.patience if caller.patience != float("inf") else None
        calls.append(
            CallGroup(
                number=number,
                caller_id=f"7900{len(calls):07d}",  # each caller their own number
                menu_keys=keys,
                hangup_after=patience,
                start=caller.arrived - start,
            )
        )
        groups.append(caller.group)
    for group in sorted(unrouted):
        warnings.append(f"no menu leads to group {group!r}: its calls are left out")
    duties = _roster(plan, operators, window, warnings)
    softphones = _softphones(plan, operators, duties, rng)
    return DayPlan(tuple(calls), tuple(groups), duties, softphones, tuple(warnings), end - start)


def _roster(
    plan: TrafficPlan,
    operators: Mapping[str, OperatorSpec],
    window: tuple[float, float],
    warnings: list[str],
) -> tuple[Duty, ...]:
    """Fill every shift with qualified operators (best skill first) not on another shift then."""
    start, end = window
    duties: list[Duty] = []
    for group in plan.groups:
        for shift in group.shifts:
            begin, finish = max(shift.start, start), min(shift.end, end)
            if begin >= finish or shift.operators <= 0:
                continue
            free = [
                spec
                for spec in sorted(
                    operators.values(), key=lambda s: (-s.skills.get(group.name, 0), s.id)
                )
                if spec.skills.get(group.name)
                and not _busy(duties, spec.id, begin - start, finish - start)
            ]
            taken = free[: shift.operators]
            if len(taken) < shift.operators:
                warnings.append(
                    f"group {group.name!r} {format_clock(shift.start)}-{format_clock(shift.end)}:"
                    f" {shift.operators} operators planned, {len(taken)} with the skill free"
                )
            duties += [Duty(spec.id, group.name, begin - start, finish - start) for spec in taken]
    return tuple(duties)


def _busy(duties: list[Duty], operator_id: str, start: float, end: float) -> bool:
    return any(d.operator_id == operator_id and d.start < end and start < d.end for d in duties)


def _softphones(
    plan: TrafficPlan,
    operators: Mapping[str, OperatorSpec],
    duties: tuple[Duty, ...],
    rng: random.Random,
) -> dict[str, Operator]:
    by_name: dict[str, GroupTraffic] = {g.name: g for g in plan.groups}
    phones: dict[str, Operator] = {}
    for duty in duties:
        spec = operators[duty.operator_id]
        handle = by_name[duty.group].handle_time
        talk_times = functools.partial(handle.sample, rng)
        phones.setdefault(spec.device, Operator(ring_delay=RING_DELAY, talk_times=talk_times))
    return phones


# --- running it --------------------------------------------------------------------------------

# (operator id, action) -> HTTP status: the controller's operator API.
OperatorApi = Callable[[str, str], Awaitable[int]]
RunCalls = Callable[[Scenario, KpiObserver], Awaitable[Any]]


@dataclass
class LiveDay:
    """Runs a `DayPlan`: duty changes through `operator_api`, calls through `run_calls`."""

    plan: DayPlan
    operator_api: OperatorApi  # (operator id, "login" | "logout") -> HTTP status
    sleep: Callable[[float], Awaitable[None]]  # simulated seconds
    staffed_seconds: float = 0.0
    refused: list[str] = field(default_factory=list)

    def scenario(self, seed: int) -> Scenario:
        pbx = PbxSettings(default_sound_seconds=2.0, max_call_seconds=self.plan.span + 3600)
        return Scenario(calls=self.plan.calls, pbx=pbx, name="live-day", seed=seed)

    async def run(self, seed: int, run_calls: RunCalls, observer: KpiObserver) -> Any:
        # Those on duty when the window opens log in before the first call is placed.
        first = [d for d in self.plan.duties if d.start == 0]
        logged_in = await asyncio.gather(*(self._log_in(d) for d in first))
        on_duty = [self._end(d, 0.0) for d, ok in zip(first, logged_in, strict=True) if ok]
        later = [self._serve(d) for d in self.plan.duties if d.start > 0]
        duties = asyncio.gather(*on_duty, *later)
        try:
            return await run_calls(self.scenario(seed), observer)
        finally:
            await duties

    async def _serve(self, duty: Duty) -> None:
        on_at = max(0.0, duty.start - LOGIN_AHEAD)  # operators come a little early
        await self.sleep(on_at)
        if await self._log_in(duty):
            await self._end(duty, on_at)

    async def _log_in(self, duty: Duty) -> bool:
        status = await self.operator_api(duty.operator_id, "login")
        if status != 200:
            self.refused.append(f"{duty.operator_id} login: HTTP {status}")
        return status == 200

    async def _end(self, duty: Duty, on_at: float) -> None:
        await self.sleep(duty.end - on_at)
        off_at = duty.end
        # A busy operator finishes the call first: logging off is refused until then.
        while await self.operator_api(duty.operator_id, "logout") == 409:
            await self.sleep(LOGOUT_RETRY)
            off_at += LOGOUT_RETRY
        self.staffed_seconds += off_at - on_at


def summary(
    day: LiveDay, report_calls: Any, observer: KpiObserver, service_seconds: float
) -> dict[str, Any]:
    """The JSON the command prints: the same keys as ``--virtual`` where they mean the same."""
    calls = tuple(report_calls)
    # CallOutcome.group is the index of the call's CallGroup: one per planned call here.
    group_of = {
        call.uniqueid: day.plan.group_of_call[call.group]
        for call in calls
        if call.group < len(day.plan.group_of_call)
    }
    figures = observer.summary(
        calls,
        staffed_seconds=day.staffed_seconds,
        service_seconds=service_seconds,
        group_of=group_of,
    )
    lost = sum(1 for call in calls if call.outcome == "lost")
    return {
        "mode": "live",
        "calls": len(calls),
        "lost": lost,
        **figures,
        "operators_on_duty": len({d.operator_id for d in day.plan.duties}),
        "warnings": [*day.plan.warnings, *day.refused],
        "notes": [
            "patience counts from the call's arrival, menu included",
            "occupancy: ringing and talking over staffed time; wrap-up is the controller's",
        ],
    }


# --- the command -------------------------------------------------------------------------------


def parse_window(text: str) -> tuple[float, float]:
    """``"08:00-12:30"`` -> seconds of the day; ValueError with the reason."""
    first, sep, last = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    start, end = _clock(first), _clock(last)
    if end <= start:
        raise ValueError(f"the window must end after it starts: {text!r}")
    return start, end


def _clock(text: str) -> float:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    value = int(hours) * 3600 + int(minutes) * 60
    if value > 24 * 3600 or int(minutes) >= 60:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return float(value)


async def run_live_day(args: argparse.Namespace, settings: Settings) -> int:
    """``hotline sim --live-day``: print the JSON summary; 0 when no call was lost."""
    if args.time_scale <= 0:
        print("hotline sim: --live-day runs on the controller's clock: --time-scale must be > 0")
        return 2
    try:
        plan = await _prepare(args, settings)
    except (
        ValueError,
        RouteError,
    ) as error:  # YamlFileError is a ValueError: its text is file:line: reason
        print(f"hotline sim: {error}")
        return 2
    for warning in plan.warnings:
        log.warning("live day: %s", warning)
    _check_scales(args, settings)
    try:
        headers = _supervisor_headers(args.token_file)
    except (OSError, UnicodeDecodeError, IndexError) as error:
        print(f"hotline sim: --token-file {args.token_file}: no token to read ({error})")
        return 2
    result = await _run(plan, args, settings, headers)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result["lost"] == 0 else 1


async def _prepare(args: argparse.Namespace, settings: Settings) -> DayPlan:
    from ivr.cli import ivr_settings
    from ivr.menu.routes import find_routes
    from routing.groups import load_groups
    from routing.operators import load_operators
    from routing.settings import locate
    from routing.traffic import load_traffic

    traffic = load_traffic(args.traffic)
    groups = load_groups(locate(settings.routing.groups_file))
    operators = load_operators(locate(settings.routing.operators_file), set(groups))
    whole_day = (0.0, traffic.intervals * traffic.interval_seconds)
    window = parse_window(args.window) if args.window else whole_day
    ivr = ivr_settings(settings)
    # Routes as the controller's menus stand now: its hours and surge switch decide too.
    found = await find_routes(Path(ivr.dialplans_dir), datetime.now(UTC), settings=ivr)
    if not found:
        raise ValueError(
            "no menu queues a caller right now (lines closed?): run in opening hours or with"
            " `hotline hours surge on`"
        )
    routes = {group: (route.number, "".join(route.keys)) for group, route in found.items()}
    return plan_live_day(traffic, routes, operators, window=window, seed=args.seed)


async def _run(
    plan: DayPlan, args: argparse.Namespace, settings: Settings, headers: Mapping[str, str]
) -> dict[str, Any]:
    import aiohttp

    from hotline.clock import SystemClock
    from pbxsim.ami_accounts import ManagerUser
    from pbxsim.ami_server import AmiServer
    from pbxsim.call_dialplan import SHIPPED_DIALPLAN
    from pbxsim.queues import Queues
    from pbxsim.runner import run_scenario

    scale = args.time_scale
    loop = asyncio.get_running_loop()
    started = loop.time()
    clock = SystemClock(time_scale=scale)
    ami = None
    if not args.no_ami:
        user = ManagerUser(settings.ami.username, settings.ami.secret)
        port = args.ami_port if args.ami_port is not None else settings.ami.port
        ami = AmiServer(clock=clock, users={user.username: user}, port=port)
    observer = KpiObserver(lambda: (loop.time() - started) / scale, forward=ami)
    queues = Queues({}, clock, sink=observer, operators=plan.softphones)
    base = f"{settings.http.scheme}://{settings.http.host}:{settings.http.port}/api/operators"
    # The day acts on every operator as one supervisor, so each act carries a reason that the
    # controller's audit log keeps (agents.acting).
    async with aiohttp.ClientSession(headers=headers) as http:

        async def operator_api(operator_id: str, action: str) -> int:
            url = f"{base}/{operator_id}/{action}"
            async with http.post(url, json={"why": LIVE_DAY_WHY}) as response:
                return response.status

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(max(0.0, seconds) * scale)

        async def run_calls(scenario: Scenario, sink: KpiObserver) -> Any:
            return await run_scenario(
                scenario,
                args.agi_host or settings.agi.host,
                args.agi_port or settings.agi.port,
                sink=sink,
                queues=queues,
                time_scale=scale,
                concurrency=10_000,
                ids=clock,
                dialplan=SHIPPED_DIALPLAN,
            )

        if ami is not None:
            ami.queues = queues
            await ami.start()
        live = LiveDay(plan, operator_api, sleep)
        try:
            report = await live.run(args.seed, run_calls, observer)
        finally:
            await queues.close()
            if ami is not None:
                await ami.close()
    # The promise is in the line's seconds; the observer's clock is simulated seconds too.
    return summary(live, report.calls, observer, settings.routing.service_level_seconds)


# Why a supervisor's token logs operators in and out: what the audit log will say.
LIVE_DAY_WHY = "hotline sim --live-day: simulated operators' shifts"


def _supervisor_headers(token_file: Path | None) -> dict[str, str]:
    """The Authorization header from `token_file` (the token on its first line); none without
    one (the controller will answer 401 and the day reports lost shifts)."""
    if token_file is None:
        return {}
    token = token_file.read_text(encoding="utf-8").strip().splitlines()[0].strip()
    return {"Authorization": f"Bearer {token}"}


def _check_scales(args: argparse.Namespace, settings: Settings) -> None:
    """The controller's timers (wrap-up, ring, waits) must be compressed as the calls are."""
    controller = float(getattr(settings.routing, "time_scale", 1.0))
    if abs(controller - args.time_scale) > 1e-9:
        log.warning(
            "live day: --time-scale %s but the controller's routing.time_scale is %s: its "
            "wrap-up, ring and wait timers will not match the calls' pace",
            args.time_scale,
            controller,
        )
