"""Callbacks at most once when the AMI link fails mid-call (issue 16, item 6): the citizen's
Originate reaches Asterisk, then the link drops before its response. The call goes on in the
simulated PBX; the controller must not dial the citizen again while that call is alive.

The link is cut by a TCP hop between the controller and the simulator (`LinkCutter`), the way
a network fault cuts it: Asterisk receives the Originate and places the call; the controller
sees its connection close and reconnects by itself. Time for back-off is the harness's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from hotline.ami.client import AmiClient
from hotline.clock import ManualClock
from routing.acd import Acd
from routing.callbacks.live_legs import CallbackLegs
from routing.callbacks.scheduler import CallbackScheduler
from routing.node import AcdNode
from routing.operators import OperatorState
from routing.state import InMemoryAcdStore
from routing.testing import op
from tests.routing.test_callbacks import GROUPS, PHONE, SETTINGS, T0, World, db_url, world  # noqa: F401 - the fixture

CITIZEN = f"Local/{PHONE}@hotline-callback-out"
# whatever Asterisk placed can no longer ring after this (plus the retry)
RING_OUT = SETTINGS.caller_ring_seconds + SETTINGS.response_grace_seconds


class LinkCutter:
    """A TCP hop to the simulated Asterisk that, once, forwards the Originate whose text holds
    `cut_on` and then closes both sides at once: the PBX places the call, the controller never
    hears the response."""

    def __init__(self, upstream_port: int, cut_on: str) -> None:
        self.upstream_port = upstream_port
        self.cut_on: bytes | None = cut_on.encode()
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        self._tasks.add(back)
        back.add_done_callback(self._tasks.discard)
        try:
            pending = b""
            while data := await reader.read(65536):
                *actions, pending = (pending + data).split(b"\r\n\r\n")
                for action in actions:
                    up_writer.write(action + b"\r\n\r\n")
                    if self._cuts_here(action):
                        await up_writer.drain()
                        return
        finally:
            back.cancel()
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await w.wait_closed()

    def _cuts_here(self, action: bytes) -> bool:
        if self.cut_on is None or b"Action: Originate" not in action:
            return False
        if self.cut_on not in action:
            return False
        self.cut_on, self.cuts = None, self.cuts + 1
        return True

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


async def node_behind(w: World, cutter: LinkCutter, operators: list[str]) -> CallbackScheduler:
    """A node whose AMI client goes through `cutter` and reconnects by itself."""
    specs = [op(o, general=5 + i) for i, o in enumerate(operators)]
    node = AcdNode(Acd(GROUPS, specs, clock=ManualClock()), InMemoryAcdStore(), node_id="n1")
    await node.start()
    for o in operators:
        await node.login(o)
    client = AmiClient("127.0.0.1", cutter.port, "ctl", "secret", reconnect_min=0.05)
    client.start()
    async with asyncio.timeout(5):
        await client.wait_connected()
    scheduler = CallbackScheduler(w.store, node, client, settings=SETTINGS, now=w.now)
    w.nodes.append(node)
    w.schedulers.append(scheduler)
    w.clients.append(client)
    return scheduler


def citizen_dials(w: World) -> int:
    return sum(1 for channel in w.originator.dialled() if channel == CITIZEN)


async def test_a_citizen_whose_call_result_was_lost_is_dialled_once_while_it_lasts(
    db_url: str,  # noqa: F811 - the fixture
) -> None:
    async with world(db_url) as w:
        cutter = LinkCutter(w.server.port, cut_on=f"Channel: {CITIZEN}")
        await cutter.start()
        try:
            await node_behind(w, cutter, ["anna"])
            cb = await w.scheduler.request(phone=PHONE, group="general")

            # (a) the link drops right after the citizen's Originate reached Asterisk
            await w.pass_()
            assert cutter.cuts == 1
            assert citizen_dials(w) == 1
            operator, citizen = w.originator.live_channels()  # the call goes on in the PBX
            assert citizen.startswith(f"{CITIZEN}-") and citizen.endswith(";1")
            row = await w.row(cb.id)
            assert (row.state, row.attempts) == ("pending", 1)  # counted: retries stay bounded
            assert row.last_result is not None and row.last_result.startswith("uncertain")
            safe = T0 + timedelta(seconds=RING_OUT + SETTINGS.retry_seconds)
            assert row.next_attempt_at >= safe
            assert w.node.acd.operator("anna").state is OperatorState.READY
            async with asyncio.timeout(5):
                await w.clients[0].wait_connected()  # reconnected by itself

            w.now.at = row.next_attempt_at - timedelta(seconds=1)
            assert await w.pass_() == []  # not before the safe time

            # (b) the call is still up at the next attempt: nobody is dialled, not counted
            w.now.at = row.next_attempt_at
            dialled = len(w.originator.dialled())
            await w.pass_()
            assert len(w.originator.dialled()) == dialled  # not even the operator
            row = await w.row(cb.id)
            assert (row.state, row.attempts) == ("pending", 1)
            assert row.last_result == f"uncertain: {citizen} still up"
            assert row.next_attempt_at == w.now.at + timedelta(seconds=SETTINGS.retry_seconds)
            assert w.originator.live_channels() == [operator, citizen]

            # (c) the call is over: the next attempt dials again, and only now
            assert w.originator.hang_up(citizen)
            w.now.at = row.next_attempt_at
            await w.pass_()
            assert citizen_dials(w) == 2
            row = await w.row(cb.id)
            assert (row.state, row.last_result, row.attempts) == ("connected", "answered", 1)
        finally:  # the controller's side first: its Logoff still goes through the hop
            for scheduler in w.schedulers:
                await scheduler.close()
            for client in w.clients:
                await client.close()
            w.schedulers.clear()
            w.clients.clear()
            await cutter.close()


async def test_an_uncertain_callback_waits_while_asterisk_cannot_be_asked(
    db_url: str,  # noqa: F811 - the fixture
) -> None:
    async with world(db_url) as w:
        scheduler = await w.add_node("n1", ["anna"])
        cb = await scheduler.request(phone=PHONE, group="general")
        await w.store.move(cb.id, ("pending",), "pending", T0, last_result="uncertain: lost")
        await w.clients[0].close()  # AMI still down

        assert await w.pass_() == [cb.id]

        row = await w.row(cb.id)
        assert (row.state, row.attempts, row.node) == ("pending", 0, None)
        assert row.last_result is not None
        assert row.last_result.startswith("uncertain: channels not known")
        assert row.next_attempt_at == T0 + timedelta(seconds=SETTINGS.retry_seconds)
        assert w.originator.dialled() == []
        assert w.node.acd.operator("anna").state is OperatorState.READY


async def test_an_operator_leg_left_in_the_callbacks_conference_counts_as_alive(
    db_url: str,  # noqa: F811 - the fixture
) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        ami = w.clients[0]
        cb = await w.scheduler.request(phone=PHONE, group="general")
        other = await w.scheduler.request(phone="79990001122", group="general")
        legs = CallbackLegs(ami, SETTINGS.caller_channel)
        assert await legs.alive(cb) is None

        answered = asyncio.get_running_loop().create_future()
        ami.on("OriginateResponse", lambda event: answered.set_result(event["Channel"]))
        await ami.action(
            "Originate",
            [
                ("Channel", "PJSIP/anna"),
                ("Context", "hotline-callback-operator"),
                ("Exten", "s"),
                ("Variable", f"CALLBACK_BRIDGE=hotline-callback-{cb.id}"),
                ("Async", "true"),
            ],
        )
        operator = await asyncio.wait_for(answered, 5)

        assert await legs.alive(cb) == operator  # in ConfBridge hotline-callback-<id>
        assert await legs.alive(other) is None  # another callback's conference
