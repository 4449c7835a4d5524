"""The ACD in the call flow: a simulated Asterisk calls the running controller over FastAGI,
the menu's queue node waits in the ACD, the caller's own session Dials the operator's
softphone (PJSIP/<seat>), Dial's U() hook reports the answer over a second FastAGI session,
and when the operator hangs up the menu goes on to its rating."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from controllers import controller_settings, recorder_environment, started
from people import acting
from sim_rig import REPEAT_MENU, REPEAT_NUMBER, dial_in, groups_yaml, operators_yaml, sim_controller

from controller.node import Controller
from hotline.clock import SystemClock
from hotline.store.db import CallLog
from hotline.yamldoc import YamlFileError
from pbxsim.callers import CallerScript
from pbxsim.channel import AgiChannel
from pbxsim.queue_state import DeviceState, Operator
from pbxsim.queues import Queues
from routing.group_hours import schedule_checker
from routing.part import AcdService
from routing.settings import RoutingSettings
from routing.testing import group

REDIS_URL = "redis://127.0.0.1:6379/0"  # the real Redis every Redis test uses
SHIPPED = Path(__file__).resolve().parents[2] / "dialplans"
NUMBER = "88009000009"
MENU = f"""\
number: "{NUMBER}"
title: проверка ACD
group: help
start: welcome
nodes:
  welcome: {{kind: play, prompts: [hotline/greeting-general], next: to-operator}}
  to-operator:
    kind: queue
    group: help
    data: [topic]
    then_rating: rate
    otherwise: busy
  rate:
    kind: rating
    prompts: [hotline/rating-request]
    thanks: [hotline/rating-thanks]
    timeout: 1
    retries: 1
    next: goodbye
  busy: {{kind: hangup, prompts: [hotline/all-busy]}}
  goodbye: {{kind: hangup, prompts: [hotline/goodbye]}}
"""
GROUPS = groups_yaml("help", ring_seconds=1, max_wait_seconds=30, widen_after_seconds=30)
OPERATORS = operators_yaml(anna={"help": 9}, boris={"help": 5})


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with sim_controller(
        tmp_path,
        {NUMBER: MENU, REPEAT_NUMBER: REPEAT_MENU},
        groups=GROUPS,
        operators=OPERATORS,
        staff=True,
        environment={
            "HOTLINE_NODE_NAME": "test-node",
            **recorder_environment(tmp_path / "recorder"),
        },
    ) as node:
        yield node


@dataclass
class Events:
    """The simulated PBX's AMI events, as (name, headers)."""

    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        self.seen.append((event, dict(headers)))

    def dials(self) -> list[tuple[str, str]]:
        """(event, DestChannel's device or the DialStatus) of DialBegin/DialEnd, in order."""
        return [
            (name, h.get("DialStatus") or h["DialString"])
            for name, h in self.seen
            if name in ("DialBegin", "DialEnd")
        ]


async def place_call(
    controller: Controller,
    operators: dict[str, Operator],
    script: CallerScript | None = None,
    unavailable: tuple[str, ...] = (),
    *,
    uniqueid: str = "1795563091.1",
    number: str = NUMBER,
    caller: str = "+79991234567",
) -> tuple[AgiChannel, Events, str]:
    assert controller.agi is not None
    events = Events()
    queues = Queues({}, SystemClock(), sink=events, operators=operators)
    for device in unavailable:  # not registered: Asterisk's device state says so
        queues.devices.seed(device, DeviceState.UNAVAILABLE)
    agi, status = await dial_in(
        controller.agi.port,
        queues,
        script or CallerScript(hangup_at=60),
        uniqueid=uniqueid,
        number=number,
        caller=caller,
        sink=events,
        prompt_samples=400,  # 50 ms per prompt
    )
    return agi, events, status


