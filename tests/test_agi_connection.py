"""One FastAGI connection fed its bytes directly, however the reads cut them: the environment
in one read (the path every call takes), in pieces, or with what follows it in the same read."""

from __future__ import annotations

import asyncio

import pytest
from agi_peer import FedTransport, Outcomes, env_bytes

from hotline.agi.connection import AgiConnection
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.agi.session import AgiSession, CallerHungUp


async def feed(reads: list[bytes]) -> tuple[list[dict[str, str]], list[str], FedTransport]:
    """Feed `reads` to one connection; the environments its handler saw, and what it did."""
    seen: list[dict[str, str]] = []
    events: list[str] = []

    async def hotline(session: AgiSession) -> None:
        seen.append(dict(session.env))
        try:
            await session.answer()
            events.append("answered")
        except CallerHungUp:
            events.append("hung up")

    router = Router()
    router.add("hotline", hotline)
    server = FastAgiServer(router)
    connection = AgiConnection(server, asyncio.get_running_loop())
    transport = FedTransport(connection)
    connection.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        connection.data_received(data)
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    server.support.flush()  # the outcomes, counted now rather than on the next sweep
    return seen, events, transport


ENV = env_bytes(uniqueid="3.3", calleridname="Петров: Пётр")
EXPECTED = dict(line.split(": ", 1) for line in ENV.decode().splitlines() if line)


@pytest.mark.parametrize(
    ("reads", "events", "written"),
    [
        ([ENV], [], [b"ANSWER\n"]),  # no reply yet: the ANSWER waits for it
        ([ENV[:100], ENV[100:]], [], [b"ANSWER\n"]),
        ([ENV[:-1], ENV[-1:]], [], [b"ANSWER\n"]),  # the blank line in a read of its own
        ([ENV[:-2], ENV[-2:]], [], [b"ANSWER\n"]),
        ([ENV[i : i + 1] for i in range(len(ENV))], [], [b"ANSWER\n"]),  # byte by byte
        ([ENV + b"HANGUP\n"], ["hung up"], []),  # the caller gone before the first command
        ([ENV + b"HANG", b"UP\n"], [], [b"ANSWER\n"]),  # ANSWER waits for its own reply
        ([ENV + b"200 result=0\n"], [], []),  # a reply to no command: not AGI, closed
    ],
)
async def test_the_environment_reads_the_same_however_the_reads_cut_it(
    reads: list[bytes], events: list[str], written: list[bytes]
) -> None:
    seen, happened, transport = await feed(reads)
    assert seen == [EXPECTED] and list(seen[0]) == list(EXPECTED)
    assert happened == events and transport.written == written


@pytest.mark.parametrize(
    ("reads", "outcome"),
    [
        ([b"\n" + ENV], "rejected"),  # an empty environment (no script), then garbage
        ([b"\n\n" + ENV], "rejected"),
        ([ENV.replace(b"agi_type: ", b"agi_type ")], "protocol_error"),
        ([ENV.replace(b"agi_type: Local", b"agi_type: \xff")], "protocol_error"),
        ([ENV.replace(b"agi_type: ", b"AGI_TYPE: ")], "protocol_error"),
        ([ENV.replace(b"agi_type: ", b"agi_type: " + b"x" * 9000)], "protocol_error"),
    ],
)
async def test_a_bad_environment_closes_the_connection(reads: list[bytes], outcome: str) -> None:
    outcomes = Outcomes()
    seen, events, transport = await feed(reads)
    assert seen == events == [] and transport.closed and transport.written == []
    assert outcomes.changed() == {outcome: 1}


async def test_the_close_after_a_finished_call_completes_gone_and_is_no_failure() -> None:
    sessions: list[AgiSession] = []

    async def hotline(session: AgiSession) -> None:
        sessions.append(session)
        session.gone()  # asked for: a task the call started may still watch it
        await session.answer()

    router = Router()
    router.add("hotline", hotline)
    server = FastAgiServer(router)
    outcomes = Outcomes()
    connection = AgiConnection(server, asyncio.get_running_loop())
    transport = FedTransport(connection)
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.data_received(ENV)
    for _ in range(3):
        await asyncio.sleep(0)
    connection.data_received(b"200 result=0\n")
    for _ in range(5):  # the handler returns, the server closes, the close is reported
        await asyncio.sleep(0)
    server.support.flush()
    assert transport.closed and sessions[0].gone().done()
    assert sessions[0].failure is None  # the server ended the call: nothing failed
    assert outcomes.changed() == {"completed": 1}
