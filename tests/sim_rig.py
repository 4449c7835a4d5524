"""A whole controller for the end-to-end tests whose calls come from the simulated Asterisk
(pbxsim): its menus, the ACD's groups and operators written into the test's directory, the
controller started on them, and a caller dialling in over FastAGI.

What is a test's own stays at its call site: the menus, the groups' timings, the operators'
skills and any further settings (the recorder on or off, the node's name, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from controllers import controller_settings, started
from people import staff_environment

from controller.node import Controller
from hotline.clock import ScaledCallClock
from pbxsim.call_dialplan import DialplanSubroutines, load_dialplan_interpreter
from pbxsim.callers import CallerScript
from pbxsim.channel import AgiChannel
from pbxsim.fastagi import AgiRequestSpec, run_agi
from pbxsim.model import ChannelState, EventSink, SimChannel
from pbxsim.queues import Queues
from pbxsim.sounds import SoundLibrary

# A line where a caller keys the number of an earlier contact and is put to its group (help)
REPEAT_NUMBER = "88009000010"
REPEAT_MENU = f"""\
number: "{REPEAT_NUMBER}"
title: повторное обращение
group: help
start: by-contact
nodes:
  by-contact:
    kind: contact_number
    prompts: [hotline/enter-contact-number]
    group: help
    timeout: 5
    then_rating: rate
    no_number: busy
    otherwise: busy
  rate:
    kind: rating
    prompts: [hotline/rating-request]
    timeout: 1
    retries: 1
    next: goodbye
  busy: {{kind: hangup, prompts: [hotline/all-busy]}}
  goodbye: {{kind: hangup, prompts: [hotline/goodbye]}}
"""
GROUP_NAMES = {"help": "Справка", "tier2": "Вторая линия"}
SEATS = {"anna": ("Анна", "PJSIP/1001"), "boris": ("Борис", "PJSIP/1002")}  # name, softphone


def groups_yaml(
    *group_ids: str,
    ring_seconds: int,
    max_wait_seconds: int,
    widen_after_seconds: int,
    wrap_up_seconds: int = 60,
) -> str:
    """groups.yaml of `group_ids` (of GROUP_NAMES), round the clock, all with these timings."""
    lines = ["groups:"]
    for group_id in group_ids:
        lines += [
            f"  {group_id}:",
            f"    name: {GROUP_NAMES[group_id]}",
            "    schedule: round-the-clock",
            f"    wrap_up_seconds: {wrap_up_seconds}",
            f"    ring_seconds: {ring_seconds}",
            f"    max_wait_seconds: {max_wait_seconds}",
            f"    widen_after_seconds: {widen_after_seconds}",
        ]
    return "\n".join(lines) + "\n"


def operators_yaml(**skills: Mapping[str, int]) -> str:
    """operators.yaml of the operators named (of SEATS), each with its skills (group -> level)."""
    lines = ["operators:"]
    for operator_id, levels in skills.items():
        name, device = SEATS[operator_id]
        flow = ", ".join(f"{group}: {level}" for group, level in levels.items())
        lines += [
            f"  {operator_id}:",
            f"    name: {name}",
            f"    device: {device}",
            f"    skills: {{{flow}}}",
        ]
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def sim_controller(
    tmp_path: Path,
    menus: Mapping[str, str],
    *,
    groups: str,
    operators: str,
    environment: Mapping[str, str],
    staff: bool = False,
) -> AsyncIterator[Controller]:
    """A controller in `tmp_path` running for the block: `menus` (number -> menu YAML; the
    first number is the general line) in tmp_path/dialplans, which also holds the groups'
    schedules; the ACD's `groups` and `operators` (YAML texts); with `staff`, a token file
    for every operator, the supervisor and the admin (people.staff_environment).
    `environment` adds or overrides settings."""
    dialplans = tmp_path / "dialplans"
    dialplans.mkdir()
    for number, menu in menus.items():
        (dialplans / f"{number}.yaml").write_text(menu, encoding="utf-8")
    groups_file = tmp_path / "groups.yaml"
    operators_file = tmp_path / "operators.yaml"
    groups_file.write_text(groups, encoding="utf-8")
    operators_file.write_text(operators, encoding="utf-8")
    settings = controller_settings(
        tmp_path,
        {
            "HOTLINE_IVR_DIALPLANS_DIR": str(dialplans),
            "HOTLINE_IVR_GENERAL_NUMBER": next(iter(menus)),
            "HOTLINE_ROUTING_GROUPS_FILE": str(groups_file),
            "HOTLINE_ROUTING_OPERATORS_FILE": str(operators_file),
            "HOTLINE_ROUTING_SCHEDULES_DIR": str(dialplans),
            **(staff_environment(tmp_path, operators_file) if staff else {}),
            **environment,
        },
    )
    async with started(settings) as node:
        yield node


class EvenSounds(SoundLibrary):
    """Every file lasts `default_samples`. The simulator's own library gives digits/, letters/
    and phonetic/ files the measured length of a Russian digit (0.46 s), whatever the default:
    the twelve digits of a contact number, told before the rating, made each answered call
    5.6 s longer in real time while no test here is about how long a digit sounds."""

    def length(self, name: str) -> int | None:
        return None if name in self.missing else self.default_samples


async def dial_in(
    agi_port: int,
    queues: Queues,
    script: CallerScript,
    *,
    uniqueid: str,
    number: str,
    caller: str,
    sink: EventSink | None = None,
    channel_name: str = "PJSIP/carrier-00000001",
    prompt_samples: int = 400,
) -> tuple[AgiChannel, str]:
    """One caller dialling `number` on the controller listening for FastAGI at `agi_port`:
    the operators' simulated phones in `queues` (closed afterwards), Dial's U() running the
    shipped dialplan's answer hook against the same controller, each prompt `prompt_samples`
    samples long (8 per ms). Returns the channel and how the AGI session ended."""
    channel = SimChannel(
        name=channel_name,
        uniqueid=uniqueid,
        linkedid=uniqueid,
        context="from-pstn",
        exten=number,
        state=ChannelState.RING,
    )
    agi = AgiChannel(
        channel,
        script,
        clock=ScaledCallClock(1.0),
        sink=sink,
        sounds=EvenSounds(samples={}, default_samples=prompt_samples),
        queues=queues,
        caller_num=caller,
        callee_dialplan=DialplanSubroutines(load_dialplan_interpreter(None, "127.0.0.1", agi_port)),
    )
    url = f"agi://127.0.0.1:{agi_port}/hotline?did={number}"
    result = await run_agi(
        agi, AgiRequestSpec(url=url, channel_type="PJSIP"), "127.0.0.1", agi_port
    )
    await queues.close()
    return agi, result.status