async def operator_api(controller: Controller, method: str, path: str) -> Any:
    url = f"http://127.0.0.1:{controller.http_port}/api/operators{path}"
    async with (
        aiohttp.ClientSession(headers=acting(path)) as http,
        http.request(method, url) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def states(controller: Controller) -> dict[str, tuple[str, str | None]]:
    listing = await operator_api(controller, "GET", "")
    return {row["id"]: (row["state"], row["pause_reason"]) for row in listing["operators"]}


async def call_outcome(controller: Controller) -> str | None:
    assert controller.engine is not None
    record = await CallLog(controller.engine).get("1795563091.1")
    assert record is not None
    return record.outcome


def after(prompts: tuple[str, ...] | list[str], first: str, then: str) -> bool:
    return first in prompts and then in prompts[prompts.index(first) :]


async def test_caller_reaches_operator_through_the_acd_then_rates(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/boris/login")
    boris = Operator(ring_delay=0.2, talk_time=0.3)
    agi, events, status = await place_call(controller, {"PJSIP/1002": boris})

    assert status == "HANGUP"  # the menu said goodbye and hung up
    assert events.dials() == [("DialBegin", "1002"), ("DialEnd", "ANSWER")]
    assert agi.variable("DIALSTATUS") == "ANSWER"
    # the U() hook reached the controller on the operator's channel: talking, then wrap-up
    assert (await states(controller))["boris"] == ("wrap_up", None)
    assert agi.variable("HOTLINE_GROUP") == "help"
    assert after(agi.stats.prompts, "hotline/greeting-general", "hotline/rating-request")
    assert "hotline/goodbye" in agi.stats.prompts
    assert await call_outcome(controller) == "answered"
    assert controller.acd is not None
    stats = controller.acd.node.acd.stats["help"]
    assert (stats.offered, stats.answered) == (1, 1)
    # the recorder learned who took the call (Dial raises no AgentConnect to learn it from);
    # without an AMI Hangup in this test the name is still waiting for the recording to end
    assert controller.recordings is not None
    assert controller.recordings.operators == {"1795563091.1": "Борис"}


async def test_operator_who_does_not_answer_is_paused_and_the_next_one_rings(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/anna/login")  # better skill: rung first
    await operator_api(controller, "POST", "/boris/login")
    operators = {
        "PJSIP/1001": Operator(answers=False),
        "PJSIP/1002": Operator(ring_delay=0.1, talk_time=0.2),
    }
    agi, events, _ = await place_call(controller, operators)

    assert events.dials() == [
        ("DialBegin", "1001"),
        ("DialEnd", "NOANSWER"),
        ("DialBegin", "1002"),
        ("DialEnd", "ANSWER"),
    ]
    listed = await states(controller)
    assert listed["anna"] == ("paused", "no answer")
    assert listed["boris"] == ("wrap_up", None)
    assert "hotline/rating-request" in agi.stats.prompts
    assert await call_outcome(controller) == "answered"


async def test_nobody_logged_in_takes_the_menus_overflow_path(controller: Controller) -> None:
    agi, events, _ = await place_call(controller, {})

    assert events.dials() == []
    assert "hotline/all-busy" in agi.stats.prompts
    assert "hotline/rating-request" not in agi.stats.prompts
    assert await call_outcome(controller) == "joinempty"


async def test_caller_who_hangs_up_while_waiting_frees_nobody_and_is_abandoned(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/anna/login")
    # anna's phone rings on and on; the caller gives up while it rings
    agi, events, _ = await place_call(
        controller,
        {"PJSIP/1001": Operator(answers=False)},
        CallerScript(hangup_at=60, hangup_during_line="EXEC Dial"),
    )

    assert agi.caller_hung_up
    assert ("DialBegin", "1001") in events.dials()
    assert events.dials()[-1] == ("DialEnd", "CANCEL")
    assert controller.acd is not None
    stats = controller.acd.node.acd.stats["help"]
    assert (stats.answered, stats.abandoned) == (0, 1)
    assert (await states(controller))["anna"] == ("ready", None)


async def test_unregistered_phone_answers_chanunavail_and_the_next_operator_rings(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/anna/login")
    await operator_api(controller, "POST", "/boris/login")
    boris = Operator(ring_delay=0.1, talk_time=0.1)
    _, events, _ = await place_call(controller, {"PJSIP/1002": boris}, unavailable=("PJSIP/1001",))

    assert events.dials() == [("DialBegin", "1002"), ("DialEnd", "ANSWER")]
    assert (await states(controller))["anna"] == ("paused", "no answer")
    assert await call_outcome(controller) == "answered"


def test_group_schedule_names_an_hours_file(tmp_path: Path) -> None:
    (tmp_path / "calendar.yaml").write_bytes((SHIPPED / "calendar.yaml").read_bytes())
    hours = "timezone: Europe/Moscow\nsurge_file: {surge}\nhours:\n  workday: closed\n"
    hours += "  saturday: closed\n  sunday: closed\n  holiday: closed\n"
    (tmp_path / "never.yaml").write_text(hours.format(surge=tmp_path / "surge"))
    groups = {
        "night": group("night", schedule="never"),
        "help": group("help", schedule="round-the-clock"),
    }
    is_open = schedule_checker(groups, tmp_path)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
    assert not is_open(groups["night"], now)
    assert is_open(groups["help"], now)


def test_broken_group_schedule_stops_start_up_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "calendar.yaml").write_bytes((SHIPPED / "calendar.yaml").read_bytes())
    (tmp_path / "bad.yaml").write_text("hours:\n  workday: 25:00-26:00\n")
    with pytest.raises(YamlFileError, match=r"bad\.yaml:2"):
        schedule_checker({"g": group("g", schedule="bad")}, tmp_path)


async def test_broken_groups_file_stops_the_controller_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "groups.yaml").write_text("groups:\n  help:\n    name: Справка\n")
    settings = controller_settings(
        tmp_path, {"HOTLINE_ROUTING_GROUPS_FILE": str(tmp_path / "groups.yaml")}
    )
    with pytest.raises(YamlFileError, match=r"groups\.yaml:3"):
        async with started(settings):
            pass


async def test_redis_backend_keeps_operator_states_across_a_restart(
    tmp_path: Path, redis_prefix: str
) -> None:
    (tmp_path / "groups.yaml").write_text(GROUPS, encoding="utf-8")
    (tmp_path / "operators.yaml").write_text(OPERATORS, encoding="utf-8")
    settings = RoutingSettings(
        groups_file=str(tmp_path / "groups.yaml"),
        operators_file=str(tmp_path / "operators.yaml"),
        state_backend="redis",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        node_id="n1",
    )
    first = AcdService.build(settings)
    await first.start(metrics=False)
    await first.node.login("anna")
    await first.stop()

    again = AcdService.build(settings)
    await again.start(metrics=False)
    try:
        assert again.node.acd.operators["anna"].state.value == "ready"
        assert again.node.acd.operators["boris"].state.value == "logged_out"
        assert again.health() == "ok"
    finally:
        await again.stop()


async def test_an_answered_call_pops_on_the_desk_and_leaves_a_numbered_contact(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/boris/login")
    assert controller.workspace is not None
    desk = controller.workspace.desk
    with desk.subscribe("boris") as boris_desk:
        # the caller listens to the end and rates 4 when asked
        agi, _, _ = await place_call(
            controller,
            {"PJSIP/1002": Operator(ring_delay=0.2, talk_time=0.3)},
            CallerScript(hangup_at=60, menu_keys="4", reaction=0.1),
        )
        await desk.idle()
        kinds = []
        while not boris_desk.empty():
            kinds.append(boris_desk.get_nowait())
    # the state bar's moves (ringing, talking, wrap-up) come in between; the call's own events:
    kinds = [event for event in kinds if event.kind != "state"]
    assert [event.kind for event in kinds] == ["pop", "contact"]
    pop, opened = kinds[0].data, kinds[1].data
    # the caller ID +79991234567 is kept in the one form history is matched on
    assert (pop["line"], pop["group"], pop["caller_phone"]) == (NUMBER, "help", "79991234567")
    assert pop["menu_path"].startswith("welcome")
    contact = await controller.workspace.registry.of_call("1795563091.1")
    assert contact is not None and str(contact.number) == opened["number"]
    assert (contact.line, contact.group, contact.operator_id) == (NUMBER, "help", "boris")
    assert contact.rating == 4  # stored on the contact, not only on the channel
    # the caller heard the number before the rating: year, sequence, check digit, in digits
    prompts = list(agi.stats.prompts)
    told = prompts.index("hotline/contact-number-is")
    spoken = "".join(p.removeprefix("digits/") for p in prompts[told + 1 : told + 13])
    assert spoken == contact.number.digits
    assert prompts.index("hotline/rating-request") > told + 12


async def test_a_caller_who_keys_their_contact_number_goes_back_to_its_operator(
    controller: Controller,
) -> None:
    assert controller.workspace is not None
    await operator_api(controller, "POST", "/boris/login")
    await place_call(controller, {"PJSIP/1002": Operator(ring_delay=0.1, talk_time=0.2)})
    await controller.workspace.desk.idle()
    first = await controller.workspace.registry.of_call("1795563091.1")
    assert first is not None and first.operator_id == "boris"
    # anna (skill 9) would take the next caller of the group before boris (skill 5)...
    await operator_api(controller, "POST", "/anna/login")
    await operator_api(controller, "POST", "/boris/wrap-up-done")
    phones = {
        "PJSIP/1001": Operator(ring_delay=0.1, talk_time=0.2),
        "PJSIP/1002": Operator(ring_delay=0.1, talk_time=0.2),
    }
    with controller.workspace.desk.subscribe("boris") as boris_desk:
        # ...but the caller keys in the number they heard: boris's contact
        _, events, _ = await place_call(
            controller,
            phones,
            CallerScript(hangup_at=60, menu_keys=first.number.digits + "#", reaction=0.05),
            uniqueid="1795563091.2",
            number=REPEAT_NUMBER,
        )
        await controller.workspace.desk.idle()
        pop = boris_desk.get_nowait()
        while pop.kind == "state":  # the state bar's moves come before the pop
            pop = boris_desk.get_nowait()
    assert events.dials() == [("DialBegin", "1002"), ("DialEnd", "ANSWER")]
    assert pop.kind == "pop" and pop.data["about"]["number"] == str(first.number)
    second = await controller.workspace.registry.of_call("1795563091.2")
    assert second is not None and second.repeat and second.operator_id == "boris"


async def test_a_number_that_names_no_contact_sounds_the_same_and_goes_to_the_group(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/anna/login")
    # a well-formed number (its Luhn digit holds: 9,9,9,9 doubled stay 9, 2,2 doubled give
    # 4,4, plus 9+9+9+6+0 = 77 -> 3) that the registry never issued
    guessed = "202699999993"
    heard = []
    for uniqueid in ("1795563091.3", "1795563091.4"):
        if heard:  # the second caller keys in the contact the first call's answer opened
            assert controller.workspace is not None
            await controller.workspace.desk.idle()
            opened = await controller.workspace.registry.of_call("1795563091.3")
            assert opened is not None
            guessed = opened.number.digits
        agi, events, _ = await place_call(
            controller,
            {"PJSIP/1001": Operator(ring_delay=0.1, talk_time=0.2)},
            CallerScript(hangup_at=60, menu_keys=guessed + "#", reaction=0.05),
            uniqueid=uniqueid,
            number=REPEAT_NUMBER,
        )
        assert events.dials() == [("DialBegin", "1001"), ("DialEnd", "ANSWER")]
        heard.append([p for p in agi.stats.prompts if not p.startswith("digits/")])
        await operator_api(controller, "POST", "/anna/wrap-up-done")
    assert heard[0] == heard[1]


# --- the reports' call facts, fed by the root's ports (controller.report_ports) ----------


async def _fact(controller: Controller, call_id: str = "1795563091.1") -> dict[str, Any]:
    assert controller.reporting is not None
    await controller.reporting.facts.idle()
    fact = await controller.reporting.facts.store.get(call_id)
    assert fact is not None, "no call fact written"
    return fact


async def test_an_answered_and_rated_call_leaves_one_call_fact(controller: Controller) -> None:
    await operator_api(controller, "POST", "/boris/login")
    await place_call(
        controller,
        {"PJSIP/1002": Operator(ring_delay=0.2, talk_time=0.3)},
        CallerScript(hangup_at=60, menu_keys="4", reaction=0.1),
    )
    assert controller.workspace is not None
    await controller.workspace.desk.idle()  # the contact is opened on the answer
    fact = await _fact(controller)
    assert (fact["line"], fact["group_name"], fact["outcome"]) == (NUMBER, "help", "answered")
    assert (fact["operator_id"], fact["ringing_operators"], fact["rating"]) == ("boris", "boris", 4)
    assert fact["caller_number"] == "79991234567"
    assert fact["menu_path"].startswith("welcome to-operator")
    assert fact["wait_seconds"] is not None and fact["talk_seconds"] > 0
    contact = await controller.workspace.registry.of_call("1795563091.1")
    assert contact is not None and fact["contact_number"] == contact.number.digits
    assert not fact["abandoned_ringing"] and not fact["repeat"]


async def test_a_caller_gone_while_the_phone_rings_is_an_abandoned_fact(
    controller: Controller,
) -> None:
    await operator_api(controller, "POST", "/anna/login")
    await place_call(
        controller,
        {"PJSIP/1001": Operator(answers=False)},
        CallerScript(hangup_at=60, hangup_during_line="EXEC Dial"),
    )
    fact = await _fact(controller)
    assert (fact["outcome"], fact["abandoned_ringing"], fact["answered"]) == (
        "abandoned",
        True,
        False,
    )
    assert fact["ringing_operators"] == "anna" and fact["abandoned_at"] is not None


async def test_nobody_logged_in_is_an_overflowed_fact(controller: Controller) -> None:
    await place_call(controller, {})
    fact = await _fact(controller)
    assert (fact["outcome"], fact["overflowed"], fact["overflow_reason"]) == (
        "overflowed",
        True,
        "nobody_logged_in",
    )
