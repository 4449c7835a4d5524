"""Acceptance run of issue #4 (ACD), loaded: the live hour of test_live_hour at full offered
load, with under-staffed groups and softphones leaving and coming back over AMI.

The world differs from the light hour in three ways, all in the same run:

* Load. Talk times are longer (fewer calls for the same load: the compressed hour must keep
  up with real time) and the call rate is set so that the offered load (callers who reach
  the queues x mean handle time: ring, talk and the group's wrap-up) is 105 % of the staffed
  operators' time; what the short groups lose to abandons and overflows, and impatient
  callers who give up in the menus, leave a measured occupancy of 50-90 %. Occupancy is
  measured from the phones' own Dial events (ringing and talking, plus the wrap-up of the
  caller's group) over the hour past a 15-minute warm-up and printed, not asserted: on a
  compressed clock it also depends on how busy the machine is. The behaviour the load must
  cause (widening, overflow) is asserted below.
* Widening and overflow. ``general`` (which widens nowhere) is staffed well below its
  traffic, so its callers wait out ``max_wait_seconds`` and take the menu's overflow path;
  ``business``, ``social`` and ``emergency`` are short too, so their callers wait past
  ``widen_after_seconds`` and are answered by operators of the ``widen_to`` groups, who do
  not have the caller's skill. No operator has ``general``, ``business``, ``social`` or
  ``emergency`` as a second skill, so only widening brings those callers to other operators.
* Softphone registration. The controller is logged in to the simulator's AMI server. Two
  phones are unregistered before it connects (it learns them from ``DeviceStateList``); during
  the hour a few phones in conversation unregister (``DeviceStateChange`` UNAVAILABLE, as the
  PBX announces a device-state change), and most come back later (NOT_INUSE).

The checks stay independent of the ACD's word: the witness follows the simulator's Dial events
and the AGI commands the controller sent (a ``Dial`` to a phone the PBX had announced as
unregistered is a violation even if the PBX refused it); widening is judged from the group
the controller set on the caller's channel and the answering operator's skills; overflow
from the call log and the prompts the caller heard.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from controller.node import Controller
from hotline.store.db import CallLog
from pbxsim.ami_accounts import ManagerUser, privilege_of
from pbxsim.ami_server import AmiServer
from pbxsim.queue_state import DeviceState, Operator
from pbxsim.queues import Queues
from pbxsim.runner import SimReport
from pbxsim.scenario import CallGroup
from tests.routing.test_live_hour import (
    ROUTES,
    SIM_HOUR,
    TIME_SCALE,
    DialWitness,
    Seat,
    assert_left_in_order,
    calls_settled,
    group_names,
    hour_of_calls,
    operator_api,
    run_calls,
    running_controller,
    scaled_groups_yaml,
    seated,
    softphones,
    summary,
)

SEED: Final = 20261128
OFFERED_LOAD: Final = 1.05  # of the staffed operators' time (see the module docstring)
WARM_UP: Final = 900.0  # simulated seconds before occupancy counts (over one handle time)
# Talk time per call, simulated seconds: log-normal, median TALK_MEDIAN, at most TALK_CAP.
TALK_MEDIAN: Final = 600.0
TALK_SIGMA: Final = 0.4
TALK_CAP: Final = 1500.0
IMPATIENT: Final = 0.15  # hour_of_calls' share of callers with a patience
# Primary skill -> operators, against each group's share of the load. The short groups are
# short by far, so that what they must cause does not hang on the pace: the hour is paced by
# the wall clock, and a busy machine starts calls late, which thins the load (a run that took
# twice its 24 s measured under 50 % occupancy). `general` (which widens nowhere) gets about a
# third of what its traffic needs and overflows even at half the load; `business`, `social`
# and `emergency` get about half and lean on their `widen_to` groups, which get about
# 115-120 %. `tech2` and `application-status` (no route leads there) are left unstaffed.
STAFFING: Final = {
    "general": 12,
    "registration": 29,
    "tech1": 33,
    "payments": 24,
    "documents": 29,
    "business": 9,
    "social": 12,
    "emergency": 10,
}
SHORT_GROUPS: Final = frozenset({"general", "business", "social", "emergency"})
# Second skills only among these: the short groups are reached by widening alone.
SECOND_SKILLS: Final = ("registration", "tech1", "payments", "documents")
SILENT: Final = 2  # operators whose phone rings on and on (paused "no answer" on first offer)
# The controller's AMI account: asterisk-conf/manager.conf's, but for the dialplan, agi and
# dtmf classes, which the controller does not use (nor, without the recorder, need).
ACCOUNT: Final = ManagerUser(
    "hotline", "loaded-hour", read=frozenset({"system", "call", "agent", "user", "reporting"})
)
# (simulated second of the hour, how many phones in conversation unregister, when they return)
UNREGISTER_AT: Final = (
    (900.0, 2, 1800.0),
    (1500.0, 2, 2400.0),
    (2100.0, 2, None),
    (2700.0, 2, None),
)
UNREGISTERED_BEFORE: Final = 2  # phones the controller learns of from DeviceStateList
REGISTER_BEFORE_AT: Final = 1200.0
DOWN: Final = frozenset({"UNAVAILABLE", "INVALID"})


# --- the loaded world ------------------------------------------------------------------------


@dataclass
class TalkTimes:
    """A fresh talk time per call (simulated seconds, log-normal, at most TALK_CAP); the last
    one drawn is kept, so the registrar knows how long a conversation has left."""

    rng: random.Random
    last: float = 0.0

    def __call__(self) -> float:
        self.last = min(TALK_CAP, self.rng.lognormvariate(math.log(TALK_MEDIAN), TALK_SIGMA))
        return self.last


def mean_talk_seconds() -> float:
    """E[min(cap, X)] for log-normal X: the truncated mean plus the cap's share."""
    mu, sigma, cap = math.log(TALK_MEDIAN), TALK_SIGMA, TALK_CAP

    def below(z: float) -> float:  # standard normal CDF
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    z = (math.log(cap) - mu) / sigma
    return math.exp(mu + sigma**2 / 2) * below(z - sigma) + cap * (1 - below(z))


