"""The simulated PBX follows extensions.conf from the file: calls run [from-pstn], and when the
controller cannot be reached or returns without saying it finished the call (HOTLINE_DONE) the
call is retried with hold music within the budget, then the file's [controller-down] queues
it. Each test runs whole calls with `run_scenario`, on the shipped file or on a modified copy,
and sees the simulator do what that file says."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pbxsim.call_dialplan import SHIPPED_DIALPLAN
from pbxsim.model import SimChannel
from pbxsim.runner import CallOutcome, run_scenario
from pbxsim.scenario import parse_scenario

DOCUMENTS = "88002000002"  # [controller-down]: FALLBACK_QUEUE=hotline-documents
DONE_GUARD = ' same => n,GotoIf($["${HOTLINE_DONE}" = "1"]?done)\n'
RETRIES = 21  # the first try and one every 3 s of the 60 s budget


@dataclass
class Sink:
    events: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.events.append((event, headers))

    def trail(self) -> list[tuple[str, str, str, str]]:
        """Every Newexten as (context, extension, application, data)."""
        return [
            (h["Context"], h["Extension"], h["Application"], h["AppData"])
            for h in (dict(headers) for event, headers in self.events if event == "Newexten")
        ]


@dataclass
class QueueLog:
    """The simulator's queues, reduced to who joined which queue; nobody answers."""

    joined: list[str] = field(default_factory=list)

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str:
        self.joined.append(queue)
        return "TIMEOUT"


@contextmanager
def nothing_listening() -> Iterator[int]:
    """A port bound and never listened on: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@asynccontextmanager
async def silent_controller() -> AsyncIterator[int]:
    """A FastAGI server that reads the environment and closes without sending a command."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def copy_of_dialplan(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED_DIALPLAN.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    copy = tmp_path / "extensions.conf"
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return copy


async def call(port: int, dialplan: Path | None = None) -> tuple[CallOutcome, QueueLog, Sink]:
    scenario = parse_scenario(f"calls: [{{number: '{DOCUMENTS}', hangup_after: 300}}]")
    queues, sink = QueueLog(), Sink()
    report = await asyncio.wait_for(
        run_scenario(scenario, "127.0.0.1", port, sink=sink, queues=queues, dialplan=dialplan),
        30.0,
    )
    (outcome,) = report.calls
    assert outcome.error is None, outcome.error
    return outcome, queues, sink


async def test_controller_down_lands_in_the_numbers_fallback_queue() -> None:
    with nothing_listening() as port:
        outcome, queues, sink = await call(port)
    assert (outcome.agi_status, outcome.connected) == ("FAILURE", False)
    assert queues.joined == ["hotline-documents"]
    trail = sink.trail()
    assert (
        "from-pstn",
        DOCUMENTS,
        "AGI",
        f"agi://127.0.0.1:{port}/hotline?did={DOCUMENTS}&reentry=0",
    ) in trail
    agis = [data for _, _, app, data in trail if app == "AGI"]
    assert len(agis) == RETRIES and agis[-1].endswith(f"&reentry={RETRIES - 1}")
    # no HOTLINE_DONE: the caller goes on to the retries; the budget spent, the number's queue
    inbound = [(app, data) for context, _, app, data in trail if context == "from-pstn"]
    assert inbound[-5:] == [
        ("NoOp", f"Controller 127.0.0.1:{port} done: AGISTATUS=FAILURE HOTLINE_DID= HOTLINE_DONE="),
        ("GotoIf", "0?done"),
        ("ExecIf", "0?Set(HOTLINE_REENTRY_UNTIL=)"),
        ("ExecIf", inbound[-2][1]),
        ("GotoIf", f"1?controller-down,{DOCUMENTS},1"),
    ]
    assert ("from-pstn", DOCUMENTS, "StartMusicOnHold", "") in trail
    assert ("controller-down", "fallback", "Playback", "pls-hold-while-try") in trail
    assert ("controller-down", "fallback", "Queue", "hotline-documents,t,,,1800") in trail


async def test_the_simulator_follows_a_modified_copy_of_the_file(tmp_path: Path) -> None:
    copy = copy_of_dialplan(
        tmp_path,
        f"exten => {DOCUMENTS},1,Set(FALLBACK_QUEUE=hotline-documents)",
        f"exten => {DOCUMENTS},1,Set(FALLBACK_QUEUE=hotline-social)",
    )
    with nothing_listening() as port:
        _, queues, _ = await call(port, copy)
    assert queues.joined == ["hotline-social"]


async def test_a_controller_that_leaves_the_call_untagged_falls_back() -> None:
    """AGISTATUS=SUCCESS without HOTLINE_DID (nor HOTLINE_DONE): retried within the budget,
    which an untagged call does not restart, then [controller-down] (issue 16 item 3)."""
    async with silent_controller() as port:
        outcome, queues, sink = await call(port)
    assert (outcome.agi_status, outcome.connected, outcome.commands) == ("SUCCESS", True, 0)
    trail = sink.trail()
    assert ("from-pstn", DOCUMENTS, "GotoIf", "0?done") in trail
    assert ("from-pstn", DOCUMENTS, "GotoIf", f"1?controller-down,{DOCUMENTS},1") in trail
    assert [app for _, _, app, _ in trail].count("AGI") == RETRIES
    assert queues.joined == ["hotline-documents"]


async def test_without_the_done_guard_the_handed_back_caller_is_hung_up(tmp_path: Path) -> None:
    """The mutation: a dialplan that takes every return as finished hangs the caller up."""
    copy = copy_of_dialplan(tmp_path, DONE_GUARD, " same => n,Goto(done)\n")
    async with silent_controller() as port:
        outcome, queues, sink = await call(port, copy)
    assert outcome.agi_status == "SUCCESS"
    assert queues.joined == []
    assert sink.trail()[-1] == ("from-pstn", DOCUMENTS, "Hangup", "")
    assert outcome.end is not None and outcome.end.reason == "hangup"
    hangup = dict(next(h for e, h in sink.events if e == "Hangup"))
    assert (hangup["Cause"], hangup["Cause-txt"]) == ("16", "Normal Clearing")


@pytest.mark.parametrize(
    "number", ["88001000001", "78001000001", "+78001000001"], ids=["8800", "7800", "+7800"]
)
async def test_every_form_of_the_number_reaches_the_controller(number: str) -> None:
    scenario = parse_scenario(f"calls: [{{number: '{number}', hangup_after: 300}}]")
    sink = Sink()
    with nothing_listening() as port:
        report = await run_scenario(scenario, "127.0.0.1", port, sink=sink, queues=QueueLog())
    assert report.calls[0].agi_status == "FAILURE"
    agi = [data for _, _, app, data in sink.trail() if app == "AGI"]
    assert agi[0] == f"agi://127.0.0.1:{port}/hotline?did=88001000001&reentry=0"
    assert len(agi) == RETRIES
    assert all(url.startswith(f"agi://127.0.0.1:{port}/hotline?did=88001000001&") for url in agi)


async def test_a_number_the_dialplan_does_not_know_is_refused() -> None:
    scenario = parse_scenario("calls: [{number: '12345', hangup_after: 300}]")
    sink = Sink()
    with nothing_listening() as port:
        report = await run_scenario(scenario, "127.0.0.1", port, sink=sink)
    (outcome,) = report.calls
    assert outcome.outcome == "lost" and "refused" in (outcome.error or "")
    assert sink.events == []
