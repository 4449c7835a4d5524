"""The ACD admin API and hand edits of its files, on real sockets, a real SQLite audit log and
copies of the shipped dialplans."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.access import BearerTokens, access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor, TokenBook
from hotline.store.migrate import upgrade
from ivr.menu.library import menu_files
from routing.admin.http import add_admin_routes
from routing.admin.service import AcdAdmin
from routing.groups import load_groups
from routing.operators import load_operators
from routing.part import AcdService
from routing.settings import RoutingSettings

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
ADMIN = {"Authorization": "Bearer admin-token"}
SUPERVISOR = {"Authorization": "Bearer supervisor-token"}
TOKENS = TokenBook.of(
    {
        "admin-token": Actor("sysadmin", "admin"),
        "supervisor-token": Actor("smirnova", "supervisor"),
        "operator-token": Actor("ivanova", "operator"),
    }
)
PENSIONS = {
    "name": "Пенсии",
    "schedule": "round-the-clock",
    "wrap_up_seconds": 10,
    "ring_seconds": 15,
    "max_wait_seconds": 300,
    "widen_after_seconds": 60,
    "widen_to": ["general"],
    "overflow_group": "general",
}


@dataclass
class Env:
    client: TestClient[web.Request, web.Application]
    service: AcdService
    admin: AcdAdmin
    audit: AuditLog
    files: Path

    @property
    def groups_file(self) -> Path:
        return self.files / "groups.yaml"

    @property
    def operators_file(self) -> Path:
        return self.files / "operators.yaml"

    async def put(self, url: str, body: Any, headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
        async with self.client.put(url, json=body, headers=headers) as reply:
            return reply.status, await reply.json()

    async def get(self, url: str, headers: dict[str, str] = SUPERVISOR) -> tuple[int, Any]:
        async with self.client.get(url, headers=headers) as reply:
            return reply.status, await reply.json()

    async def delete(self, url: str, headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
        async with self.client.delete(url, headers=headers) as reply:
            return reply.status, await reply.json()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    files = tmp_path / "dialplans"
    shutil.copytree(DIALPLANS, files)
    settings = RoutingSettings(
        groups_file=str(files / "groups.yaml"),
        operators_file=str(files / "operators.yaml"),
        schedules_dir=str(files),
        reload_interval=0,
        node_id="admin-test",
    )
    # Open round the clock whatever the hour the test runs at; schedules are tested apart.
    service = AcdService.build(settings, is_open=lambda group, now: True)
    await service.start(metrics=False)
    url = f"sqlite+aiosqlite:///{tmp_path}/audit.sqlite3"
    await upgrade(url)
    from hotline.store.db import create_engine

    engine = create_engine(url)
    audit = AuditLog(engine)
    admin = AcdAdmin.for_service(
        service,
        versions_dir=tmp_path / "versions",
        menu_files=lambda: menu_files(files),
        audit=audit,
    )
    app = web.Application(middlewares=[access_middleware(BearerTokens(TOKENS))])
    add_admin_routes(app, admin)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Env(client, service, admin, audit, files)
    finally:
        await service.stop()
        await engine.dispose()


async def test_a_new_group_and_skill_route_the_next_caller_to_that_operator(env: Env) -> None:
    status, group = await env.put("/api/groups/pensions", PENSIONS)
    assert status == 200 and group["name"] == "Пенсии" and group["skilled"] == {}
    status, spec = await env.put("/api/operators/fedorov/skills", {"pensions": 7, "general": 4})
    assert (status, spec["skills"]) == (200, {"pensions": 7, "general": 4})
    node = env.service.node
    await node.login("fedorov")
    offers = await node.enqueue("c1", "pensions", number="+79160000001")
    assert [(o.operator_id, o.group) for o in offers] == [("fedorov", "pensions")]
    # the files say the same, other entries keep their comments, the audit log names who
    text = env.groups_file.read_text(encoding="utf-8")
    assert text.startswith("# Operator skill groups of the hotline.")
    assert load_groups(env.groups_file)["pensions"].widen_to == ("general",)
    assert load_operators(env.operators_file)["fedorov"].skills == {"pensions": 7, "general": 4}
    assert "# Example operators." in env.operators_file.read_text(encoding="utf-8")
    entries = await env.audit.entries()
    assert [(e.user_id, e.action) for e in entries] == [
        ("sysadmin", "acd.group.put"),
        ("sysadmin", "acd.operator.skills"),
    ]
    status, shown = await env.get("/api/groups/pensions")
    assert (status, shown["skilled"]) == (200, {"fedorov": 7})
    assert (env.files.parent / "versions" / "groups" / "index.json").is_file()


async def test_a_voice_message_deadline_is_set_shown_and_kept_in_the_file(env: Env) -> None:
    status, group = await env.put(
        "/api/groups/pensions", {**PENSIONS, "message_deadline_minutes": 15}
    )
    assert (status, group["message_deadline_minutes"]) == (200, 15)
    assert load_groups(env.groups_file)["pensions"].message_deadline_minutes == 15
    assert env.service.node.acd.groups["pensions"].message_deadline_minutes == 15
    status, shown = await env.get("/api/groups/emergency")
    assert (status, shown["message_deadline_minutes"]) == (200, 10)  # the shipped file's


async def test_a_waiting_caller_and_a_talking_operator_survive_edits(env: Env) -> None:
    node = env.service.node
    await node.login("ivanova")
    await node.enqueue("talking", "general")
    await node.answer("talking")
    await node.enqueue("waiting", "general")  # ivanova is busy; nobody else is logged in
    changed = {**_group_body("general"), "max_wait_seconds": 900, "ring_seconds": 25}
    status, _ = await env.put("/api/groups/general", changed)
    assert status == 200
    assert node.acd.groups["general"].max_wait_seconds == 900
    assert node.acd.callers["waiting"].state == "waiting"
    assert node.acd.position("waiting") == 1
    # ivanova loses the general skill in the middle of her call: the call goes on
    status, _ = await env.put("/api/operators/ivanova/skills", {"documents": 4})
    assert status == 200
    assert node.acd.callers["talking"].state == "talking"
    assert node.acd.operators["ivanova"].state.value == "talking"
    await node.end_call("talking")
    offers = await node.wrap_up_done("ivanova")
    assert offers == []  # the new skills count from the next offer: no general callers
    assert node.acd.callers["waiting"].state == "waiting"
    await node.login("morozova")  # general 7
    assert node.acd.callers["waiting"].operator == "morozova"


def _group_body(group_id: str) -> dict[str, Any]:
    group = load_groups(DIALPLANS / "groups.yaml")[group_id]
    body: dict[str, Any] = {
        "name": group.name,
        "schedule": group.schedule,
        "wrap_up_seconds": group.wrap_up_seconds,
        "ring_seconds": group.ring_seconds,
        "max_wait_seconds": group.max_wait_seconds,
        "widen_after_seconds": group.widen_after_seconds,
    }
    if group.widen_to:
        body["widen_to"] = list(group.widen_to)
    if group.overflow_group:
        body["overflow_group"] = group.overflow_group
    if group.message_deadline_minutes is not None:
        body["message_deadline_minutes"] = group.message_deadline_minutes
    return body


async def test_a_group_still_in_use_cannot_be_deleted(env: Env) -> None:
    before = env.groups_file.read_bytes()
    status, reply = await env.delete("/api/groups/application-status")
    assert status == 409 and "навык" in reply["error"]  # ivanova and fedorov have it
    await env.put("/api/operators/kuznetsov/skills", {"tech1": 6})  # tech2 has no one now
    status, reply = await env.delete("/api/groups/tech2")
    assert status == 409 and reply["where"] == "groups.tech1.widen_to"
    await env.put("/api/groups/temp", {**PENSIONS, "widen_to": []})
    await env.service.node.enqueue("c1", "temp")
    status, reply = await env.delete("/api/groups/temp")
    assert status == 409 and "абоненты" in reply["error"]
    await env.service.node.abandon("c1")
    status, _ = await env.delete("/api/groups/temp")
    assert status == 200 and "temp" not in load_groups(env.groups_file)
    assert "temp" not in env.service.node.acd.groups
    status, reply = await env.delete("/api/groups/temp")
    assert status == 404
    # a menu sends callers to `payments` (88001000001.yaml): emptied of skills it still stays
    for op_id in ("sidorova", "volkov"):
        skills = {k: v for k, v in env.admin.operators[op_id].skills.items() if k != "payments"}
        await env.put(f"/api/operators/{op_id}/skills", skills)
    for other in ("business",):
        body = {**_group_body(other), "widen_to": ["documents"]}
        await env.put(f"/api/groups/{other}", body)
    body = {**_group_body("payments")}
    status, reply = await env.delete("/api/groups/payments")
    assert status == 409 and reply["where"].startswith(str(env.files / "8800"))
    assert env.groups_file.read_bytes() != before  # (the edits above were accepted)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({**PENSIONS, "ring_seconds": "пятнадцать"}, "ring_seconds"),
        ({**PENSIONS, "ring_seconds": 0}, "ring_seconds"),
        ({**PENSIONS, "max_wait_seconds": True}, "max_wait_seconds"),
        ({**PENSIONS, "widen_to": ["nowhere"]}, "widen_to"),
        ({**PENSIONS, "widen_to": "general"}, "widen_to"),
        ({**PENSIONS, "overflow_group": {"a": 1}}, "overflow_group"),
        ({**PENSIONS, "message_deadline_minutes": 0}, "message_deadline_minutes"),
        ({**PENSIONS, "message_deadline_minutes": "скоро"}, "message_deadline_minutes"),
        ({**PENSIONS, "name": "две\nстроки"}, "name"),
        ({**PENSIONS, "name": "x" * 500}, "name"),
        ({**PENSIONS, "name": 'a"\n  hacked: 1\n#'}, "name"),
        ({**PENSIONS, "schedule": "../../etc/passwd"}, "schedule"),
        ({**PENSIONS, "colour": "red"}, "colour"),
        (
            {"name": "Пенсии"},
            "max_wait_seconds, ring_seconds, schedule, widen_after_seconds, wrap_up_seconds",
        ),
    ],
)
async def test_invalid_groups_are_refused_with_the_field_and_nothing_written(
    env: Env, body: dict[str, Any], where: str
) -> None:
    before = env.groups_file.read_bytes()
    status, reply = await env.put("/api/groups/pensions", body)
    assert (status, reply["where"]) == (422, where), reply
    assert reply["error"].startswith("Группа")
    assert env.groups_file.read_bytes() == before
    assert "pensions" not in env.service.node.acd.groups


async def test_hostile_ids_and_bodies_are_refused(env: Env) -> None:
    before = env.groups_file.read_bytes()
    status, reply = await env.put("/api/groups/Evil%20Id", PENSIONS)
    assert (status, reply["where"]) == (422, "id")
    status, reply = await env.put("/api/groups/..%2Fetc", PENSIONS)
    assert status in (404, 422)
    async with env.client.put("/api/groups/x", data=b"\xff[", headers=ADMIN) as raw:
        assert raw.status == 400 and (await raw.json())["where"] == "body"
    status, reply = await env.put("/api/groups/x", [1, 2])
    assert status == 400
    nested: Any = 1
    for _ in range(50):
        nested = [nested]
    status, reply = await env.put("/api/groups/x", {**PENSIONS, "widen_to": nested})
    assert status == 400
    deep = b'{"widen_to": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    async with env.client.put("/api/groups/x", data=deep, headers=ADMIN) as raw:
        assert raw.status == 400 and "вложенность" in (await raw.json())["error"]
    assert env.groups_file.read_bytes() == before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "Новиков", "device": "PJSIP/1009", "skills": {"general": 11}}, "skills"),
        ({"name": "Новиков", "device": "PJSIP/1009", "skills": {"general": 0}}, "skills"),
        ({"name": "Новиков", "device": "PJSIP/1009", "skills": {"nowhere": 3}}, "skills"),
        ({"name": "Новиков", "device": "PJSIP/1009", "skills": {}}, "skills"),
        ({"name": "Новиков", "device": "PJSIP/1001", "skills": {"general": 3}}, "device"),
        ({"name": ["a"], "device": "PJSIP/1009", "skills": {"general": 3}}, "name"),
    ],
)
async def test_invalid_operators_are_refused_with_the_field(
    env: Env, body: dict[str, Any], where: str
) -> None:
    before = env.operators_file.read_bytes()
    status, reply = await env.put("/api/operators/novikov", body)
    assert (status, reply["where"]) == (422, where), reply
    assert env.operators_file.read_bytes() == before
    assert "novikov" not in env.service.node.acd.operators


@pytest.mark.parametrize(
    "device",
    [
        "SIP/1 2; rm",
        "Local/78095050000@hotline-callback-out",
        "PJSIP/1009@evil.example",
        "PJSIP/1009&PJSIP/1010",
        "PJSIP/1009,30,D(1)",
        "PJSIP/1009/sip:78095050000@trunk",
        "PJSIP/",
        "pjsip/1009",
    ],
)
async def test_a_device_other_than_a_pjsip_seat_is_a_bad_request(env: Env, device: str) -> None:
    before = env.operators_file.read_bytes()
    body = {"name": "Новиков", "device": device, "skills": {"general": 3}}
    status, reply = await env.put("/api/operators/novikov", body)
    assert (status, reply["where"]) == (400, "device"), reply
    assert "PJSIP/1001" in reply["error"]  # the message shows what is accepted
    assert env.operators_file.read_bytes() == before
    assert "novikov" not in env.service.node.acd.operators


async def test_operators_are_added_edited_and_deleted_only_when_logged_out(env: Env) -> None:
    body = {"name": "Новиков Павел", "device": "PJSIP/1009", "skills": {"general": 5}}
    status, spec = await env.put("/api/operators/novikov", body)
    assert (status, spec["device"]) == (200, "PJSIP/1009")
    node = env.service.node
    await node.login("novikov")
    assert env.service.operators["novikov"].name == "Новиков Павел"
    status, reply = await env.delete("/api/operators/novikov")
    assert status == 409 and reply["where"] == "state"
    await node.logout("novikov")
    status, _ = await env.delete("/api/operators/novikov")
    assert status == 200 and "novikov" not in load_operators(env.operators_file)
    assert "novikov" not in node.acd.operators
    assert (await env.put("/api/operators/novikov/skills", {"general": 1}))[0] == 404


async def test_edits_need_an_admin_or_supervisor_token(env: Env) -> None:
    before = env.groups_file.read_bytes()
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
        ({"Authorization": "Bearer operator-token"}, 403),
    ):
        got, reply = await env.put("/api/groups/pensions", PENSIONS, headers)
        assert got == status and reply["error"]  # the access middleware's answer
        assert (await env.get("/api/groups", headers))[0] == status
        assert (await env.delete("/api/operators/ivanova", headers))[0] == status
    assert env.groups_file.read_bytes() == before
    assert (await env.put("/api/groups/pensions", PENSIONS, SUPERVISOR))[0] == 200
    assert [e.user_id for e in await env.audit.entries()] == ["smirnova"]


async def test_concurrent_puts_leave_a_file_that_parses_last_writer_wins(env: Env) -> None:
    names = [f"Пенсии {n}" for n in range(12)]
    puts = [env.put("/api/groups/pensions", {**PENSIONS, "name": name}) for name in names]
    puts += [env.put(f"/api/groups/extra{n}", PENSIONS) for n in range(6)]
    replies = await asyncio.gather(*puts)
    assert all(status == 200 for status, _ in replies)
    groups = load_groups(env.groups_file)
    assert groups["pensions"].name in names
    assert groups["pensions"] == env.service.node.acd.groups["pensions"]
    assert {f"extra{n}" for n in range(6)} <= groups.keys()
    assert len(groups) == len(load_groups(DIALPLANS / "groups.yaml")) + 7


async def test_a_broken_hand_edit_is_refused_and_the_last_good_version_stays(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    good = env.groups_file.read_text(encoding="utf-8")
    env.groups_file.write_text(good.replace("ring_seconds: 20", "ring_seconds: [20"), "utf-8")
    assert await env.admin.check() == []
    assert env.admin.health() == "stale"
    assert f"{env.groups_file}:" in caplog.text and "last good version" in caplog.text
    assert env.service.node.acd.groups["tech2"].ring_seconds == 20
    # an API edit starts from the file on disk: it names the broken line
    status, reply = await env.put("/api/groups/pensions", PENSIONS)
    assert status == 422 and reply["where"].startswith(f"{env.groups_file}:")
    env.groups_file.write_text(good.replace("ring_seconds: 20", "ring_seconds: 30"), "utf-8")
    assert await env.admin.check() == [str(env.groups_file)]
    assert env.admin.health() == "ok"
    assert env.service.node.acd.groups["tech2"].ring_seconds == 30


async def test_a_hand_edit_that_strands_a_skill_is_refused(env: Env) -> None:
    text = env.groups_file.read_text(encoding="utf-8")
    start = text.index("  tech2:")
    end = text.index("  application-status:")
    cut = text[:start] + text[end:]
    env.groups_file.write_text(cut.replace("widen_to: [tech2]", "widen_to: [general]"), "utf-8")
    assert await env.admin.check() == []
    assert "tech2" in env.service.node.acd.groups  # kuznetsov still has it as a skill


async def test_schedules_are_read_validated_and_written(env: Env) -> None:
    status, hours = await env.get("/api/schedules/hours")
    assert status == 200 and hours["hours"]["workday"] == "08:00-20:00"
    assert "general" in hours["groups"]
    before = (env.files / "hours.yaml").read_bytes()
    bad = {"hours": {**hours["hours"], "workday": "25:00-26:00"}}
    status, reply = await env.put("/api/schedules/hours", bad)
    assert (status, reply["where"]) == (422, "hours.workday")
    assert (env.files / "hours.yaml").read_bytes() == before
    status, reply = await env.put("/api/schedules/hours", {**bad, "surge_file": "/etc/x"})
    assert (status, reply["where"]) == (422, "surge_file")
    good = {"hours": {**hours["hours"], "workday": "07:00-21:00"}}
    status, saved = await env.put("/api/schedules/hours", good)
    assert (status, saved["hours"]["workday"]) == (200, "07:00-21:00")
    text = (env.files / "hours.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Часы работы операторов") and "surge_file: var/surge" in text
    assert env.service.hours["hours"].window_for("workday") is not None
    for name in ("calendar", "groups", "88001000001", ".hidden", "nope"):
        assert (await env.get(f"/api/schedules/{name}"))[0] == 404


async def test_the_controller_serves_the_api_and_picks_up_hand_edits(tmp_path: Path) -> None:
    from aiohttp import ClientSession
    from controllers import admin_environment, controller_settings, started

    environment, files = admin_environment(tmp_path, DIALPLANS)
    settings = controller_settings(
        tmp_path,
        {**environment, "HOTLINE_ROUTING_NODE_ID": "admin-node", "HOTLINE_NODE_NAME": "admin-node"},
    )
    async with started(settings) as controller:
        base = f"http://127.0.0.1:{controller.http_port}"
        async with ClientSession() as http:
            async with http.get(f"{base}/api/groups") as reply:
                assert reply.status == 401
            auth = {"Authorization": "Bearer t0k"}
            async with http.put(
                f"{base}/api/groups/pensions", json=PENSIONS, headers=auth
            ) as reply:
                assert reply.status == 200
            assert (tmp_path / "menu-versions" / "acd" / "groups" / "index.json").is_file()
            groups = files / "groups.yaml"
            groups.write_text(groups.read_text("utf-8") + "  broken: [\n", "utf-8")
            async with asyncio.timeout(5):
                while (await controller.health())["acd_files"] != "stale":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            async with http.get(f"{base}/healthz") as reply:
                assert reply.status == 200  # the last good groups still serve calls
                assert (await reply.json())["components"]["acd_files"] == "stale"
            assert controller.acd is not None and "pensions" in controller.acd.node.acd.groups
