"""Run a scenario: place its calls against the controller and report what happened to each.

Each call runs the dialplan (asterisk-conf/extensions.conf unless the run names another file,
through `pbxsim.dialplan`) from the scenario's context (``[from-pstn]``) at the number dialled,
on a fresh `SimChannel`: its ``AGI()`` reaches the controller (HOTLINE_CONTROLLER is the
controller's address), and what follows it (the fallback to ``[controller-down]`` and its
queue, or the hang-up) is whatever the file says. The channel's life is reported through the
sink: ``Newchannel``, a ``Newexten`` per priority, what the applications report, then
``SoftHangupRequest`` and ``Hangup`` with the dialplan's cause. A number the dialplan does not
know is refused: the call is reported lost, with the reason.

With ``time_scale`` 0 every call runs in simulated time as soon as a concurrency slot is free;
otherwise calls arrive at their planned time, scaled.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from hotline.clock import make_call_clock
from pbxsim.call_dialplan import (
    AgiLaunch,
    DialplanSubroutines,
    SimDialplanChannel,
    load_dialplan_interpreter,
)
from pbxsim.channel import AgiChannel
from pbxsim.dialplan import DialplanEnd, DialplanInterpreter, NoSuchExtension
from pbxsim.fastagi import FastAgiConfig
from pbxsim.model import ChannelState, EventSink, NullSink, QueueService, SimChannel
from pbxsim.queue_state import CAUSE_TEXT
from pbxsim.scenario import PbxSettings, PlannedCall, Scenario
from pbxsim.sounds import SAMPLE_RATE, SoundLibrary
from pbxsim.timeline import CAUSE_NORMAL

# pthread ids on x86-64 Linux sit one 8 MiB stack (plus a guard page) apart.
_THREAD_BASE: Final = 140365331818176
_THREAD_STEP: Final = 8392704


class ChannelIds(Protocol):
    """A PBX-wide source of channel identities (the AMI half's `Clock` is one): channels of
    both halves must draw from one source, or their uniqueids collide."""

    def uniqueid(self) -> str: ...

    def local_sequence(self) -> str: ...


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one call."""

    index: int
    group: int
    number: str
    caller_id: str | None
    uniqueid: str
    channel: str
    agi_status: str  # SUCCESS | FAILURE | HANGUP; empty if the call was lost
    connected: bool
    ended_by: str
    caller_hung_up: bool
    commands: int
    prompts: tuple[str, ...]
    digits: str  # digits the controller's commands received
    digits_discarded: str  # digits heard while a command ignored them
    duration: float  # simulated seconds from arrival to the end of the dialplan
    error: str | None = None
    end: DialplanEnd | None = None  # where and why the dialplan stopped (None if lost)

    @property
    def outcome(self) -> str:
        """``completed`` (the controller finished with the caller on the line), ``hung_up``,
        ``failed`` (AGISTATUS=FAILURE) or ``lost`` (the simulator itself broke)."""
        if self.error is not None:
            return "lost"
        if self.agi_status == "FAILURE":
            return "failed"
        return "hung_up" if self.caller_hung_up else "completed"


@dataclass(frozen=True)
class SimReport:
    calls: tuple[CallOutcome, ...]

    @property
    def lost(self) -> tuple[CallOutcome, ...]:
        return tuple(c for c in self.calls if c.outcome == "lost")

    def totals(self) -> dict[str, int]:
        """Counts by outcome and by AGISTATUS, and the work done."""
        outcomes = Counter(c.outcome for c in self.calls)
        statuses = Counter(c.agi_status for c in self.calls if c.agi_status)
        totals = {"calls": len(self.calls)}
        totals |= {k: outcomes.get(k, 0) for k in ("completed", "hung_up", "failed", "lost")}
        totals |= {f"agistatus_{k.lower()}": v for k, v in sorted(statuses.items())}
        totals |= {
            "commands": sum(c.commands for c in self.calls),
            "prompts": sum(len(c.prompts) for c in self.calls),
            "digits": sum(len(c.digits) for c in self.calls),
        }
        return totals


@dataclass
class _Run:
    """What every call of one run shares."""

    scenario: Scenario
    host: str
    port: int
    sink: EventSink
    queues: QueueService | None
    time_scale: float
    idle_grace: float
    fastagi: FastAgiConfig
    epoch: int
    sounds: SoundLibrary
    ids: ChannelIds | None
    dialplan: DialplanInterpreter
    astdb: dict[tuple[str, str], str] = field(default_factory=dict)


async def run_scenario(
    scenario: Scenario,
    agi_host: str,
    agi_port: int,
    sink: EventSink | None = None,
    queues: QueueService | None = None,
    time_scale: float = 0.0,
    concurrency: int = 100,
    *,
    idle_grace: float = 0.5,
    fastagi: FastAgiConfig | None = None,
    ids: ChannelIds | None = None,
    dialplan: Path | None = None,
    more_controllers: Sequence[str] = (),
) -> SimReport:
    """Place every call of `scenario` against the FastAGI server at agi_host:agi_port.

    `sink` receives every event of every call; `queues` serves ``EXEC Queue``. Without `ids`,
    call n gets uniqueid ``<epoch>.<n>`` and Local sequence n (``pbx.epoch`` or the time of
    the run); pass the AMI half's clock to share its counters. In virtual time (`time_scale`
    0) a controller silent for `idle_grace` real seconds is taken to wait for the caller.
    `dialplan` is the extensions.conf the calls follow (None: the shipped one); its
    HOTLINE_CONTROLLER is agi_host:agi_port, its HOTLINE_AGI_HOSTS that and then
    `more_controllers` (host:port each), tried in turn when one cannot be reached.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    run = _Run(
        scenario=scenario,
        host=agi_host,
        port=agi_port,
        sink=sink or NullSink(),
        queues=queues,
        time_scale=time_scale,
        idle_grace=idle_grace,
        fastagi=fastagi or FastAgiConfig(),
        epoch=scenario.pbx.epoch if scenario.pbx.epoch is not None else int(time.time()),
        sounds=sound_library(scenario.pbx),
        ids=ids,
        dialplan=load_dialplan_interpreter(dialplan, agi_host, agi_port, more_controllers),
    )
    slots = asyncio.Semaphore(concurrency)
    arrivals = make_call_clock(time_scale)

    async def one(plan: PlannedCall) -> CallOutcome:
        await arrivals.sleep_until(plan.arrival if time_scale else 0.0)
        async with slots:
            return await _guarded_call(run, plan)

    outcomes = await asyncio.gather(*(one(plan) for plan in scenario.plan()))
    return SimReport(tuple(outcomes))


def sound_library(pbx: PbxSettings) -> SoundLibrary:
    """The scenario's sound lengths on top of the built-in ones."""
    base = dict(SoundLibrary().samples)
    base |= {name: round(seconds * SAMPLE_RATE) for name, seconds in pbx.sounds.items()}
    return SoundLibrary(
        samples=base,
        default_samples=round(pbx.default_sound_seconds * SAMPLE_RATE),
        missing=frozenset(pbx.missing_sounds),
    )


async def _guarded_call(run: _Run, plan: PlannedCall) -> CallOutcome:
    channel = _new_channel(run, plan)
    try:
        return await _place_call(run, plan, channel)
    except Exception as exc:  # one broken call must not take the run down; it is reported
        return _lost(plan, channel, f"{type(exc).__name__}: {exc}")


def _new_channel(run: _Run, plan: PlannedCall) -> SimChannel:
    pbx = run.scenario.pbx
    if run.ids is None:
        uniqueid, seq = f"{run.epoch}.{plan.index}", plan.index
    else:
        uniqueid, seq = run.ids.uniqueid(), int(run.ids.local_sequence(), 16)
    fields = {"number": plan.spec.number, "seq": seq, "index": plan.index, "uniqueid": uniqueid}
    return SimChannel(
        name=pbx.channel.format(**fields),
        uniqueid=uniqueid,
        linkedid=uniqueid,
        context=pbx.context,
        exten=plan.spec.number,
        state=ChannelState.RING,
        language=pbx.language,
        account_code=pbx.accountcode,
    )


async def _place_call(run: _Run, plan: PlannedCall, channel: SimChannel) -> CallOutcome:
    pbx = run.scenario.pbx
    if not run.dialplan.dialplan.exists(pbx.context, plan.spec.number):
        return _lost(plan, channel, f"refused: no extension {plan.spec.number} in {pbx.context}")
    agi = AgiChannel(
        channel,
        plan.spec.script,
        clock=make_call_clock(run.time_scale, idle_grace=run.idle_grace),
        sink=run.sink,
        sounds=run.sounds,
        queues=run.queues,
        rng=random.Random(f"{run.scenario.seed}:{plan.index}"),
        astdb=run.astdb,
        caller_num=plan.spec.caller_num,
        caller_name=plan.spec.caller_name,
        epoch=run.epoch,
        callee_dialplan=DialplanSubroutines(run.dialplan),
    )
    launch = AgiLaunch(
        channel_type=pbx.channel_type,
        threadid=_THREAD_BASE - plan.index * _THREAD_STEP,
        fastagi=run.fastagi,
    )
    call = SimDialplanChannel(agi, launch)
    agi.sink.emit("Newchannel", channel.headers())
    try:
        end = await run.dialplan.run(call, pbx.context, plan.spec.number)
    except NoSuchExtension as refused:
        return _lost(plan, channel, f"refused: {refused}")
    _hang_up(agi, end)
    result = call.agi_result
    return _outcome(
        plan,
        channel,
        agi_status=result.status if result else "",
        connected=result.connected if result else False,
        ended_by=result.ended_by if result else end.reason,
        caller_hung_up=agi.caller_hung_up,
        commands=agi.stats.commands,
        prompts=tuple(agi.stats.prompts),
        digits="".join(agi.stats.digits_received),
        digits_discarded="".join(agi.stats.digits_discarded),
        duration=agi.clock.now(),
        end=end,
    )


def _hang_up(agi: AgiChannel, end: DialplanEnd) -> None:
    """The end of the dialplan: the pbx hangs the channel up with the cause Hangup() gave,
    Normal Clearing by default."""
    cause = end.cause or CAUSE_NORMAL
    headers = agi.channel.headers()
    agi.sink.emit("SoftHangupRequest", [*headers, ("Cause", str(cause))])
    text = CAUSE_TEXT.get(cause, "Unknown")
    agi.sink.emit("Hangup", [*headers, ("Cause", str(cause)), ("Cause-txt", text)])


def _outcome(plan: PlannedCall, channel: SimChannel, **what_happened: Any) -> CallOutcome:
    """A call's outcome: which call it was (from the plan and its channel), and the rest."""
    return CallOutcome(
        index=plan.index,
        group=plan.group,
        number=plan.spec.number,
        caller_id=plan.spec.caller_num,
        uniqueid=channel.uniqueid,
        channel=channel.name,
        **what_happened,
    )


def _lost(plan: PlannedCall, channel: SimChannel, error: str) -> CallOutcome:
    return _outcome(
        plan,
        channel,
        agi_status="",
        connected=False,
        ended_by="error",
        caller_hung_up=False,
        commands=0,
        prompts=(),
        digits="",
        digits_discarded="",
        duration=0.0,
        error=error,
    )
