"""The ACD's group schedules and callbacks as the controller wires them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import ClientSession
from controllers import WITHOUT_RECORDER, controller_settings, started

from controller.node import Controller
from controller.report_ports import FactsOnCallbacks
from hotline.agi.session import CallerHungUp
from hotline.clock import SystemClock
from hotline.hours import load_calendar, load_hours
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer
from pbxsim.originator import ScriptedOriginator
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues
from routing.announcements import announcement
from routing.callbacks.model import CallbackRefused, window_overlaps_hours
from routing.callbacks.scheduler import CallbackScheduler
from routing.callbacks.settings import CallbackSettings
from routing.group_hours import schedule_checker
from routing.groups import load_groups
from routing.part import AcdService
from routing.settings import RoutingSettings
from routing.testing import group, memory_node, op

ROOT = Path(__file__).resolve().parents[2]
DIALPLANS = ROOT / "dialplans"


def test_every_shipped_group_schedule_is_a_real_hours_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    groups = load_groups(DIALPLANS / "groups.yaml")
    calendar = load_calendar(DIALPLANS / "calendar.yaml")
    for shipped in groups.values():
        load_hours(DIALPLANS / f"{shipped.schedule}.yaml", calendar)  # raises at file:line
    with caplog.at_level(logging.WARNING, logger="hotline.routing"):
        schedule_checker(groups, DIALPLANS)
    assert "always open" not in caplog.text


def moscow(day: int, hour: int, minute: int = 0, second: float = 0) -> float:
    """A moment of November 2026 given in Moscow time (UTC+3), as the ACD's clock reads it."""
    whole = int(second)
    at = datetime(2026, 11, day, hour - 3, minute, whole, int((second - whole) * 1e6), UTC)
    return at.timestamp()


def test_ordinary_groups_keep_the_hotlines_hours_and_the_on_duty_group_never_closes() -> None:
    groups = load_groups(DIALPLANS / "groups.yaml")
    is_open = schedule_checker(groups, DIALPLANS)
    general, emergency = groups["general"], groups["emergency"]
    # Wednesday 25 November 2026: a workday, 08:00-20:00.
    assert not is_open(general, moscow(25, 7, 59))
    assert is_open(general, moscow(25, 8, 0))
    assert not is_open(general, moscow(25, 20, 0))
    # Sunday 29 November: 10:00-16:00.
    assert not is_open(general, moscow(29, 9, 30))
    assert is_open(general, moscow(29, 15, 59))
    for day, hour, minute, second in ((25, 3, 0, 0), (29, 23, 59, 59.999), (28, 3, 0, 0)):
        assert is_open(emergency, moscow(day, hour, minute, second))


# --- callbacks in the running controller -------------------------------------------------

ON_DUTY_PHONE = "PJSIP/1007"  # morozova, the emergency group's operator (operators.yaml)
PHONE = "79161234567"


@asynccontextmanager
async def running(tmp_path: Path, **environment: str) -> AsyncIterator[tuple[Controller, str]]:
    """A controller on the shipped files with the ACD on and the recorder off; yields it
    and the base URL of its HTTP API."""
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_NODE_NAME": "test-node",
            "HOTLINE_ROUTING_NODE_ID": "test-node",
            **environment,
        },
    )
    async with started(settings) as controller:
        yield controller, f"http://127.0.0.1:{controller.http_port}"


async def anonymous_order(url: str) -> int:
    """POST /api/callbacks without credentials, as anyone reaching the port could."""
    async with ClientSession() as http:
        body = {"phone": PHONE, "group": "emergency"}
        async with http.post(f"{url}/api/callbacks", json=body) as response:
            assert "id" not in await response.json()
            return response.status


async def until_state(scheduler: CallbackScheduler, public_id: str, state: str) -> None:
    """Poll the callback as the mobile app does until it reaches `state`."""
    async with asyncio.timeout(5):
        while (row := await scheduler.get_public(public_id)) is None or row.state != state:  # noqa: ASYNC110 - the row is in the database
            await asyncio.sleep(0.02)