def loaded_staff(rng: random.Random) -> list[Seat]:
    primaries = [group for group, n in STAFFING.items() for _ in range(n)]

    def softphone(answers: bool) -> Operator:
        return Operator(
            answers=answers,
            ring_delay=rng.uniform(0.1, 0.8),
            talk_times=TalkTimes(random.Random(rng.random())),
        )

    return seated(rng, primaries, SILENT, (0.5, SECOND_SKILLS), 3000, softphone)


def wrap_up_seconds() -> dict[str, float]:
    """Each group's wrap-up in simulated seconds (the shipped file's)."""
    groups = yaml.safe_load(scaled_groups_yaml())["groups"]
    return {name: body["wrap_up_seconds"] / TIME_SCALE for name, body in groups.items()}


def mean_handle_seconds(seats: list[Seat]) -> float:
    """Ring, talk and the wrap-up of the caller's group, weighted by the routes' shares."""
    answering = [s.softphone for s in seats if s.softphone.answers]
    ring = sum(p.ring_delay for p in answering) / len(answering)
    wrap = wrap_up_seconds()
    shares = sum(share for _, _, share in ROUTES.values())
    wrap_up = sum(wrap[g] * share for g, (_, _, share) in ROUTES.items()) / shares
    return ring + mean_talk_seconds() + wrap_up


def staffed(seats: list[Seat]) -> int:
    return sum(1 for s in seats if s.softphone.answers)


def calls_per_hour(seats: list[Seat]) -> float:
    """The rate that offers OFFERED_LOAD of the staffed operators' time; impatient callers
    (hour_of_calls: 15 %) give up in the menus, before reaching an operator."""
    reaching = 1 - IMPATIENT
    return OFFERED_LOAD * staffed(seats) * SIM_HOUR / mean_handle_seconds(seats) / reaching


# --- the witness, and the PBX's registrar -----------------------------------------------------


@dataclass
class Spell:
    """One Dial to a phone: from DialBegin to the phone's channel hanging up (loop times)."""

    device: str
    caller: str  # the caller's uniqueid
    began: float
    answered: float | None = None
    ended: float | None = None


