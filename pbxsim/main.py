"""One simulated Asterisk, both halves joined, and the entry that plays a scenario file on it.

The AMI half (server, queues, softphones) and the AGI half (callers placing FastAGI calls) share
one clock, so uniqueids come from one counter, and the AMI server is the event sink of every
call. The controller under test connects to the AMI port with the credentials of its own
configuration, exactly as it would log in to a real Asterisk. The entry takes plain arguments
(hosts, ports, time scale, the manager account); mapping a product's settings onto them is the
caller's business.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hotline.clock import SystemClock
from hotline.yamldoc import YamlFileError
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from pbxsim.queue_config import queues_from_dict
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues
from pbxsim.runner import SimReport, run_scenario
from pbxsim.scenario import Scenario, load_scenario


@dataclass
class SimulatedPbx:
    """The AMI side of one simulated Asterisk: its clock, queues and manager server."""

    clock: SystemClock
    queues: Queues
    ami: AmiServer | None


def build_queues(scenario: Scenario, clock: SystemClock, ami: AmiServer | None) -> Queues:
    operators = {
        agent.interface: Operator(agent.answers, agent.ring_delay, agent.talk_time)
        for agent in scenario.agents
    }
    queue_names = {name for agent in scenario.agents for name in agent.queues}
    configs = dict(queues_from_dict(scenario.queues))
    configs.update(queues_from_dict({name: {} for name in queue_names - configs.keys()}))
    queues = Queues(configs, clock, sink=ami, operators=operators)
    for agent in scenario.agents:
        for queue in agent.queues:
            queues.add_member(queue, agent.interface, name=agent.name)
    return queues


@asynccontextmanager
async def simulated_pbx(
    scenario: Scenario,
    *,
    time_scale: float,
    ami_user: ManagerUser | None,
    ami_host: str = "127.0.0.1",
    ami_port: int = 5038,
) -> AsyncIterator[SimulatedPbx]:
    """Start the AMI half for a scenario (no AMI server when `ami_user` is None)."""
    clock = SystemClock(time_scale=time_scale)
    ami = None
    if ami_user is not None:
        ami = AmiServer(
            clock=clock, users={ami_user.username: ami_user}, host=ami_host, port=ami_port
        )
    queues = build_queues(scenario, clock, ami)
    if ami is not None:
        ami.queues = queues
        await ami.start()
    try:
        yield SimulatedPbx(clock, queues, ami)
    finally:
        await queues.close()
        if ami is not None:
            await ami.close()


async def simulate(
    scenario: Scenario,
    agi_host: str,
    agi_port: int,
    *,
    time_scale: float,
    ami_user: ManagerUser | None,
    ami_port: int,
    dialplan: Path | None = None,
) -> SimReport:
    async with simulated_pbx(
        scenario, time_scale=time_scale, ami_user=ami_user, ami_port=ami_port
    ) as pbx:
        return await run_scenario(
            scenario,
            agi_host,
            agi_port,
            sink=pbx.ami,
            queues=pbx.queues,
            time_scale=time_scale,
            ids=pbx.clock,
            dialplan=dialplan,
        )


def report_json(scenario: Scenario, report: SimReport) -> str:
    summary = {
        "scenario": scenario.name or scenario.source,
        "calls": len(report.calls),
        "lost": len(report.lost),
        "totals": report.totals(),
    }
    return json.dumps(summary, ensure_ascii=False)


async def run_scenario_file(
    path: Path,
    agi_host: str,
    agi_port: int,
    *,
    time_scale: float,
    ami_user: ManagerUser | None,
    ami_port: int,
    dialplan: Path | None = None,
) -> int:
    """Play one scenario file and print its summary: exit 0 when no call was lost, 1 when some
    were, 2 when the file cannot be used. The calls follow `dialplan` (extensions.conf; None:
    the shipped one)."""
    try:
        scenario = load_scenario(path)
    except YamlFileError as error:
        print(f"hotline sim: {error}")
        return 2
    report = await simulate(
        scenario,
        agi_host,
        agi_port,
        time_scale=time_scale,
        ami_user=ami_user,
        ami_port=ami_port,
        dialplan=dialplan,
    )
    print(report_json(scenario, report))
    return 0 if not report.lost else 1
