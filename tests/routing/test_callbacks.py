"""Callbacks end to end: the real database (SQLite and the CI PostgreSQL), the ACD node, and the
simulator's AMI server playing Asterisk (Originate answered, not answered, busy).

Time for windows, hours and back-off is an injected clock; the ACD runs on a manual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from databases import DATABASE_KINDS, empty_database

from hotline.ami.client import AmiClient
from hotline.clock import ManualClock, SystemClock
from hotline.hours import HoursStatus
from hotline.store.db import create_engine
from hotline.store.migrate import upgrade
from hotline.validators import luhn_check_digit
from pbxsim.ami_accounts import ManagerUser, permission_set
from pbxsim.ami_server import AmiServer
from pbxsim.originator import ScriptedOriginator
from routing.acd import Acd
from routing.callbacks.model import Callback, CallbackRefused, Refusal, window_overlaps_hours
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.callbacks.store import CallbackStore
from routing.groups import Group
from routing.node import AcdNode
from routing.operators import OperatorState
from routing.state import InMemoryAcdStore
from routing.testing import group, op

S = OperatorState
GROUPS = {"general": group("general"), "payments": group("payments")}
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # inside the fake hours (09:00-18:00 UTC)
PHONE = "79161234567"
SETTINGS = CallbackSettings(
    retry_seconds=60.0,
    retry_backoff=2.0,
    max_attempts=3,
    caller_ring_seconds=5.0,
    response_grace_seconds=5.0,
)


# --- the database --------------------------------------------------------------------------


@pytest.fixture(params=DATABASE_KINDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of each kind (on PostgreSQL: a throwaway role and schema)."""
    sqlite_file = tmp_path / "callbacks.sqlite3"
    async with empty_database(request.param, sqlite_file, "hotline_cb") as url:
        await upgrade(url)
        yield url


# --- a world: database, AMI server playing Asterisk, an ACD node, a scheduler ---------------


@dataclass
class Now:
    """The scheduler's clock (UTC wall time), moved by hand."""

    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class WorkingHours:
    """A group open 09:00-18:00 UTC every day (the shape of hotline.hours.OpenHours)."""

    def status(self, at: datetime) -> HoursStatus:
        at = at.astimezone(UTC)
        opens = at.replace(hour=9, minute=0, second=0, microsecond=0)
        closes = at.replace(hour=18, minute=0, second=0, microsecond=0)
        if opens <= at < closes:
            return HoursStatus(True, "workday", False, opens, closes)
        upcoming = opens if at < opens else opens + timedelta(days=1)
        return HoursStatus(False, "workday", False, upcoming, None)


@dataclass
class World:
    store: CallbackStore
    server: AmiServer
    originator: ScriptedOriginator
    now: Now
    nodes: list[AcdNode] = field(default_factory=list)
    schedulers: list[CallbackScheduler] = field(default_factory=list)
    clients: list[AmiClient] = field(default_factory=list)

    @property
    def node(self) -> AcdNode:
        return self.nodes[0]

    @property
    def scheduler(self) -> CallbackScheduler:
        return self.schedulers[0]

    async def add_node(
        self,
        name: str,
        operators: list[str],
        *,
        settings: CallbackSettings = SETTINGS,
        hours: Callable[[Group], WorkingHours | None] | None = None,
    ) -> CallbackScheduler:
        specs = [op(o, general=5 + i, payments=3) for i, o in enumerate(operators)]
        node = AcdNode(Acd(GROUPS, specs, clock=ManualClock()), InMemoryAcdStore(), node_id=name)
        await node.start()
        for o in operators:
            await node.login(o)
        client = AmiClient("127.0.0.1", self.server.port, "ctl", "secret", ping_interval=60)
        await client.connect()
        scheduler = CallbackScheduler(
            self.store, node, client, settings=settings, hours_for=hours, now=self.now
        )
        self.nodes.append(node)
        self.schedulers.append(scheduler)
        self.clients.append(client)
        return scheduler

    async def row(self, callback_id: int) -> Callback:
        row = await self.store.get(callback_id)
        assert row is not None
        return row

    async def final_row(self, callback_id: int) -> Callback:
        """The row once it left every state a call in progress can be in."""
        async with asyncio.timeout(5):
            while (row := await self.row(callback_id)).state in ("dialing", "connected"):  # noqa: ASYNC110 - the row is in the database
                await asyncio.sleep(0.01)
        return row

    async def pass_(self, scheduler: CallbackScheduler | None = None) -> list[int]:
        """One scheduling pass, and the calls it started carried out."""
        scheduler = scheduler or self.scheduler
        claimed = await scheduler.run_due()
        await asyncio.wait_for(scheduler.drain(), 10)
        return claimed