@dataclass
class RegistrationWitness(DialWitness):
    """The light hour's witness, plus: which phones the PBX announced as unregistered (from
    its own DeviceStateChange events), every Dial the controller asked for (from the AGI
    commands, so a Dial the PBX refused still counts), each phone's busy spells and the
    group the controller gave each caller (HOTLINE_GROUP)."""

    unregistered: set[str] = field(default_factory=set)
    dialled_at: dict[str, list[float]] = field(default_factory=dict)  # device -> loop times
    group_of: dict[str, str] = field(default_factory=dict)  # caller uid -> HOTLINE_GROUP
    spells: list[Spell] = field(default_factory=list)  # ended
    ringing_or_talking: dict[str, Spell] = field(default_factory=dict)  # callee uid -> spell

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        super().emit(event, headers)
        h = dict(headers)
        now = asyncio.get_running_loop().time()
        if event == "DeviceStateChange" and h["Device"].startswith("PJSIP/"):
            if h["State"] in DOWN:
                self.unregistered.add(h["Device"])
            else:
                self.unregistered.discard(h["Device"])
        elif event == "AGIExecStart" and h["Command"].startswith("EXEC Dial "):
            device = h["Command"].split(None, 2)[2].strip('"').split(",")[0]
            self.dialled_at.setdefault(device, []).append(now)
            if device in self.unregistered:
                self.violations.append(f"{device} dialled while unregistered")
        elif event == "VarSet" and h["Variable"] == "HOTLINE_GROUP":
            self.group_of[h["Uniqueid"]] = h["Value"]
        elif event == "DialBegin":
            device = h["DestChannel"].rpartition("-")[0]
            self.ringing_or_talking[h["DestUniqueid"]] = Spell(device, h["Uniqueid"], now)
        elif event == "DialEnd" and h["DialStatus"] == "ANSWER":
            self.ringing_or_talking[h["DestUniqueid"]].answered = now
        elif event == "Hangup" and h["Uniqueid"] in self.ringing_or_talking:
            spell = self.ringing_or_talking.pop(h["Uniqueid"])
            spell.ended = now
            self.spells.append(spell)

    def talking_since(self) -> dict[str, float]:
        """Phones in conversation now -> when they answered."""
        return {
            s.device: s.answered for s in self.ringing_or_talking.values() if s.answered is not None
        }

    def answered(self) -> list[Spell]:
        return [s for s in self.spells if s.answered is not None]


@dataclass
class Tee:
    """Every event to the witness; to the AMI server, those the controller's account reads
    (the server would drop the others for it anyway: skipping them here saves the run the
    encoding of every AGI command and variable)."""

    witness: RegistrationWitness
    ami: AmiServer

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.witness.emit(event, headers)
        if ACCOUNT.can_read(privilege_of(event)):
            self.ami.emit(event, headers)


@dataclass
class Registrar:
    """The PBX's side of softphone registration: the device-state cache Dial consults, and the
    DeviceStateChange the PBX announces for each change."""

    queues: Queues
    pbx: Tee
    moves: list[str] = field(default_factory=list)

    def set_registered(self, device: str, registered: bool) -> None:
        state = DeviceState.NOT_INUSE if registered else DeviceState.UNAVAILABLE
        self.queues.devices.update(device, state)
        self.pbx.emit("DeviceStateChange", [("Device", device), ("State", state.name)])
        self.moves.append(f"{device} {'up' if registered else 'DOWN'}")


def in_long_conversation(witness: RegistrationWitness, seats: list[Seat], count: int) -> list[str]:
    """Phones talking with at least a simulated minute of talk left: the unregistration
    reaches the controller long before the phone is free again. Only operators of the short
    groups, whose callers always wait: one that comes back is rung as soon as its call is
    over, whereas in a group with slack it may rightly sit idle to the end of the hour."""
    now = asyncio.get_running_loop().time()
    talk = {s.device: s.softphone.talk_times for s in seats}
    short = {s.device for s in seats if set(s.skills) & SHORT_GROUPS}
    left: dict[str, float] = {}
    for device, since in witness.talking_since().items():
        drawn = talk[device]
        if device in short and device not in witness.unregistered and isinstance(drawn, TalkTimes):
            left[device] = drawn.last * TIME_SCALE - (now - since)
    chosen = sorted((d for d, t in left.items() if t > 60 * TIME_SCALE), key=lambda d: -left[d])
    return chosen[:count]


async def registration_changes(
    registrar: Registrar, witness: RegistrationWitness, seats: list[Seat], before: list[str]
) -> dict[str, float]:
    """Unregister phones in conversation through the hour and bring most back; returns each
    returned phone's loop time of return."""
    start = asyncio.get_running_loop().time()
    timeline: list[tuple[float, Callable[[], None]]] = []
    returned: dict[str, float] = {}

    def back(devices: list[str]) -> Callable[[], None]:
        def run() -> None:
            for device in devices:
                registrar.set_registered(device, True)
                returned[device] = asyncio.get_running_loop().time()

        return run

    def leave(count: int, back_at: float | None) -> Callable[[], None]:
        def run() -> None:
            devices = in_long_conversation(witness, seats, count)
            for device in devices:
                registrar.set_registered(device, False)
            if back_at is not None:
                timeline.append((back_at, back(devices)))
                timeline.sort(key=lambda item: item[0])

        return run

    timeline.append((REGISTER_BEFORE_AT, back(before)))
    timeline += [(at, leave(n, back_at)) for at, n, back_at in UNREGISTER_AT]
    timeline.sort(key=lambda item: item[0])
    while timeline:
        at, action = timeline.pop(0)
        delay = start + at * TIME_SCALE - asyncio.get_running_loop().time()
        await asyncio.sleep(max(0.0, delay))
        action()
    return returned


