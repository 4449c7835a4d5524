"""The supervisors' wallboard: who may see it and listen, the board pushed on ACD events
(never polled), today's figures against their targets, the alarms, and listen/whisper/barge
as AMI Originates of ChanSpy to the simulated PBX, each audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from people import as_user, guarded_app, sqlite_audit

from controller.supervision_ports import AcdFloor, ami_alarm, start_supervision
from hotline.ami.client import AmiClient
from hotline.audit import AuditLog
from hotline.clock import SystemClock
from pbxsim.ami_accounts import ManagerUser, permission_set
from pbxsim.ami_server import AmiServer
from pbxsim.model import ChannelState, SimChannel
from pbxsim.originator import ScriptedOriginator
from routing.part import AcdService
from routing.settings import RoutingSettings
from routing.testing import group, memory_node, op
from supervision.board import Board
from supervision.floor import QueueNow
from supervision.part import SupervisionService
from supervision.targets import FloorTargets

CALL = "1795563300.7"
STAFF = {"anna": "operator", "orlova": "supervisor", "sysadmin": "admin", "kozlova": "supervisor"}
OPERATOR_CHANNEL = "PJSIP/anna-0000000a"
OPERATOR_UNIQUEID = "1795563300.8"


@dataclass
class Rig:
    client: TestClient[web.Request, web.Application]
    acd: AcdService
    supervision: SupervisionService
    audit: AuditLog
    pbx: AmiServer
    phones: ScriptedOriginator
    ami: list[AmiClient | None]


# asterisk-conf/manager.conf's account: what Asterisk 22 lets it do is what listening may use
SHIPPED_AMI_USER = ManagerUser("ctl", "s", write=permission_set("call,originate"))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    phones = ScriptedOriginator()
    pbx = AmiServer(clock=SystemClock(), users={"ctl": SHIPPED_AMI_USER}, port=0, originator=phones)
    phones.sink = pbx
    await pbx.start()
    ami = AmiClient("127.0.0.1", pbx.port, "ctl", "s", ping_interval=60)
    await ami.connect()
    groups = {"general": group("general", name="Общие вопросы"), "night": group("night")}
    # orlova is a supervisor with a seat in the operators file (no skill she is logged into)
    specs = [op("anna", general=5), op("orlova", night=1)]
    node = memory_node(groups, specs)
    await node.start()
    acd = AcdService(RoutingSettings(), node, {s.id: s for s in specs})
    link: list[AmiClient | None] = [ami]
    app = guarded_app(STAFF)
    async with sqlite_audit(tmp_path) as audit:
        supervision = start_supervision(acd, audit, app, lambda: link[0], ami_enabled=True)
        supervision.start()
        async with TestClient(TestServer(app), headers=as_user("orlova")) as client:
            yield Rig(client, acd, supervision, audit, pbx, phones, link)
        await supervision.stop()
    await ami.close()
    await pbx.close()


async def next_board(stream: Any, want: Any = lambda board: True) -> dict[str, Any]:
    """The next pushed board satisfying `want` (the limit only turns a hang into a failure)."""
    async with asyncio.timeout(20):
        while True:
            line = (await stream.content.readline()).decode()
            if line.startswith("data: "):
                board = json.loads(line.removeprefix("data: "))
                if want(board):
                    return board


def queue(board: dict[str, Any], group_id: str) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["group"] == group_id)


def operator(board: dict[str, Any], op_id: str) -> dict[str, Any]:
    return next(o for o in board["operators"] if o["id"] == op_id)


async def talking(rig: Rig) -> None:
    await rig.acd.node.login("anna")
    await rig.acd.node.enqueue(CALL, "general", number="79035550011", data={})
    await rig.acd.node.answer(CALL)


async def test_only_supervisors_and_admins_see_the_wallboard(rig: Rig) -> None:
    anonymous = {"Authorization": ""}
    for path in ("/supervisor/wallboard", "/supervisor/wallboard/events"):
        assert (await rig.client.get(path, headers=anonymous)).status == 401
        assert (await rig.client.get(path, headers=as_user("anna"))).status == 403
    page = await rig.client.get("/supervisor/wallboard", headers=as_user("sysadmin"))
    assert page.status == 200 and "Табло руководителя смены" in await page.text()
    page = await rig.client.get("/supervisor/wallboard")
    assert page.status == 200 and "Табло руководителя смены" in await page.text()
    for mode in ("listen", "whisper", "barge"):
        url = f"/api/supervisor/calls/{CALL}/{mode}"
        assert (await rig.client.post(url, headers=anonymous)).status == 401
        assert (await rig.client.post(url, headers=as_user("anna"))).status == 403
        assert (await rig.client.post(url, headers=as_user("sysadmin"))).status == 403
    assert rig.phones.calls == []
    assert (await rig.client.get("/supervisor/static/wallboard.js")).status == 200
    assert (await rig.client.get("/supervisor/static/..%2fhttp.py")).status == 404


async def test_every_acd_event_pushes_the_board_without_asking(rig: Rig) -> None:
    await rig.supervision.stop()  # no tick: each board below is pushed by the ACD's event
    async with rig.client.get("/supervisor/wallboard/events") as stream:
        first = await next_board(stream)
        assert operator(first, "anna")["state"] == "logged_out"
        assert queue(first, "general")["waiting"] == 0
        await rig.acd.node.enqueue(CALL, "general", number="79035550011", data={})
        await rig.acd.node.login("anna")  # an operator move: the caller is offered to her
        ringing = await next_board(stream, lambda b: operator(b, "anna")["state"] == "ringing")
        assert queue(ringing, "general")["states"]["ringing"] == 1
        await rig.acd.node.answer(CALL)
        board = await next_board(stream, lambda b: operator(b, "anna")["state"] == "talking")
        assert operator(board, "anna")["call_id"] == CALL
        assert board["today"]["answered"] == 1
        await rig.acd.node.end_call(CALL)
        await rig.acd.node.pause("anna", "обед")
        paused = await next_board(stream, lambda b: operator(b, "anna")["state"] == "paused")
        assert queue(paused, "general")["pause_reasons"] == {"обед": 1}


async def test_alarms_show_the_ami_link_down_and_an_open_group_nobody_staffs(rig: Rig) -> None:
    async with rig.client.get("/supervisor/wallboard/events") as stream:
        board = await next_board(stream)
        kinds = [a["kind"] for a in board["alarms"]]
        assert "ami_down" not in kinds
        assert kinds.count("unstaffed") == 2  # both groups open, nobody logged in
        await rig.acd.node.login("anna")
        board = await next_board(stream, lambda b: len(b["alarms"]) == 1)
        assert "«night»" in board["alarms"][0]["text"]
        await rig.pbx.close()  # the PBX goes away: the tick shows it within a second
        board = await next_board(stream, lambda b: "ami_down" in [a["kind"] for a in b["alarms"]])
        assert any("Нет связи с АТС" in a["text"] for a in board["alarms"])


def test_the_ami_alarm_is_raised_while_there_is_no_link() -> None:
    assert [a.kind for a in ami_alarm(lambda: None)()] == ["ami_down"]


class FixedFloor:
    def __init__(self) -> None:
        self.answered, self.within, self.wait, self.abandoned = 4, 3, 60.0, 1

    def queues(self) -> list[QueueNow]:
        return [
            QueueNow(
                "general", "Общие", True, 2, 35.0, 50.0, 1, offered=5,
                answered=self.answered, abandoned=self.abandoned,
                answered_within_sl=self.within, answer_wait_total=self.wait,
            )
        ]  # fmt: skip

    def operators(self) -> list[Any]:
        return []


def test_todays_figures_stand_beside_their_targets_and_start_again_at_midnight() -> None:
    floor, day = FixedFloor(), [dt.date(2026, 12, 5)]
    board = Board(floor, lambda: FloorTargets(asa_seconds=20.0), today=lambda: day[0])
    figures = board.build()["queues"][0]["today"]
    assert (figures["answered"], figures["abandoned"]) == (4, 1)
    assert figures["asa"] == 15.0 and figures["asa_ok"] is True  # 60 s over 4 answers
    assert figures["service_level"] == 0.75 and figures["service_level_ok"] is False  # < 80 %
    assert figures["abandon_rate"] == 0.2 and figures["abandon_rate_ok"] is False
    strict = Board(floor, lambda: FloorTargets(asa_seconds=10.0), today=lambda: day[0])
    assert strict.build()["today"]["asa_ok"] is False  # the targets come through the port
    day[0] = dt.date(2026, 12, 6)  # midnight: the counters go on, the day starts at zero
    assert board.build()["today"]["answered"] == 0
    floor.answered, floor.within, floor.wait = 5, 4, 70.0
    after = board.build()["today"]
    assert (after["answered"], after["asa"], after["service_level"]) == (1, 10.0, 1.0)
    assert after["asa_ok"] is True


async def test_listen_whisper_and_barge_ring_the_supervisors_phone_into_chanspy(rig: Rig) -> None:
    await talking(rig)
    rig.pbx.emit("Newchannel", operator_channel().headers())  # the operator's leg, up
    for mode, options in (("listen", "qEu"), ("whisper", "qwEu"), ("barge", "qBEu")):
        reply = await rig.client.post(f"/api/supervisor/calls/{CALL}/{mode}")
        assert reply.status == 202, await reply.text()
        assert "PJSIP/orlova" in (await reply.json())["message"]
        originate = rig.phones.calls[-1]
        assert originate.channel == "PJSIP/orlova"  # the supervisor's own seat
        assert (originate.application, originate.data) == (
            "ChanSpy",
            f"{OPERATOR_UNIQUEID},{options}",
        )
    entries = await rig.audit.entries()
    assert [(e.user_id, e.action, e.outcome) for e in entries] == [
        ("orlova", "supervisor.listen", "accepted"),
        ("orlova", "supervisor.whisper", "accepted"),
        ("orlova", "supervisor.barge", "accepted"),
    ]
    detail = json.loads(entries[0].detail)
    assert (detail["call"], detail["operator"], detail["channel"]) == (
        CALL,
        "anna",
        OPERATOR_CHANNEL,
    )


def operator_channel() -> SimChannel:
    return SimChannel(
        name=OPERATOR_CHANNEL,
        uniqueid=OPERATOR_UNIQUEID,
        linkedid="1795563300.7",
        context="operators",
        exten="88001000001",
        state=ChannelState.UP,
    )


async def test_listening_is_refused_clearly_and_leaves_nothing_behind(rig: Rig) -> None:
    url = f"/api/supervisor/calls/{CALL}/listen"
    gone = await rig.client.post(url)
    assert gone.status == 404 and "Такого разговора" in (await gone.json())["error"]
    await talking(rig)
    no_channel = await rig.client.post(url)  # the PBX has no channel of anna's seat up
    assert no_channel.status == 409 and "Канал оператора" in (await no_channel.json())["error"]
    no_phone = await rig.client.post(url, headers=as_user("kozlova"))  # no seat of her own
    assert no_phone.status == 409
    assert "не закреплён телефон" in (await no_phone.json())["error"]
    rig.ami[0] = None
    down = await rig.client.post(url)
    assert down.status == 503 and "Нет связи с АТС" in (await down.json())["error"]
    assert rig.phones.calls == [] and await rig.audit.entries() == []


def test_the_floor_reads_the_acd_as_it_is() -> None:
    node = memory_node({"general": group("general", name="Общие")}, [op("anna", general=5)])
    floor = AcdFloor(AcdService(RoutingSettings(), node, {}))
    (row,) = floor.queues()
    assert (row.group, row.name, row.open, row.logged_in, row.expected_wait) == (
        "general", "Общие", True, 0, None,
    )  # fmt: skip
    assert [(o.id, o.state, o.groups) for o in floor.operators()] == [
        ("anna", "logged_out", ("general",))
    ]
    assert floor.device("anna") == "PJSIP/anna" and floor.device("nobody") is None


async def test_a_wallboard_opened_meanwhile_does_not_hold_the_others_back(rig: Rig) -> None:
    await rig.supervision.stop()
    wallboard = rig.supervision.wallboard
    with wallboard.subscribe() as first:
        assert b'"state":"logged_out"' in first.get_nowait()
        wallboard.push()
        first.get_nowait()
        rig.acd.node.acd.login("anna")  # moved behind the listeners' back (no event)
        with wallboard.subscribe() as second:  # the newcomer starts with the new board
            assert b'"state":"ready"' in second.get_nowait()
            wallboard.push(only_if_changed=True)  # the tick: the others get it too
            assert b'"state":"ready"' in first.get_nowait()


def test_the_recorders_storage_and_spool_alarms_reach_the_board() -> None:
    from types import SimpleNamespace

    from controller.supervision_ports import recorder_alarms

    worker = SimpleNamespace(
        storage_alarm=SimpleNamespace(active=True), spool_alarm=SimpleNamespace(active=False)
    )
    recordings: Any = SimpleNamespace(recorder=worker)
    assert [a.kind for a in recorder_alarms(recordings)()] == ["recorder_storage"]
    worker.spool_alarm.active, worker.storage_alarm.active = True, False
    assert [a.text for a in recorder_alarms(recordings)()] == ["Мало места для записей разговоров."]
    recordings.recorder = None  # a separate recorder process: its alarms are its own
    assert recorder_alarms(recordings)() == []
