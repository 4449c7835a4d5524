"""Scenario files (schema, errors that point at file:line) and whole runs with `run_scenario`
against a trivial FastAGI server written here over raw sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ports import refusing_port
from transcripts import DATA, load

from hotline.ami.protocol import AmiMessage, AmiParser
from hotline.yamldoc import YamlFileError
from pbxsim.runner import SimReport, run_scenario
from pbxsim.scenario import (
    AgentSpec,
    load_scenario,
    parse_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "pbxsim" / "scenarios"
GUARD = 30.0  # only keeps a broken test from hanging


@dataclass
class RecordingSink:
    events: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.events.append((event, headers))


# --- schema ------------------------------------------------------------------------------


def test_example_scenarios_load_and_plan() -> None:
    names = sorted(p.name for p in SCENARIOS.glob("*.yaml"))
    assert names == [
        "demo.yaml",
        "hostile-callers.yaml",
        "ivr-transcript.yaml",
        "load-200.yaml",
        "queue-agents.yaml",
    ]
    for path in SCENARIOS.glob("*.yaml"):
        scenario = load_scenario(path)
        assert scenario.plan(), path


def test_the_briefs_example_reads_as_meant() -> None:
    scenario = parse_scenario(
        'calls: [{number: "88001000001", caller_id: "79161234567", name: "Иванов Иван", '
        'dtmf: [{at: 2, digits: "1"}], hangup_after: 20, count: 10, arrival_rate: 5}]'
    )
    plan = scenario.plan()
    assert len(plan) == 10
    assert [p.arrival for p in plan] == pytest.approx([n / 5 for n in range(10)])
    first = plan[0].spec
    assert (first.number, first.caller_num, first.caller_name) == (
        "88001000001",
        "79161234567",
        "Иванов Иван",
    )
    assert [(p.digit, p.begin) for p in first.script.presses] == [("1", pytest.approx(2.1))]
    assert first.script.hangup_at == 20


def test_phone_numbers_keep_their_text() -> None:
    scenario = parse_scenario("calls: [{number: 0123, caller_id: 007, name: 42}]")
    spec = scenario.plan()[0].spec
    assert (spec.number, spec.caller_num, spec.caller_name) == ("0123", "007", "42")


def test_agents_and_queues_are_parsed() -> None:
    scenario = load_scenario(SCENARIOS / "queue-agents.yaml")
    assert scenario.agents[0] == AgentSpec(
        "agent1", "Local/agent1@agents/n", ("info",), ring_delay=2.5, talk_time=4
    )
    assert scenario.agents[2].answers is False
    assert scenario.queues["info"]["timeout"] == 15


def test_random_dtmf_repeats_with_the_seed() -> None:
    text = "seed: 5\ncalls: [{number: '1', random_dtmf: {digits: '123', presses: 3}, count: 3}]"
    first = [p.spec.script for p in parse_scenario(text).plan()]
    again = [p.spec.script for p in parse_scenario(text).plan()]
    assert first == again
    assert len({s.presses for s in first}) == 3  # but every caller presses differently


def test_calls_are_numbered_in_arrival_order() -> None:
    scenario = parse_scenario(
        "calls:\n"
        "  - {number: '1', count: 2, arrival_rate: 1, start: 0.5}\n"
        "  - {number: '2', count: 2, arrival_rate: 1}\n"
    )
    assert [(p.index, p.spec.number, p.arrival) for p in scenario.plan()] == [
        (0, "2", 0.0),
        (1, "1", 0.5),
        (2, "2", 1.0),
        (3, "1", 1.5),
    ]


def test_every_call_hangs_up_by_max_call_seconds() -> None:
    scenario = parse_scenario("pbx: {max_call_seconds: 90}\ncalls: [{number: '1'}]")
    assert scenario.plan()[0].spec.script.hangup_at == 90


# --- errors name the file and the line ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calls: [{number: '1'}\n", "x.yaml:2: not valid YAML"),
        (
            "calls:\n  - number: '1'\n    hangup_afer: 3\n",
            "x.yaml:3: calls[0].hangup_afer: unknown key (did you mean 'hangup_after'?)",
        ),
        (
            "calls:\n  - number: '1'\n    dtmf: [{at: soon, digits: '1'}]\n",
            "x.yaml:3: calls[0].dtmf[0].at: expected a number, got 'soon'",
        ),
        (
            "calls:\n  - number: '1'\n    count: 2.5\n",
            "x.yaml:3: calls[0].count: expected a whole number, got '2.5'",
        ),
        (
            "calls:\n  - number: '1'\n    count: 0\n",
            "x.yaml:3: calls[0].count: must be at least 1, got 0",
        ),
        ("calls:\n  - caller_id: '1'\n", "x.yaml:2: calls[0]: missing required key 'number'"),
        (
            "calls:\n  - number: '1'\n    number: '2'\n",
            "x.yaml:3: calls[0].number: duplicate key",
        ),
        ("calls: []\n", "x.yaml:1: calls: must not be empty"),
        ("calls: {number: '1'}\n", "x.yaml:1: calls: expected a list"),
        ("- 1\n", "x.yaml:1: scenario: expected a mapping"),
        ("", "x.yaml:1: the file is empty"),
        (
            "calls:\n  - number: '1'\n    dtmf: [{at: 1, digits: '12x'}]\n",
            "x.yaml:3: calls[0].dtmf[0].digits: not DTMF digits: 'x'",
        ),
        (
            "calls:\n  - number: '1'\n    script: [Wait(1)]\n    hangup_after: 3\n",
            "x.yaml:4: calls[0].hangup_after: cannot be combined with 'script'",
        ),
        (
            "calls:\n  - number: '1'\n    script: [Dial(SIP/x)]\n",
            "x.yaml:3: calls[0].script: a caller script cannot run 'Dial(SIP/x)'",
        ),
        (
            "pbx: {channel: 'SIP/{nope}'}\ncalls: [{number: '1'}]\n",
            "x.yaml:1: pbx.channel: unknown field {nope}",
        ),
        (
            "pbx: {channel: 'SIP/{number.__class__}'}\ncalls: [{number: '1'}]\n",
            "x.yaml:1: pbx.channel: unknown field {number.__class__}",
        ),
        (
            "calls: [{number: '1', hangup_after: -2}]\n",
            "x.yaml:1: calls[0].hangup_after: must be greater than 0, got -2",
        ),
        (
            "agents: [{name: a, interface: Local/a@agents/n, answers: maybe}]\n"
            "calls: [{number: 1}]",
            "x.yaml:1: agents[0].answers: expected true or false, got 'maybe'",
        ),
        (
            "calls: [{number: '1', name: [a, b]}]\n",
            "x.yaml:1: calls[0].name: expected a single value, not a list or mapping",
        ),
        (
            "calls: [{number: !!python/name:os.system '1'}]\n",
            "x.yaml:1: calls[0].number: could not determine a constructor",
        ),
    ],
)
def test_errors_point_at_the_line(text: str, expected: str) -> None:
    with pytest.raises(YamlFileError) as caught:
        parse_scenario(text, source="x.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ncalls:\n  - number: '1'\n    patience: 3\n", encoding="utf-8")
    with pytest.raises(YamlFileError, match=rf"^{path}:4: calls\[0\]\.patience: unknown key"):
        load_scenario(path)
    with pytest.raises(YamlFileError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


# --- runs --------------------------------------------------------------------------------


@dataclass
class Controller:
    """A trivial IVR: answer, ask for one digit, play a prompt, hang up; counts sessions."""

    sessions: int = 0
    finished: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            while (await reader.readline()) not in (b"\n", b""):
                pass
            for command in (
                b"ANSWER\n",
                b"GET DATA beep 3000 1\n",
                b'STREAM FILE demo-congrats ""\n',
                b"HANGUP\n",
            ):
                writer.write(command)
                await writer.drain()
                line = await reader.readline()
                while line == b"HANGUP\n":
                    line = await reader.readline()
                if not line.startswith(b"200"):
                    break
            self.finished += 1
        finally:
            writer.close()


@asynccontextmanager
async def controller() -> AsyncIterator[tuple[Controller, int]]:
    ctl = Controller()
    server = await asyncio.start_server(ctl.handle, "127.0.0.1", 0)
    try:
        yield ctl, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_200_calls_at_time_scale_0_lose_none() -> None:
    scenario = load_scenario(SCENARIOS / "load-200.yaml")
    sink = RecordingSink()
    async with controller() as (ctl, port):
        report = await asyncio.wait_for(
            run_scenario(scenario, "127.0.0.1", port, sink=sink, concurrency=50), GUARD
        )
    assert isinstance(report, SimReport)
    totals = report.totals()
    assert totals["calls"] == 200 and totals["lost"] == 0, report.lost[:3]
    assert ctl.sessions == 200
    assert sorted(c.index for c in report.calls) == list(range(200))
    assert {c.agi_status for c in report.calls} <= {"HANGUP"}
    assert all(c.connected and c.commands >= 1 for c in report.calls)
    # the controller hangs up the patient callers itself; the impatient ones leave first
    assert (totals["completed"], totals["hung_up"], totals["failed"]) == (150, 50, 0)
    assert totals["commands"] == 800 and totals["prompts"] == 400
    # the impatient group gives up during the 20 s prompt
    impatient = [c for c in report.calls if c.group == 1]
    assert impatient and all(c.caller_hung_up for c in impatient)
    assert all(c.duration == pytest.approx(15.0) for c in impatient)
    hangups = [e for e, _ in sink.events if e == "Hangup"]
    assert len(hangups) == 200


async def test_runs_repeat_exactly() -> None:
    scenario = load_scenario(SCENARIOS / "hostile-callers.yaml")

    async def once() -> list[tuple[str, list[tuple[str, str]]]]:
        sink = RecordingSink()
        async with controller() as (_, port):
            await run_scenario(scenario, "127.0.0.1", port, sink=sink, concurrency=1)
        # uniqueids follow the clock, the URL and HOTLINE_HOST (the controller tried) the
        # controller's port: the rest repeats
        varying = {"Uniqueid", "Linkedid", "AppData"}

        def kept(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
            host = ("Variable", "HOTLINE_HOST") in headers
            return [h for h in headers if h[0] not in varying and not (host and h[0] == "Value")]

        return [(e, kept(headers)) for e, headers in sink.events]

    first, second = await once(), await once()
    assert first == second


async def test_hostile_callers_run_to_the_end() -> None:
    scenario = load_scenario(SCENARIOS / "hostile-callers.yaml")
    async with controller() as (_, port):
        report = await run_scenario(scenario, "127.0.0.1", port)
    by_index = {c.index: c for c in report.calls}
    assert report.totals()["lost"] == 0
    # keys mashed before the menu: GET DATA takes the first, the prompt after it drops the rest
    assert (by_index[0].digits, by_index[0].digits_discarded) == ("9", "9" * 8)
    assert by_index[0].caller_id == "79161234567"
    # gone right after ANSWER's reply; the controller's next command got a 511
    assert by_index[1].caller_hung_up and by_index[1].duration == pytest.approx(0.5)
    assert by_index[1].commands == 2
    # gone 0.2 s into GET DATA, the second command
    assert by_index[2].caller_hung_up and by_index[2].duration == pytest.approx(0.7)
    assert by_index[3].caller_hung_up and by_index[3].duration == pytest.approx(3.3)


async def test_server_down_run_follows_the_dialplan_like_asterisk(tmp_path: Path) -> None:
    """Every call: AGISTATUS=FAILURE and the dialplan goes on, with the events of the IVR
    channel in ami-agi-server-down.txt: the run follows the transcripts' own extensions.conf,
    its AGI() pointed at a port held here bound but not listening (refused), the one
    difference from the transcript, taken out of the comparison below."""
    with refusing_port() as port:
        conf = (DATA / "conf" / "extensions.conf").read_text(encoding="utf-8")
        dialplan = tmp_path / "extensions.conf"
        dialplan.write_text(conf.replace("127.0.0.1:4573", f"127.0.0.1:{port}"), "utf-8")
        scenario = parse_scenario(
            "calls: [{number: '88001000002', caller_id: '79160000001', name: Down Test}]"
        )
        sink = RecordingSink()
        report = await run_scenario(scenario, "127.0.0.1", port, sink=sink, dialplan=dialplan)
    (call,) = report.calls
    assert (call.agi_status, call.outcome, call.connected) == ("FAILURE", "failed", False)

    parser = AmiParser(expect_greeting=True)
    messages = [
        m
        for block in load("ami-agi-server-down.txt")
        if block.direction == "asterisk->client"
        for m in parser.feed(block.data)
        if isinstance(m, AmiMessage)
    ]
    wanted = {"Newchannel", "Newexten", "VarSet", "SoftHangupRequest", "Hangup"}
    channel_keys = {
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
        "Event",
        "Privilege",
    }
    expected = [
        (m["Event"], [(k, v) for k, v in m.headers if k not in channel_keys])
        for m in messages
        if m.get("Channel", "").endswith(";2") and m.get("Event") in wanted
    ]
    got = [
        (e, [(k, v.replace(f":{port}/", ":4573/")) for k, v in h if k not in channel_keys])
        for e, h in sink.events
        if e in wanted
    ]
    assert got == expected


class SharedIds:
    """Stands in for the AMI half's clock: one counter for every channel of the PBX."""

    def __init__(self) -> None:
        self.n = 40

    def uniqueid(self) -> str:
        self.n += 1
        return f"1795563000.{self.n}"

    def local_sequence(self) -> str:
        return f"{self.n:08x}"


