"""Calls outlive the controller (issue 10 item 1), end to end on the simulated PBX, which runs
the shipped [from-pstn]: the real FastAGI server runs the real entry, whose caller waits in a
stand-in ACD (hold music on the caller's own session, as routing's does). When the controller
stops (the FastAGI server's drain, what `Controller.stop` and SIGTERM run) or its socket is
closed abruptly (kill -9), the caller is not hung up: hold music, then the AGI again, served by
the next controller on the same port; with none back within the budget, the number's fallback
queue. A call the controller finished is hung up as before."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from handback import GENERAL, HoldingAcd, Sink, call_log, place_call
from test_sim_dialplan import QueueLog, nothing_listening

from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.store.db import CallLog
from ivr.entry import CallEntry
from ivr.menu.library import load_library
from ivr.menu.model import Services

__all__ = ["call_log"]  # a fixture


@asynccontextmanager
async def controller(
    tmp_path: Path, log: CallLog, acd: HoldingAcd, port: int = 0
) -> AsyncIterator[FastAgiServer]:
    """A controller's FastAGI side: the entry with no menu file (the caller goes straight to
    the general group's queue, the stand-in ACD)."""
    library, _ = load_library(tmp_path, Services(), GENERAL)
    router = Router()
    router.add("hotline", CallEntry(log, "test-node", library=library, queue=acd))
    server = FastAgiServer(router, host="127.0.0.1", port=port)
    await server.start()
    try:
        yield server
    finally:
        server.close()


def entries(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``reentry`` of every "call entered" line the controllers logged."""
    return [
        str(getattr(r, "reentry", "")) for r in caplog.records if r.getMessage() == "call entered"
    ]


async def test_a_caller_in_the_queue_when_the_controller_stops_re_enters_the_next_one(
    tmp_path: Path, call_log: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.entry")
    sink, queues, first_acd = Sink(), QueueLog(), HoldingAcd()
    async with controller(tmp_path, call_log, first_acd) as first:
        port = first.port
        call = asyncio.create_task(place_call(port, sink, queues))
        await asyncio.wait_for(first_acd.holding.wait(), 10)
        # the stop does not wait for a caller who is not with an operator
        await asyncio.wait_for(first.drain(30), 5)
    assert not call.done()  # not hung up
    record = await call_log.get(sink.call_id)
    assert record is not None and record.outcome == "handed_back"
    async with controller(tmp_path, call_log, HoldingAcd(answer_at_once=True), port):
        outcome = await asyncio.wait_for(call, 30)
    urls = sink.agi_urls()
    assert urls[0].endswith("&reentry=0") and len(urls) >= 2
    assert urls[-1].endswith(f"&reentry={len(urls) - 1}")
    assert ("from-pstn", "StartMusicOnHold", "") in sink.trail()  # hold music meanwhile
    assert sink.trail()[-1] == ("from-pstn", "Hangup", "")  # the second controller finished
    assert [event for event, _ in sink.events].count("Hangup") == 1
    assert queues.joined == [] and outcome.uniqueid == sink.call_id
    record = await call_log.get(sink.call_id)  # the same call, served by the next controller
    assert record is not None and record.outcome == "answered"
    assert entries(caplog)[0] == "0" and entries(caplog)[-1] == str(len(urls) - 1)


async def test_a_controller_killed_mid_menu_hands_the_caller_back(
    tmp_path: Path, call_log: CallLog
) -> None:
    """kill -9: the socket closes with no goodbye after the call was answered and tagged."""
    killed = asyncio.Event()

    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        for command in (b"ANSWER\n", b"SET VARIABLE HOTLINE_DID 88001000001\n"):
            writer.write(command)
            await reader.readline()
        writer.transport.abort()
        killed.set()

    sink, queues = Sink(), QueueLog()
    dying = await asyncio.start_server(dies, "127.0.0.1", 0)
    port = dying.sockets[0].getsockname()[1]
    call = asyncio.create_task(place_call(port, sink, queues))
    await asyncio.wait_for(killed.wait(), 10)
    dying.close()
    await dying.wait_closed()
    assert not call.done()
    async with controller(tmp_path, call_log, HoldingAcd(answer_at_once=True), port):
        outcome = await asyncio.wait_for(call, 30)
    assert len(sink.agi_urls()) >= 2 and queues.joined == []
    assert sink.trail()[-1] == ("from-pstn", "Hangup", "")
    assert outcome.agi_status == "SUCCESS"
    record = await call_log.get(sink.call_id)
    assert record is not None and record.outcome == "answered"


async def test_with_no_controller_back_within_the_budget_the_caller_reaches_the_queue(
    tmp_path: Path, call_log: CallLog
) -> None:
    sink, queues, acd = Sink(), QueueLog(), HoldingAcd()
    async with controller(tmp_path, call_log, acd) as only:
        call = asyncio.create_task(place_call(only.port, sink, queues))
        await asyncio.wait_for(acd.holding.wait(), 10)
        await asyncio.wait_for(only.drain(30), 5)
    outcome = await asyncio.wait_for(call, 30)
    assert queues.joined == ["hotline-general"]
    assert ("controller-down", "Queue", "hotline-general,t,,,1800") in sink.trail()
    assert len(sink.agi_urls()) >= 2  # retried (refused) before giving up
    assert outcome.agi_status == "FAILURE"


async def test_a_call_the_controller_finished_is_hung_up_without_re_entry(
    tmp_path: Path, call_log: CallLog
) -> None:
    sink, queues = Sink(), QueueLog()
    async with controller(tmp_path, call_log, HoldingAcd(answer_at_once=True)) as server:
        port = server.port
        outcome = await asyncio.wait_for(place_call(port, sink, queues), 30)
    assert sink.agi_urls() == [f"agi://127.0.0.1:{port}/hotline?did={GENERAL}&reentry=0"]
    assert ("from-pstn", "NoOp", f"Controller 127.0.0.1:{port} done: AGISTATUS=SUCCESS "
            "HOTLINE_DID=88001000001 HOTLINE_DONE=1") in sink.trail()  # fmt: skip
    assert sink.trail()[-1] == ("from-pstn", "Hangup", "")
    assert "StartMusicOnHold" not in [app for _, app, _ in sink.trail()]
    assert queues.joined == [] and outcome.agi_status == "SUCCESS"


async def test_the_first_controller_down_the_second_answers_and_the_caller_stays(
    tmp_path: Path, call_log: CallLog
) -> None:
    """Several controller nodes (HOTLINE_AGI_HOSTS): the first refuses the connection, the
    second takes the call at once, without hold music; the caller is never hung up on."""
    sink, queues = Sink(), QueueLog()
    with nothing_listening() as down:
        async with controller(tmp_path, call_log, HoldingAcd(answer_at_once=True)) as second:
            up = f"127.0.0.1:{second.port}"
            outcome = await asyncio.wait_for(
                place_call(down, sink, queues, more_controllers=(up,)), 30
            )
    assert sink.agi_urls() == [
        f"agi://127.0.0.1:{down}/hotline?did={GENERAL}&reentry=0",
        f"agi://{up}/hotline?did={GENERAL}&reentry=1",
    ]
    assert "StartMusicOnHold" not in [app for _, app, _ in sink.trail()]
    assert sink.trail()[-1] == ("from-pstn", "Hangup", "")  # the second controller finished
    assert [event for event, _ in sink.events].count("Hangup") == 1
    assert queues.joined == [] and outcome.agi_status == "SUCCESS"
    record = await call_log.get(sink.call_id)
    assert record is not None and record.outcome == "answered"
