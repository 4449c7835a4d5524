"""A controller restart with callers in every state (issue 10 item 1), on the simulated PBX
running the shipped extensions.conf: a real `hotline serve` process is killed with SIGKILL
(no goodbye at all) or stopped with SIGTERM while one caller rings the operator, two wait in
the ACD's queue and one is in the menu; a new controller starts on the same port and
database. Nobody is hung up on, everybody reaches the operator, and those who waited before
the restart are answered in the order they arrived, before a caller who came after it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from controllers import WITHOUT_RECORDER, controller_environment, controller_settings, started
from people import as_user, people_environment
from test_serve import Served, wait_healthy

from hotline.clock import SystemClock
from hotline.store.db import CallLog
from pbxsim.queue_state import Operator
from pbxsim.queues import Queues
from pbxsim.runner import SimReport, run_scenario
from pbxsim.scenario import CallGroup, PbxSettings, Scenario
from routing.snapshot import AFTER_RESTART

SHIPPED = Path(__file__).resolve().parents[2] / "dialplans"
GENERAL = "88001000001"
TIME_SCALE = 0.05  # one simulated second lasts 50 ms (the PBX's pauses, rings, prompts)
EPOCH = 1795564000


@dataclass
class Witness:
    """The simulator's events: who is on hold in the ACD, who rings whom, who was answered."""

    on_hold: set[str] = field(default_factory=set)
    in_menu: set[str] = field(default_factory=set)
    dialled: list[str] = field(default_factory=list)  # callers' uniqueids in DialBegin order
    answered: list[str] = field(default_factory=list)
    agis: Counter[str] = field(default_factory=Counter)  # AGI() runs per caller
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        h = dict(headers)
        if event == "MusicOnHoldStart" and h.get("Context") == "from-pstn":
            self.on_hold.add(h["Uniqueid"])  # during the AGI: the ACD's hold music
        elif event == "Newexten" and h.get("Application") == "AGI":
            self.in_menu.add(h["Uniqueid"])
            self.agis[h["Uniqueid"]] += 1
        elif event == "DialBegin":
            self.dialled.append(h["Uniqueid"])
        elif event == "DialEnd" and h.get("DialStatus") == "ANSWER":
            self.answered.append(h["Uniqueid"])
        self.changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        while not check():
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 30)
            except TimeoutError:
                raise AssertionError(f"nothing happened for 30 s: {self}") from None


def files(tmp_path: Path) -> dict[str, str]:
    """The shipped menus (surge on: open at any time), groups with a short wrap-up, and one
    operator in the general group."""
    dialplans = tmp_path / "dialplans"
    shutil.copytree(SHIPPED, dialplans)
    (tmp_path / "surge").write_text("on\n")
    hours = (dialplans / "hours.yaml").read_text(encoding="utf-8")
    (dialplans / "hours.yaml").write_text(
        hours.replace("surge_file: var/surge", f"surge_file: {tmp_path / 'surge'}")
    )
    groups = yaml.safe_load((SHIPPED / "groups.yaml").read_text(encoding="utf-8"))
    for body in groups["groups"].values():
        body["wrap_up_seconds"] = 0.1
    (tmp_path / "groups.yaml").write_text(yaml.safe_dump(groups, allow_unicode=True))
    operators = {"solo": {"name": "Соло Анна", "device": "PJSIP/3001", "skills": {"general": 9}}}
    (tmp_path / "operators.yaml").write_text(
        yaml.safe_dump({"operators": operators}, allow_unicode=True)
    )
    return {
        **controller_environment(tmp_path),
        **WITHOUT_RECORDER,
        **people_environment(tmp_path, {"solo": "operator"}),  # solo acts as herself
        "HOTLINE_LOG_LEVEL": "INFO",
        "HOTLINE_IVR_DIALPLANS_DIR": str(dialplans),
        "HOTLINE_ROUTING_GROUPS_FILE": str(tmp_path / "groups.yaml"),
        "HOTLINE_ROUTING_OPERATORS_FILE": str(tmp_path / "operators.yaml"),
        "HOTLINE_ROUTING_SCHEDULES_DIR": str(dialplans),
        "HOTLINE_ROUTING_SNAPSHOT_EVERY_SECONDS": "0.02",
        "HOTLINE_ROUTING_TIMER_RESOLUTION_SECONDS": "0.01",
    }