# --- the run -------------------------------------------------------------------------------------


@dataclass
class LoadedPbx:
    seats: list[Seat]
    witness: RegistrationWitness
    queues: Queues
    ami: AmiServer
    registrar: Registrar
    unregistered_before: list[str]


@pytest.fixture
async def loaded(tmp_path: Path) -> AsyncIterator[tuple[Controller, LoadedPbx]]:
    seats = loaded_staff(random.Random(SEED))
    assert set(group_names()) - set(STAFFING) == {"tech2", "application-status"}
    witness = RegistrationWitness()
    queues = softphones(seats, witness)
    ami = AmiServer(clock=queues.clock, users={ACCOUNT.username: ACCOUNT}, queues=queues, port=0)
    pbx = Tee(witness, ami)
    queues.sink = pbx
    registrar = Registrar(queues, pbx)
    # History from before the controller listened: only DeviceStateList can tell it.
    answering = [s.device for s in seats if s.softphone.answers]
    before = answering[: UNREGISTERED_BEFORE * 7 : 7]  # a few seats apart
    for device in before:
        queues.devices.seed(device, DeviceState.UNAVAILABLE)
        witness.unregistered.add(device)
    await ami.start()
    environment = {
        "HOTLINE_AMI_ENABLED": "true",
        "HOTLINE_AMI_PORT": str(ami.port),
        "HOTLINE_AMI_USERNAME": ACCOUNT.username,
        "HOTLINE_AMI_SECRET": ACCOUNT.secret,
        "HOTLINE_AMI_RECONNECT_MIN": "0.05",
        "HOTLINE_NODE_NAME": "loaded-hour",
    }
    try:
        async with running_controller(tmp_path, seats, environment) as controller:
            yield controller, LoadedPbx(seats, witness, queues, ami, registrar, before)
    finally:
        await queues.close()
        await ami.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for AMI to reach the controller (no single event to await)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def run_loaded_hour(
    controller: Controller, pbx: LoadedPbx, calls: tuple[CallGroup, ...]
) -> tuple[SimReport, dict[str, float]]:
    changes = asyncio.create_task(
        registration_changes(pbx.registrar, pbx.witness, pbx.seats, pbx.unregistered_before)
    )
    try:
        report = await run_calls(controller, calls, pbx.registrar.pbx, pbx.queues)
        returned = await changes
    finally:
        changes.cancel()
        await asyncio.gather(changes, return_exceptions=True)
    return report, returned