@asynccontextmanager
async def world(db_url: str, **script: list[str]) -> AsyncIterator[World]:
    engine = create_engine(db_url)
    originator = ScriptedOriginator(script=dict(script), talk_seconds=None)
    server = AmiServer(
        clock=SystemClock(),
        # asterisk-conf/manager.conf's classes: what Asterisk 22 lets the controller do
        users={"ctl": ManagerUser("ctl", "secret", write=permission_set("call,originate"))},
        originator=originator,
        port=0,
    )
    originator.sink = server
    await server.start()
    w = World(CallbackStore(engine), server, originator, Now())
    try:
        yield w
    finally:
        for scheduler in w.schedulers:
            await scheduler.close()
        for client in w.clients:
            await client.close()
        await server.close()
        await engine.dispose()


async def eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110 - nothing to await on: the state is the ACD's
            await asyncio.sleep(0.01)


# --- tests ---------------------------------------------------------------------------------


async def test_answered_callback_rings_the_operator_first_then_the_citizen(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna", "boris"])
        cb = await w.scheduler.request(phone="8 (916) 123-45-67", group="general")
        assert cb.phone == PHONE and cb.state == "pending"

        assert await w.pass_() == [cb.id]

        row = await w.row(cb.id)
        assert row.state == "connected" and row.operator == "boris"  # best skill level
        assert row.last_result == "answered" and row.node == "n1"
        assert w.originator.dialled() == ["PJSIP/boris", f"Local/{PHONE}@hotline-callback-out"]
        operator_leg, caller_leg = w.originator.calls
        assert ("CALLBACK_ID", str(cb.id)) in operator_leg.variables
        assert operator_leg.context == "hotline-callback-operator"
        assert caller_leg.context == "hotline-callback-caller"
        assert caller_leg.timeout_ms == 5000
        assert w.node.acd.operator("boris").state is S.TALKING
        # the citizen hangs up: the conference ends the operator's leg, the operator wraps up
        citizen, operator = w.originator.live_channels()[::-1]
        assert w.originator.hang_up(citizen)
        await eventually(lambda: w.node.acd.operator("boris").state is S.WRAP_UP)
        assert w.originator.hung_up == [citizen, operator]
        assert f"callback-{cb.id}" not in w.node.acd.callers
        # and the callback is over, with how long they talked (issue 10, item 6)
        done = await w.final_row(cb.id)
        assert (done.state, done.last_result, done.node) == ("completed", "completed", None)
        assert done.connected_at is not None and done.ended_at is not None
        assert done.connected_at <= done.ended_at
        assert done.as_json()["talk_seconds"] == done.talk_seconds is not None


async def test_operator_hanging_up_first_never_leaves_the_citizen_alone(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        cb = await w.scheduler.request(phone=PHONE, group="general")
        await w.pass_()
        assert (await w.row(cb.id)).state == "connected"
        operator, citizen = w.originator.live_channels()

        # the controller hangs up the operator's leg the way an operator's softphone would,
        # through the simulated PBX: AMI Hangup by channel name
        await w.clients[0].action("Hangup", Channel=operator)

        await eventually(lambda: w.node.acd.operator("anna").state is S.WRAP_UP)
        assert w.originator.hung_up == [operator, citizen]  # end_marked_any kicked the citizen
        assert w.originator.live_channels() == []
        assert (await w.final_row(cb.id)).state == "completed"


async def test_operator_hanging_up_during_the_citizens_ring_calls_them_again(
    db_url: str,
) -> None:
    async with world(db_url) as w:
        w.originator.ring_seconds = 0.2  # each phone rings 0.2 s before it is answered
        w.originator.talk_seconds_for = {"PJSIP/anna": 0.05}  # anna gives up during the ring
        await w.add_node("n1", ["anna"])
        cb = await w.scheduler.request(phone=PHONE, group="general")

        await w.pass_()

        row = await w.row(cb.id)
        assert (row.state, row.attempts, row.last_result) == ("pending", 0, "operator_left")
        assert row.next_attempt_at == T0 + timedelta(seconds=60)
        assert w.node.acd.operator("anna").state is S.READY  # she talked to nobody
        operator, citizen = w.originator.hung_up
        assert operator.startswith("PJSIP/anna") and citizen.startswith(f"Local/{PHONE}")
        assert w.originator.live_channels() == []  # the citizen's leg did not stay open

        w.originator.talk_seconds_for = {}
        w.now.advance(60)
        await w.pass_()
        assert (await w.row(cb.id)).state == "connected"  # the next try reaches them


async def test_citizen_not_answering_is_retried_with_back_off_then_failed(db_url: str) -> None:
    async with world(db_url, **{PHONE: ["no_answer", "busy", "no_answer"]}) as w:
        await w.add_node("n1", ["anna"])
        cb = await w.scheduler.request(phone=PHONE, group="general")

        await w.pass_()
        row = await w.row(cb.id)
        assert (row.state, row.attempts, row.last_result) == ("pending", 1, "no_answer")
        assert row.next_attempt_at == T0 + timedelta(seconds=60)
        assert w.node.acd.operator("anna").state is S.READY  # released, not paused

        w.now.advance(59)
        assert await w.pass_() == []  # back-off not over
        w.now.advance(1)
        await w.pass_()
        row = await w.row(cb.id)
        assert (row.state, row.attempts, row.last_result) == ("pending", 2, "busy")
        assert row.next_attempt_at == w.now.at + timedelta(seconds=120)  # doubled

        w.now.advance(120)
        await w.pass_()
        row = await w.row(cb.id)
        assert (row.state, row.attempts, row.last_result) == ("failed", 3, "no_answer")
        w.now.advance(10_000)
        assert await w.pass_() == []  # a failed callback is never dialled again
        assert w.originator.dialled().count(f"Local/{PHONE}@hotline-callback-out") == 3
        assert w.node.acd.operator("anna").state is S.READY


async def test_operator_not_answering_is_paused_and_the_next_one_calls(db_url: str) -> None:
    async with world(db_url, **{"PJSIP/boris": ["no_answer"]}) as w:
        await w.add_node("n1", ["anna", "boris"])
        cb = await w.scheduler.request(phone=PHONE, group="general")

        await w.pass_()

        assert w.originator.dialled() == [
            "PJSIP/boris",
            "PJSIP/anna",
            f"Local/{PHONE}@hotline-callback-out",
        ]
        boris = w.node.acd.operator("boris")
        assert boris.state is S.PAUSED and boris.pause_reason == "no answer"
        row = await w.row(cb.id)
        assert (row.state, row.operator, row.attempts) == ("connected", "anna", 0)


async def test_window_and_group_hours_are_respected(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"], hours=lambda g: WorkingHours())
        request = w.scheduler.request
        with pytest.raises(CallbackRefused, match="не работают"):
            await request(
                phone=PHONE,
                group="general",
                window_start=T0.replace(hour=19),
                window_end=T0.replace(hour=23),
            )
        # 17:00-19:00: due at 17:00, not before
        cb = await request(
            phone=PHONE,
            group="general",
            window_start=T0.replace(hour=17),
            window_end=T0.replace(hour=19),
        )
        # 17:30-23:00 in another group, but the hours close at 18:00 and nobody calls before
        late = await request(
            phone="79990001122",
            group="payments",
            window_start=T0.replace(hour=17, minute=30),
            window_end=T0.replace(hour=23),
        )
        w.now.at = T0.replace(hour=16, minute=59)
        assert await w.pass_() == []
        w.now.at = T0.replace(hour=17)
        assert await w.pass_() == [cb.id]
        assert (await w.row(cb.id)).state == "connected"
        w.now.at = T0.replace(hour=18, minute=30)  # inside the window, outside the hours
        assert await w.pass_() == []
        w.now.at = T0.replace(hour=23)
        assert await w.pass_() == []
        row = await w.row(late.id)
        assert (row.state, row.last_result) == ("expired", "window_over")
        assert "Local/79990001122@hotline-callback-out" not in w.originator.dialled()


def test_window_overlap_with_hours() -> None:
    hours = WorkingHours()
    day = T0.replace(hour=0)
    assert window_overlaps_hours(hours, day.replace(hour=8), day.replace(hour=9, minute=1))
    assert not window_overlaps_hours(hours, day.replace(hour=8), day.replace(hour=9))
    assert not window_overlaps_hours(hours, day.replace(hour=18), day.replace(hour=23))
    assert window_overlaps_hours(hours, day.replace(hour=17, minute=59), day.replace(hour=23))
    assert window_overlaps_hours(None, day, day + timedelta(minutes=1))


async def test_caller_who_accepts_the_offer_keeps_their_place(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna", "boris"])
        node = w.node
        for o in ("anna", "boris"):
            await node.pause(o, "обед")
        for call in ("c1", "c2", "c3"):
            await node.enqueue(call, "general", number=f"7900000000{call[1]}")
        cb = await w.scheduler.request_from_call("c2", phone="9161234567")
        assert "c2" not in node.acd.callers  # the callback holds the place now
        again = await w.scheduler.request_from_call("c2", phone="9161234567", group="general")
        assert again.id == cb.id  # pressing "1" twice gives one callback

        assert await w.scheduler.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in node.acd.callers)
        assert node.acd.position(f"callback-{cb.id}") == 2  # behind c1, ahead of c3
        assert [o.call_id for o in await node.ready("anna")] == ["c1"]
        assert [o.call_id for o in await node.ready("boris")] == [f"callback-{cb.id}"]
        await asyncio.wait_for(w.scheduler.drain(), 10)

        assert (await w.row(cb.id)).state == "connected"
        assert w.originator.dialled() == ["PJSIP/boris", f"Local/{PHONE}@hotline-callback-out"]
        assert node.acd.callers["c3"].state == "waiting"


async def test_a_caller_who_already_left_the_queue_keeps_their_place(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        node = w.node
        await node.pause("anna", "обед")
        for call in ("c1", "c2", "c3"):
            await node.enqueue(call, "general", number=f"+7900000000{call[1]}")
        await node.abandon("c2")  # the menu's overflow path ended the wait first

        cb = await w.scheduler.request_from_call(
            "c2", phone=PHONE, group="general", caller_number="+79000000002"
        )
        assert await w.scheduler.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in node.acd.callers)
        assert node.acd.position(f"callback-{cb.id}") == 2


async def test_cancel_before_and_while_waiting_for_an_operator(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        first = await w.scheduler.request(phone=PHONE, group="general")
        assert await w.scheduler.cancel(first.id)
        assert not await w.scheduler.cancel(first.id)  # already over
        assert await w.pass_() == []
        assert (await w.row(first.id)).state == "cancelled"

        await w.node.pause("anna", "обед")
        second = await w.scheduler.request(phone=PHONE, group="general")
        assert await w.scheduler.run_due() == [second.id]
        await eventually(lambda: f"callback-{second.id}" in w.node.acd.callers)
        assert await w.scheduler.cancel(second.id)
        await asyncio.wait_for(w.scheduler.drain(), 10)
        assert f"callback-{second.id}" not in w.node.acd.callers  # left the queue
        await w.node.ready("anna")
        assert w.originator.dialled() == []  # nobody was called
        assert w.node.acd.operator("anna").state is S.READY


async def test_ami_link_down_frees_the_operator_and_keeps_the_callback(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await w.add_node("n1", ["anna"])
        await w.clients[0].close()
        cb = await scheduler.request(phone=PHONE, group="general")

        await w.pass_()

        row = await w.row(cb.id)
        assert row.state == "pending" and row.attempts == 0
        assert row.last_result is not None and row.last_result.startswith("ami_error")
        assert row.next_attempt_at == T0 + timedelta(seconds=60)
        assert w.node.acd.operator("anna").state is S.READY  # not blamed with "no answer"


async def test_a_restarted_node_takes_back_what_it_held(db_url: str) -> None:
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        await w.node.pause("anna", "обед")
        cb = await w.scheduler.request(phone=PHONE, group="general")
        assert await w.scheduler.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in w.node.acd.callers)
        await w.scheduler.close()  # the process dies with the callback reserved
        assert (await w.row(cb.id)).state == "reserved"

        assert await w.scheduler.start() == 1
        row = await w.row(cb.id)
        assert row.state == "pending" and row.node is None and row.queue_seq is not None


async def test_a_dead_nodes_callback_is_placed_by_another_node_after_its_lease(
    db_url: str,
) -> None:
    async with world(db_url) as w:
        a = await w.add_node("node-a", ["anna"])
        await w.node.pause("anna", "обед")  # node A holds the callback, waiting for anna
        cb = await a.request(phone=PHONE, group="general")
        assert await a.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in w.nodes[0].acd.callers)
        await a.close()  # node A dies: nothing is written back, and it never restarts
        row = await w.row(cb.id)
        assert (row.state, row.node) == ("reserved", "node-a")

        b = await w.add_node("node-b", ["boris"])
        w.now.advance(SETTINGS.lease_seconds - 1)
        assert await w.pass_(b) == []  # the lease still holds: B leaves it alone
        assert (await w.row(cb.id)).node == "node-a"

        w.now.advance(2)
        assert await w.pass_(b) == [cb.id]
        row = await w.row(cb.id)
        assert (row.state, row.node, row.operator) == ("connected", "node-b", "boris")
        assert row.attempts == 0  # the dead node's attempt is not the citizen's
        assert w.originator.dialled() == ["PJSIP/boris", f"Local/{PHONE}@hotline-callback-out"]


async def test_a_live_nodes_lease_is_never_taken(db_url: str) -> None:
    async with world(db_url) as w:
        a = await w.add_node("node-a", ["anna"])
        b = await w.add_node("node-b", ["boris"])
        await w.nodes[1].pause("boris", "обед")  # B could serve it, were it free to take
        await w.node.pause("anna", "обед")
        cb = await a.request(phone=PHONE, group="general")
        assert await a.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in w.nodes[0].acd.callers)

        for _ in range(5):  # far past one lease in total, renewed by A on every pass
            w.now.advance(SETTINGS.lease_seconds - 1)
            assert await a.run_due() == []
            assert await b.run_due() == []
            row = await w.row(cb.id)
            assert (row.state, row.node) == ("reserved", "node-a")
        assert w.originator.dialled() == []

        await w.node.ready("anna")  # A still owns it: A places it
        await asyncio.wait_for(a.drain(), 10)
        row = await w.row(cb.id)
        assert (row.state, row.node, row.operator) == ("connected", "node-a", "anna")


async def test_a_node_cut_off_past_its_lease_cannot_overwrite_the_new_owner(
    db_url: str,
) -> None:
    async with world(db_url) as w:
        a = await w.add_node("node-a", ["anna"])
        await w.node.pause("anna", "обед")
        cb = await a.request(phone=PHONE, group="general")
        assert await a.run_due() == [cb.id]
        await eventually(lambda: f"callback-{cb.id}" in w.nodes[0].acd.callers)
        b = await w.add_node("node-b", ["boris"])
        await w.nodes[1].pause("boris", "обед")
        w.now.advance(SETTINGS.lease_seconds + 1)  # A did not renew (cut off from the database)
        assert await b.run_due() == [cb.id]
        assert (await w.row(cb.id)).node == "node-b"

        await w.node.ready("anna")  # A comes back and tries to go on with it
        await asyncio.wait_for(a.drain(), 10)
        row = await w.row(cb.id)
        assert (row.state, row.node) == ("reserved", "node-b")  # A's moves did not apply
        assert PHONE not in " ".join(w.originator.dialled())


def test_a_lease_shorter_than_the_poll_is_refused() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        CallbackSettings(poll_seconds=5.0, lease_seconds=5.0)


@pytest.mark.parametrize("rounds", [3])
async def test_two_schedulers_racing_call_each_citizen_once(db_url: str, rounds: int) -> None:
    async with world(db_url) as w:
        racing = CallbackSettings(**{**SETTINGS.__dict__, "max_in_flight": 30})
        a = await w.add_node("node-a", [f"a{i}" for i in range(20)], settings=racing)
        b = await w.add_node("node-b", [f"b{i}" for i in range(20)], settings=racing)
        phones = [f"7916000{i:04d}" for i in range(20)]
        ids = [(await a.request(phone=p, group="general")).id for p in phones]

        attempts: list[bool] = []
        claim = w.store.claim

        async def counted_claim(
            callback_id: int, node: str, now: datetime, lease: timedelta = timedelta(minutes=1)
        ) -> bool:
            won = await claim(callback_id, node, now, lease)
            attempts.append(won)
            return won

        w.store.claim = counted_claim  # type: ignore[method-assign]
        claimed: list[list[int]] = [[], []]
        for _ in range(rounds):
            got_a, got_b = await asyncio.gather(a.run_due(), b.run_due())
            claimed[0] += got_a
            claimed[1] += got_b
        await asyncio.wait_for(asyncio.gather(a.drain(), b.drain()), 20)

        assert not set(claimed[0]) & set(claimed[1])
        assert attempts.count(False) > 0, "the nodes never competed for the same row"
        assert sorted(claimed[0] + claimed[1]) == sorted(ids)
        dialled = w.originator.dialled()
        for phone in phones:
            assert dialled.count(f"Local/{phone}@hotline-callback-out") == 1
        for callback_id in ids:
            assert (await w.row(callback_id)).state == "connected"


async def test_requests_that_cannot_be_accepted(db_url: str) -> None:
    async with world(db_url) as w:
        scheduler = await w.add_node("n1", ["anna"])
        request = scheduler.request
        cases: list[tuple[dict[str, Any], str]] = [
            ({"phone": "12345"}, "Неверный номер телефона"),
            ({"phone": "+7 916 123 45 67; DROP"}, "Неверный номер телефона"),
            ({"group": "nope"}, "Неизвестная группа"),
            ({"application_id": "1234567890"}, "Номер заявления"),
            ({"window_start": datetime(2026, 12, 1, 12, 0)}, "часовым поясом"),
            ({"window_end": T0 - timedelta(minutes=1)}, "раньше его конца"),
            (
                {"window_start": T0 - timedelta(hours=2), "window_end": T0},
                "уже прошло",
            ),
            ({"window_start": T0 + timedelta(days=30)}, "не более чем на 14 дней"),
        ]
        for overrides, message in cases:
            args = {"phone": PHONE, "group": "general", **overrides}
            with pytest.raises(CallbackRefused, match=message):
                await request(**args)
        valid_application = "123456789" + str(luhn_check_digit("123456789"))
        ok = await request(phone=PHONE, group="general", application_id=valid_application)
        assert ok.application_id == valid_application
        with pytest.raises(CallbackRefused, match="уже заказан") as dup:
            await request(phone="89161234567", group="general")
        assert dup.value.why is Refusal.DUPLICATE
        assert str(ok.id) not in str(dup.value) and ok.public_id not in str(dup.value)


async def test_a_node_gone_while_dialling_leaves_its_callbacks_uncertain(db_url: str) -> None:
    """A node that dies or restarts while it dials may leave a call up on the PBX: what it
    held in `dialing` comes back uncertain (the next attempt first checks no leg of it is
    alive); what it only had reserved comes back as before."""
    async with world(db_url) as w:
        await w.add_node("n1", ["anna"])
        at = w.now()
        dialled = await w.scheduler.request(phone=PHONE, group="general")
        reserved = await w.scheduler.request(phone="79161112233", group="general")
        for row, state in ((dialled, "dialing"), (reserved, "reserved")):
            assert await w.store.claim(row.id, "n-dead", at, timedelta(seconds=30))
            assert await w.store.move(row.id, ("reserved",), state, at)
        assert await w.store.take_back_expired(at + timedelta(seconds=31)) == 2
        assert (await w.row(dialled.id)).last_result == "uncertain: node lost while dialling"
        assert (await w.row(reserved.id)).last_result == "node_lost"

        for row, state in ((dialled, "dialing"), (reserved, "reserved")):
            assert await w.store.claim(row.id, "n1", at, timedelta(seconds=30))
            assert await w.store.move(row.id, ("reserved",), state, at, last_result="kept")
        assert await w.store.release_node("n1", at) == 2
        assert (await w.row(dialled.id)).last_result == "uncertain: node restarted while dialling"
        kept = await w.row(reserved.id)
        assert (kept.state, kept.last_result, kept.node) == ("pending", "kept", None)