async def test_uniqueids_can_come_from_a_shared_source() -> None:
    scenario = parse_scenario("calls: [{number: '88001000001', count: 2}]")
    async with controller() as (_, port):
        report = await run_scenario(scenario, "127.0.0.1", port, ids=SharedIds())
    assert [(c.uniqueid, c.channel) for c in report.calls] == [
        ("1795563000.41", "Local/88001000001@from-pstn-00000029;2"),
        ("1795563000.42", "Local/88001000001@from-pstn-0000002a;2"),
    ]


async def test_scaled_run_takes_scaled_time() -> None:
    scenario = parse_scenario(
        # Listening callers, who press their key when GET DATA asks: a key pressed at a fixed
        # time could fall between two commands on a loaded machine (at 1/100 a 5 ms stall is
        # half a simulated second), where Asterisk drops it, and the test would depend on load.
        "calls: [{number: '88001000001', menu_keys: '1', hangup_after: 300, count: 3,"
        " arrival_rate: 10}]"
    )
    loop = asyncio.get_running_loop()
    async with controller() as (ctl, port):
        started = loop.time()
        report = await run_scenario(scenario, "127.0.0.1", port, time_scale=0.01)
        elapsed = loop.time() - started
    assert report.totals()["lost"] == 0 and ctl.finished == 3
    assert [c.digits for c in report.calls] == ["1", "1", "1"]
    # ANSWER 0.5 s, the key when asked, the 20 s prompt, at 1/100: about 0.21 s of real
    # waits at least (a loaded machine only adds to them; how simulated seconds become real
    # ones is checked with a hand-moved clock in test_sim_agi.py)
    assert elapsed > 0.15