async def test_acceptance_loaded_hour_widening_overflow_and_registration(
    loaded: tuple[Controller, LoadedPbx], tmp_path: Path
) -> None:
    controller, pbx = loaded
    assert controller.acd is not None and controller.engine is not None
    assert controller.ami is not None
    seats, witness = pbx.seats, pbx.witness
    acd = controller.acd.node.acd
    await until(lambda: controller.ami is not None and controller.ami.connected)
    # the controller learnt the phones unregistered before it came from DeviceStateList
    by_device = {s.device: s.operator_id for s in seats}
    before = [acd.operators[by_device[device]] for device in pbx.unregistered_before]
    await until(lambda: not any(op.device_available for op in before))

    calls = hour_of_calls(random.Random(SEED + 1), calls_per_hour(seats))
    offered_load = len(calls) * (1 - IMPATIENT) * mean_handle_seconds(seats) / SIM_HOUR
    port = controller.http_port
    async with aiohttp.ClientSession() as http:
        for seat in seats:
            await operator_api(http, port, "POST", f"/{seat.operator_id}/login")  # -> ready
        started = asyncio.get_running_loop().time()
        report, returned = await run_loaded_hour(controller, pbx, calls)
        wall = asyncio.get_running_loop().time() - started
        await calls_settled(controller)
        wrap_up = max(float(g["wrap_up_seconds"]) for g in _groups(tmp_path))
        await asyncio.sleep(wrap_up + 0.2)
        after = await operator_api(http, port, "GET", "")

    # every call in the call log with an outcome, and none lost
    log = CallLog(controller.engine)
    outcomes: Counter[str] = Counter()
    outcome_of: dict[str, str | None] = {}
    for call in report.calls:
        record = await log.get(call.uniqueid)
        outcome_of[call.uniqueid] = None if record is None else record.outcome
        outcomes[str(outcome_of[call.uniqueid])] += 1
    stats = acd.stats
    widened = widened_answers(seats, witness)
    occupancy = phone_occupancy(witness, seats, started, WARM_UP, SIM_HOUR)
    offered_share = offered_load / staffed(seats)
    print(loaded_summary(report, stats, outcomes, widened, occupancy, offered_share, pbx))
    print(f"wall {wall:.1f} s for the hour and its tail")

    assert report.lost == ()
    assert [uid for uid, outcome in outcome_of.items() if outcome is None] == []
    # a caller an operator answered (by the PBX's Dial events) is logged answered, also when
    # they ended the conversation by hanging up
    assert {outcome_of[caller] for caller in witness.answers} == {"answered"}

    # nobody double-connected, no phone dialled while the PBX had it unregistered (the
    # witness's violations), none ringing or talking at the end
    assert_left_in_order(witness, seats, after)

    # the ACD's books balance
    for name, totals in stats.items():
        assert totals.answered + totals.abandoned + totals.overflowed == totals.offered, name
    answered = sum(g.answered for g in stats.values())
    assert answered == sum(witness.answers.values())

    # widening: callers answered by operators without their skill, of a widen_to group
    assert widened != []
    skills = {s.device: set(s.skills) for s in seats}
    for group, device in widened:
        assert set(acd.groups[group].widen_to) & skills[device], (group, device)

    # overflow: each overflowed caller took the menu's overflow path and was not lost
    overflowed = sum(g.overflowed for g in stats.values())
    assert overflowed > 0
    timed_out = [c for c in report.calls if outcome_of[c.uniqueid] == "timeout"]
    assert len(timed_out) == overflowed
    for call in timed_out:
        assert "hotline/all-busy" in call.prompts, call.uniqueid

    # registration: phones that came back took calls again
    downs = sum(n for _, n, _ in UNREGISTER_AT)
    assert sum(move.endswith("DOWN") for move in pbx.registrar.moves) == downs
    for device, at in returned.items():
        assert any(t > at for t in witness.dialled_at.get(device, [])), device


def widened_answers(seats: list[Seat], witness: RegistrationWitness) -> list[tuple[str, str]]:
    """(caller's group, operator's device) of each answer by an operator without the caller's
    skill; the group is the one the controller gave the caller's channel (HOTLINE_GROUP)."""
    skills = {s.device: s.skills for s in seats}
    return [
        (witness.group_of[spell.caller], spell.device)
        for spell in witness.answered()
        if witness.group_of[spell.caller] not in skills[spell.device]
    ]


def phone_occupancy(
    witness: RegistrationWitness, seats: list[Seat], start: float, begin: float, end: float
) -> float:
    """The operators' busy share by the phones: ringing and talking (the PBX's Dial events)
    plus the wrap-up of the caller's group after each answered call, within simulated
    [begin, end) of the run started at loop time `start`, over the answering seats."""
    wrap = wrap_up_seconds()
    low, high = start + begin * TIME_SCALE, start + end * TIME_SCALE
    busy = 0.0
    for spell in witness.spells:
        assert spell.ended is not None
        until = spell.ended
        if spell.answered is not None:
            until += wrap[witness.group_of[spell.caller]] * TIME_SCALE
        busy += max(0.0, min(until, high) - max(spell.began, low))
    return busy / ((high - low) * staffed(seats))


def _groups(tmp_path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load((tmp_path / "groups.yaml").read_text(encoding="utf-8"))
    return list(data["groups"].values())


def loaded_summary(
    report: SimReport,
    stats: dict[str, Any],
    outcomes: Counter[str],
    widened: list[tuple[str, str]],
    occupancy: float,
    offered: float,
    pbx: LoadedPbx,
) -> str:
    fields = ("offered", "answered", "abandoned", "overflowed")
    total = {k: sum(getattr(g, k) for g in stats.values()) for k in fields}
    wait = sum(g.answer_wait_total for g in stats.values())
    within_sl = sum(g.answered_within_sl for g in stats.values())
    answered = total["answered"]
    asa = wait / answered / TIME_SCALE if answered else 0.0
    sl = within_sl / answered if answered else 0.0
    lines = [
        f"offered load {offered:.1%} of the staffed operators; measured occupancy {occupancy:.1%}",
        f"offered {total['offered']} answered {answered} abandoned {total['abandoned']}"
        f" overflowed {total['overflowed']} widened {len(widened)}"
        f" {dict(Counter(group for group, _ in widened))}"
        f" ASA {asa:.1f}s SL@20s {sl:.1%}",
        f"registration: {', '.join(pbx.registrar.moves)}",
        summary(report, stats, outcomes),
    ]
    return "\n".join(lines)
