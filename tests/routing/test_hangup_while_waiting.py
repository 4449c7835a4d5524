"""A queued caller who hangs up while the controller sends nothing (hold music between
announcements) leaves the ACD the moment Asterisk's ``HANGUP`` notice arrives, over a real
FastAGI socket: the queue, the other callers' places and the metrics change before any further
command is sent, and the session then ends without one. No test here asserts a time: the
announcement interval is an hour, so only the notice can end the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agi_peer import AsteriskPeer, env_bytes, eventually, serving
from prometheus_client import CollectorRegistry

from hotline.agi.session import AgiSession, CallerHungUp
from hotline.clock import wall_clock
from routing.acd import Acd
from routing.connect import ConnectResult, connect_call
from routing.metrics import register
from routing.node import AcdNode
from routing.state import InMemoryAcdStore
from routing.testing import group, op

HOUR = 3600.0


def make_node() -> AcdNode:
    acd = Acd({"general": group("general")}, [op("anna", general=9)], clock=wall_clock)
    return AcdNode(acd, InMemoryAcdStore(), node_id="n1")


def queue_handler(
    node: AcdNode, results: dict[str, ConnectResult]
) -> Callable[[AgiSession], Awaitable[None]]:
    async def handler(session: AgiSession) -> None:
        async def announce(position: int, wait: float | None, stop: asyncio.Event) -> None:
            await session.stream_file("hotline/queue-next")

        results[session.call_id] = await connect_call(
            session,
            node,
            "general",
            number=session.env.get("agi_callerid", ""),
            announce=announce,
            announce_every=HOUR,
            hung_up=CallerHungUp,
        )

    return handler


async def queued(port: int, uniqueid: str, number: str) -> AsteriskPeer:
    """A caller whose session reached the ACD's hold music."""
    peer = await AsteriskPeer.connect(port, env_bytes(uniqueid=uniqueid, callerid=number))
    assert await peer.command() == 'EXEC StartMusicOnHold "default"'
    await peer.reply("200 result=0")
    return peer


def waiting_metric(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("hotline_acd_waiting", {"group": "general"})


async def test_hangup_notice_while_on_hold_leaves_the_queue_at_once() -> None:
    node = make_node()
    await node.login("anna", paused_reason="обед")
    registry = CollectorRegistry()
    register(node.acd, registry)
    results: dict[str, ConnectResult] = {}
    async with serving({"hotline": queue_handler(node, results)}) as server:
        first = await queued(server.port, "100.1", "+79990000001")
        second = await queued(server.port, "100.2", "+79990000002")
        await eventually(lambda: "100.2" in node.acd.callers)
        assert node.acd.position("100.2") == 2
        assert waiting_metric(registry) == 2

        await first.send(b"HANGUP\n")  # Asterisk: the caller is gone; the socket stays open
        await eventually(lambda: "100.1" not in node.acd.callers)

        # the queue, the places and the metrics took the hang-up without a further command
        assert node.acd.position("100.2") == 1
        assert waiting_metric(registry) == 1
        assert registry.get_sample_value("hotline_acd_abandoned_total", {"group": "general"}) == 1
        assert results["100.1"].outcome == "caller_gone"
        await first.expect_eof()  # the session ended with no command sent after the notice

        # anna comes back from lunch: the caller still there is offered, not the one gone
        await node.ready("anna")
        assert await second.command() == "EXEC StopMusicOnHold"
        await second.reply("200 result=0")
        dial = await second.command()
        assert dial.startswith('EXEC Dial "PJSIP/anna,') and "^100.2^" in dial
        await second.send(b"HANGUP\n200 result=-1\n")  # the caller leaves during the ring
        await second.expect_closed()
        await first.close()
    assert node.acd.stats["general"].abandoned == 2


async def test_connection_closed_while_on_hold_leaves_the_queue_too() -> None:
    node = make_node()
    results: dict[str, ConnectResult] = {}
    await node.login("anna", paused_reason="обед")
    async with serving({"hotline": queue_handler(node, results)}) as server:
        peer = await queued(server.port, "200.1", "+79990000003")
        await eventually(lambda: "200.1" in node.acd.callers)
        await peer.close()  # the far end went away without a notice
        await eventually(lambda: "200.1" in results)
    assert results["200.1"].outcome == "caller_gone"
    assert node.acd.stats["general"].abandoned == 1