@contextmanager
def serve(tmp_path: Path, environment: dict[str, str]) -> Iterator[Served]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "serve"],
        env={**os.environ, **environment},
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        served = Served(process)
        served.wait_started()
        wait_healthy(served.http_port, process)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def operator_api(port: int, path: str, body: dict[str, str] | None = None) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/operators/{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json", **as_user(path.split("/")[0])},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def calls(epoch: int, groups: tuple[CallGroup, ...]) -> Scenario:
    return Scenario(
        calls=groups,
        pbx=PbxSettings(epoch=epoch, default_sound_seconds=1.0, max_call_seconds=3600),
        name="restart",
    )


async def place(port: int, scenario: Scenario, witness: Witness, phones: Queues) -> SimReport:
    return await run_scenario(
        scenario, "127.0.0.1", port, sink=witness, queues=phones, time_scale=TIME_SCALE
    )


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_a_restart_loses_nobody_and_keeps_the_arrival_order(
    tmp_path: Path, how: signal.Signals
) -> None:
    environment = files(tmp_path)
    witness = Witness()
    phone = Operator(answers=True, ring_delay=0.5, talk_time=3.0)
    phones = Queues({}, SystemClock(time_scale=TIME_SCALE), sink=witness,
                    operators={"PJSIP/3001": phone})  # fmt: skip
    before = calls(
        EPOCH,
        (
            # far enough apart (2 s of real time) that they reach the queue in this order
            # however loaded the machine
            *(
                CallGroup(GENERAL, caller_id=f"7916000000{n}", menu_keys="0", start=40 * n)
                for n in range(3)
            ),
            CallGroup(GENERAL, caller_id="79160000003", start=120),  # listens to the menu
        ),
    )
    c1, c2, c3, c4 = (f"{EPOCH}.{n}" for n in range(4))
    with serve(tmp_path, {**environment, "HOTLINE_AGI_PORT": "0"}) as first:
        port = first.agi_port
        operator_api(first.http_port, "solo/login", {"paused_reason": "обед"})
        waiting = asyncio.create_task(place(port, before, witness, phones))
        await witness.until(
            lambda: {c1, c2, c3} <= witness.on_hold and c4 in witness.in_menu - witness.on_hold
        )
        first.process.send_signal(how)
        await asyncio.to_thread(first.process.wait, 30)
    assert not waiting.done()  # nobody hung up on: they hear hold music, then come back
    settings = controller_settings(tmp_path, {**environment, "HOTLINE_AGI_PORT": str(port)})
    async with started(settings) as second:
        assert second.acd is not None and second.engine is not None
        solo = second.acd.node.acd.operators["solo"]
        assert (solo.state.value, solo.pause_reason) == ("paused", "обед")  # as they were
        after = calls(EPOCH + 100, (CallGroup(GENERAL, caller_id="79160000005", menu_keys="0"),))
        newcomer = asyncio.create_task(place(port, after, witness, phones))
        await witness.until(lambda: {c1, c2, c3} <= set(second.acd.node.acd.callers))
        await second.acd.node.ready("solo")  # back from lunch
        reports = await asyncio.wait_for(asyncio.gather(waiting, newcomer), 120)
        log = CallLog(second.engine)
        outcomes = {c.uniqueid: (await log.get(c.uniqueid)) for r in reports for c in r.calls}
    c5 = f"{EPOCH + 100}.0"
    everyone = [call for report in reports for call in report.calls]
    assert [(c.uniqueid, c.error, c.caller_hung_up) for c in everyone] == [
        (uid, None, False) for uid in (c1, c2, c3, c4, c5)
    ]
    assert sorted(witness.answered) == sorted([c1, c2, c3, c4, c5])  # each reached solo once
    assert witness.answered[:3] == [c1, c2, c3]  # in the order they first arrived
    assert witness.answered.index(c5) > 2  # the newcomer after everyone who waited before
    assert {uid: r.outcome if r else None for uid, r in outcomes.items()} == dict.fromkeys(
        (c1, c2, c3, c4, c5), "answered"
    )


async def test_a_caller_ringing_the_operator_when_the_controller_dies_talks_and_is_not_requeued(
    tmp_path: Path,
) -> None:
    """kill -9 while the operator's phone rings for a caller: Asterisk's Dial goes on without
    the controller, the operator answers and talks; the call comes back to the next controller
    afterwards, which goes on with the menu (no second queue); the callers who were waiting
    are answered next."""
    environment = files(tmp_path)
    # The phone rings 60 simulated seconds (3 s) within a Dial of 120, so the kill lands while
    # it rings however slowly a loaded machine gets there (8 s, 0.4 s of wall time, did not).
    groups_file = tmp_path / "groups.yaml"
    groups = yaml.safe_load(groups_file.read_text(encoding="utf-8"))
    groups["groups"]["general"]["ring_seconds"] = 120
    groups_file.write_text(yaml.safe_dump(groups, allow_unicode=True), encoding="utf-8")
    witness = Witness()
    phone = Operator(answers=True, ring_delay=60.0, talk_time=3.0)  # a slow hand: rings a while
    phones = Queues({}, SystemClock(time_scale=TIME_SCALE), sink=witness,
                    operators={"PJSIP/3001": phone})  # fmt: skip
    before = calls(
        EPOCH,
        tuple(
            CallGroup(GENERAL, caller_id=f"7916000000{n}", menu_keys="0", start=n) for n in range(3)
        ),
    )
    c1, c2, c3 = (f"{EPOCH}.{n}" for n in range(3))
    with serve(tmp_path, {**environment, "HOTLINE_AGI_PORT": "0"}) as first:
        port = first.agi_port
        operator_api(first.http_port, "solo/login")  # ready: the first caller rings solo
        waiting = asyncio.create_task(place(port, before, witness, phones))
        # one caller rings solo (the first to reach the queue), the other two wait
        await witness.until(lambda: len(witness.on_hold) == 3 and len(witness.dialled) == 1)
        assert witness.answered == []  # still ringing
        ringing = witness.dialled[0]
        first.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.process.wait, 30)
    settings = controller_settings(tmp_path, {**environment, "HOTLINE_AGI_PORT": str(port)})
    async with started(settings) as second:
        assert second.acd is not None and second.engine is not None
        solo = second.acd.node.acd.operators["solo"]
        assert (solo.state.value, solo.pause_reason) == ("paused", AFTER_RESTART)
        others = {c1, c2, c3} - {ringing}
        await witness.until(lambda: others <= set(second.acd.node.acd.callers))
        # the conversation over (Dial returned), the call came back to this controller
        await witness.until(lambda: witness.agis[ringing] >= 2)
        await second.acd.node.ready("solo")  # *83: free again
        report = await asyncio.wait_for(waiting, 120)
        log = CallLog(second.engine)
        outcomes = {c.uniqueid: (await log.get(c.uniqueid)) for c in report.calls}
    assert [(c.uniqueid, c.error, c.caller_hung_up) for c in report.calls] == [
        (uid, None, False) for uid in (c1, c2, c3)
    ]
    assert witness.dialled.count(ringing) == 1  # not queued a second time
    assert witness.answered[0] == ringing  # answered though the controller that rang it died
    assert sorted(witness.answered) == sorted(witness.dialled) == [c1, c2, c3]
    assert {uid: r.outcome if r else None for uid, r in outcomes.items()} == dict.fromkeys(
        (c1, c2, c3), "answered"
    )