async def test_without_ami_callbacks_are_kept_pending_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hotline.routing"):
        async with running(tmp_path, HOTLINE_CALLBACKS_POLL_SECONDS="0.01") as (controller, url):
            assert "nothing can be dialled until [ami] is enabled" in caplog.text
            assert controller.callbacks is not None
            scheduler = controller.callbacks.scheduler
            # the route is mounted and admits nobody without credentials
            assert await anonymous_order(url) == 401
            made = await scheduler.request(
                phone="8 916 123-45-67", group="emergency", requester="service:app"
            )
            assert made.state == "pending"
            with pytest.raises(CallbackRefused, match="уже заказан"):
                await scheduler.request(phone=PHONE, group="emergency", requester="service:app")
            await asyncio.sleep(0.1)  # many poll intervals: nobody may pick it up
            shown = await scheduler.get_public(made.public_id)
            assert shown is not None and shown.state == "pending" and shown.attempts == 0
            # ...and the backlog the alert watches still counts it (it can only grow)
            async with ClientSession() as http, http.get(f"{url}/metrics") as response:
                exported = await response.text()
            assert 'hotline_callbacks_pending{group="emergency"} 1.0' in exported
            assert 'hotline_callbacks_due{group="emergency"} 1.0' in exported
            assert 'hotline_callbacks_due{group="general"} 0.0' in exported


async def test_the_menus_callback_node_reaches_the_controllers_scheduler(tmp_path: Path) -> None:
    async with running(tmp_path) as (controller, _):
        assert controller.callbacks is not None and controller.menus is not None
        service = controller.callbacks
        for number in ("88001000001", "88005000005"):
            picked = controller.menus.entry.library.pick(number)
            assert picked is not None
            # the scheduler, seen on the way by the reports' call facts
            port = picked[1].callbacks
            assert isinstance(port, FactsOnCallbacks) and port.callbacks is service
        booked = await port.request(
            "1795563091.1", phone="89031112233", group="general", number="", data={"topic": "x"}
        )
        assert booked
        # A number nobody can call back, or a group that does not exist: refused, no row.
        assert not await service.request("c2", phone="12", group="general", number="", data={})
        assert not await service.request("c3", phone=PHONE, group="nope", number="", data={})
        row = await service.scheduler.store.active_for("79031112233")
        assert (
            row is not None
            and row.group_id == "general"
            and row.source == "ivr"
            and row.data["topic"] == "x"
        )
        assert row.data["call_id"] == "1795563091.1"


def test_callback_windows_follow_the_group_schedule_files() -> None:
    service = AcdService.build(RoutingSettings(schedules_dir=str(DIALPLANS)))
    general, emergency = service.node.acd.groups["general"], service.node.acd.groups["emergency"]
    night = datetime.fromtimestamp(moscow(25, 3), UTC)
    assert not window_overlaps_hours(service.hours_for(general), night, night + timedelta(hours=1))
    assert window_overlaps_hours(service.hours_for(general), night, night + timedelta(hours=6))
    assert window_overlaps_hours(service.hours_for(emergency), night, night + timedelta(hours=1))


async def test_with_ami_a_callback_rings_the_on_duty_operator_then_the_citizen(
    tmp_path: Path,
) -> None:
    originator = ScriptedOriginator(talk_seconds=None)
    clock = SystemClock()
    server = AmiServer(
        clock=clock,
        users={"ctl": ManagerUser("ctl", "secret")},
        originator=originator,
        port=0,
    )
    originator.sink = server
    # The PBX knows the on-duty seat (a registered PJSIP endpoint): DeviceStateList lists it,
    # so the controller offers it calls.
    server.queues = Queues({}, clock, sink=server, operators={ON_DUTY_PHONE: Operator()})
    await server.start()
    ami = {
        "HOTLINE_AMI_ENABLED": "true",
        "HOTLINE_AMI_PORT": str(server.port),
        "HOTLINE_AMI_USERNAME": "ctl",
        "HOTLINE_AMI_SECRET": "secret",
        "HOTLINE_CALLBACKS_POLL_SECONDS": "0.02",
    }
    try:
        async with running(tmp_path, **ami) as (controller, _):
            assert controller.acd is not None and controller.ami is not None
            assert controller.callbacks is not None
            await asyncio.wait_for(controller.ami.wait_connected(), 5)
            await controller.acd.node.login("morozova")
            scheduler = controller.callbacks.scheduler
            made = await scheduler.request(phone=PHONE, group="emergency", requester="service:a")
            await until_state(scheduler, made.public_id, "connected")
            assert originator.dialled() == [ON_DUTY_PHONE, f"Local/{PHONE}@hotline-callback-out"]
    finally:
        await server.close()


def dialplan_context(name: str) -> str:
    text = (ROOT / "asterisk-conf" / "extensions.conf").read_text(encoding="utf-8")
    assert f"\n[{name}]\n" in text, f"extensions.conf has no [{name}]"
    return text.split(f"\n[{name}]\n", 1)[1].split("\n[", 1)[0]


def test_the_dialplan_has_every_context_the_callbacks_originate_into() -> None:
    settings = CallbackSettings()
    operator = dialplan_context(settings.operator_context)
    caller = dialplan_context(settings.caller_context)
    out = dialplan_context(settings.caller_channel.split("@", 1)[1])
    for leg in (operator, caller):
        assert "exten => s,1," in leg and "ConfBridge(${CALLBACK_BRIDGE})" in leg
    # Whoever hangs up first ends the other leg (the simulator's conference does the same):
    # the operator's Hangup ends the call for the ACD, and no citizen is left alone.
    for leg in (operator, caller):
        assert "CONFBRIDGE(user,marked)=yes" in leg
        assert "CONFBRIDGE(user,end_marked_any)=yes" in leg
    # An operator who left during the ring: the citizen hears an apology, not an empty room.
    assert "CONFBRIDGE_INFO(parties,${CALLBACK_BRIDGE})} = 0]?operator-left" in caller
    assert "Playback(hotline/callback-operator-left)" in caller
    prompts = (ROOT / "prompts" / "ru.yaml").read_text(encoding="utf-8")
    assert "\ncallback-operator-left: " in prompts
    assert ScriptedOriginator().guarded_context == settings.caller_context
    assert "exten => _7XXXXXXXXXX,1," in out and "Dial(PJSIP/${EXTEN}@" in out


# --- what a waiting caller hears ------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "wait", "files"),
    [
        (1, 20.0, ["hotline/queue-next"]),
        (5, None, ["hotline/queue-position", "digits/5"]),
        (
            3,
            130.0,  # rounded up: «три минуты»
            [
                *("hotline/queue-position", "digits/3"),
                *("hotline/queue-wait", "digits/3", "hotline/say-minutes-few"),
            ],
        ),
        (
            21,
            45.0,  # under a minute is still «одна минута»
            [
                *("hotline/queue-position", "digits/20", "digits/1"),
                *("hotline/queue-wait", "digits/1n", "hotline/say-minute"),
            ],
        ),
    ],
)
def test_the_announcement_names_the_place_and_the_wait(
    position: int, wait: float | None, files: list[str]
) -> None:
    assert announcement(position, wait) == files


@dataclass
class WaitingCaller:
    """The caller's FastAGI session while they wait: hangs up after `patience` prompts."""

    call_id: str
    patience: int
    played: list[str] = field(default_factory=list)
    applications: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    async def stream_file(self, name: str, escape_digits: str = "") -> None:
        if len(self.played) >= self.patience:
            raise CallerHungUp()
        self.played.append(name)

    async def exec(self, application: str, *options: str) -> int:
        self.applications.append(application)
        return 0

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value  # the arrival carried for a restart (routing.arrival)

    def gone(self) -> asyncio.Future[None]:
        """Never done: this caller's hang-up shows at a prompt, not as an idle notice."""
        return asyncio.get_running_loop().create_future()


async def test_a_waiting_caller_hears_their_place_between_the_hold_music() -> None:
    node = memory_node({"general": group("general")}, [op("anna", general=5)])
    await node.start()
    await node.login("anna")
    await node.enqueue("first", "general")  # rings anna
    await node.enqueue("second", "general")  # waits ahead of our caller
    service = AcdService(RoutingSettings(announce_every_seconds=0.01), node, {})
    caller = WaitingCaller("third", patience=4)
    outcome = await service.connect(caller, "general", number="", priority=0, data={})
    assert outcome == "caller_gone"
    wait = node.acd.expected_wait("general", 2)
    assert wait is not None
    assert caller.played == announcement(2, wait)[:4]
    assert caller.played[:2] == ["hotline/queue-position", "digits/2"]
    assert caller.applications[:2] == ["StartMusicOnHold", "StopMusicOnHold"]
    assert "third" not in node.acd.callers  # the hang-up left the queue
