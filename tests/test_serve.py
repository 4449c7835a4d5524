"""`hotline serve` end to end: the controller answers a FastAGI connection carrying the
environment a real Asterisk 22 sent, starts recording it, logs the call, reports health, and
drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from controllers import controller_settings, recorder_environment, started
from databases import delete_redis_prefix, isolated_postgres
from people import as_user, staff_environment
from transcripts import load

from controller.node import Controller
from controller.settings import Settings

ENVIRONMENT = next(b.data for b in load("agi-ivr-session.txt") if b.note == "environment")
# The same call to the emergency line (dialplans/88005000005.yaml): its menu does not depend on
# the time of day, so the whole command sequence is known whenever the test runs.
EMERGENCY = ENVIRONMENT.replace(b"88001000001", b"88005000005")


async def expect_emergency_menu(asterisk: FakeAsterisk, queue_status: str) -> None:
    """The emergency line after ANSWER with the ACD off: greeting, then Asterisk's on-duty
    queue, top priority."""
    await asterisk.expect("SET VARIABLE HOTLINE_DID 88005000005", "200 result=1")
    await asterisk.expect('STREAM FILE hotline/greeting-emergency ""', "200 result=0 endpos=16000")
    await asterisk.expect(RESUME_AT_QUEUE, "200 result=1")
    await asterisk.expect("SET VARIABLE HOTLINE_GROUP emergency", "200 result=1")
    await asterisk.expect("SET VARIABLE QUEUE_PRIO 10", "200 result=1")
    await asterisk.expect('EXEC Queue "hotline-emergency,tc,,,1800"', "200 result=0")
    await asterisk.expect("GET VARIABLE QUEUESTATUS", queue_status)


# The checkpoint a handed-back call would resume at (ivr.menu.resume): the queue node.
RESUME_AT_QUEUE = "SET VARIABLE HOTLINE_RESUME v=1&menu=88005000005&node=on-duty"

# The on-duty operator of dialplans/operators.yaml (emergency skill) and their softphone; the
# emergency group of dialplans/groups.yaml rings for 10 s.
ON_DUTY, ON_DUTY_PHONE = "morozova", "PJSIP/1007"
# The shipped operators: each acts through the HTTP API with their own token (tests/people.py).
SHIPPED_OPERATORS = Path(__file__).resolve().parents[1] / "dialplans" / "operators.yaml"


async def expect_emergency_call_through_the_acd(
    asterisk: FakeAsterisk, while_talking: Callable[[], None] | None = None
) -> None:
    """The emergency line after ANSWER with the ACD on and the on-duty operator ready: the
    greeting, music on hold, then the caller's own session dials the operator's phone; the
    operator picks up, talks (`while_talking` runs then) and hangs up (Dial's g option hands
    the call back)."""
    await asterisk.expect("SET VARIABLE HOTLINE_DID 88005000005", "200 result=1")
    await asterisk.expect('STREAM FILE hotline/greeting-emergency ""', "200 result=0 endpos=16000")
    await asterisk.expect(RESUME_AT_QUEUE, "200 result=1")
    await asterisk.expect("SET VARIABLE HOTLINE_GROUP emergency", "200 result=1")
    # the caller's arrival in the queue travels on the channel (routing.arrival): none yet
    await asterisk.expect("GET VARIABLE HOTLINE_QUEUED_AT", "200 result=0")
    assert (await asterisk.command()).startswith(
        "SET VARIABLE HOTLINE_QUEUED_AT v=1&group=emergency&at="
    )
    await asterisk.send("200 result=1")
    await asterisk.expect('SET VARIABLE DIALSTATUS ""', "200 result=1")  # no Dial answered yet
    await asterisk.expect('EXEC StartMusicOnHold "default"', "200 result=0")
    await asterisk.expect("EXEC StopMusicOnHold", "200 result=0")
    dial = f'EXEC Dial "{ON_DUTY_PHONE},10,gU(hotline-acd-answered^1795563091.1^127.0.0.1:4573)"'
    if while_talking is None:
        await asterisk.expect(dial, "200 result=0")
    else:
        assert await asyncio.wait_for(asterisk.reader.readline(), 5) == f"{dial}\n".encode()
        while_talking()
        await asyncio.sleep(1.0)  # the controller is stopping while the caller talks
        await asterisk.send("200 result=0")
    await asterisk.expect("GET VARIABLE DIALSTATUS", "200 result=1 (ANSWER)")
    await asterisk.expect("GET VARIABLE DIALEDTIME", "200 result=1 (64)")
    await asterisk.expect("GET VARIABLE ANSWEREDTIME", "200 result=1 (60)")
    await asterisk.expect('SET VARIABLE HOTLINE_QUEUED_AT ""', "200 result=1")  # done with it


async def expect_done(asterisk: FakeAsterisk) -> None:
    """The controller finished the call: the dialplan hangs up rather than hand it back."""
    await asterisk.expect("SET VARIABLE HOTLINE_DONE 1", "200 result=1")


async def expect_answer_and_recording(asterisk: FakeAsterisk, spool: Path) -> None:
    """Every call: ANSWER, then MixMonitor into the recorder's spool, named by the call id."""
    await asterisk.expect("ANSWER", "200 result=0")
    await asterisk.expect(f'EXEC MixMonitor "{spool_file(spool)}"', "200 result=0")


def spool_file(spool: Path) -> Path:
    return spool.resolve() / "1795563091.1.wav"  # absolute: Asterisk has its own cwd


class FakeAsterisk:
    """Asterisk's side of one FastAGI call, driven line by line by the test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def call(cls, port: int, environment: bytes = ENVIRONMENT) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(environment)
        await writer.drain()
        return cls(reader, writer)

    async def expect(self, command: str, reply: str) -> None:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line.decode() == command + "\n"
        self.writer.write(reply.encode() + b"\n")
        await self.writer.drain()

    async def command(self) -> str:
        """The next command the controller sends (no reply yet)."""
        return (await asyncio.wait_for(self.reader.readline(), 5)).decode().rstrip("\n")

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
async def controller(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Controller]:
    """The whole controller twice: on its embedded defaults (SQLite, state in process) and as
    several nodes run it (PostgreSQL, call and ACD state in the real Redis)."""
    if request.param == "embedded":
        async with started(serve_settings(tmp_path, {})) as node:
            yield node
        return
    prefix = f"hotline-test:serve:{uuid.uuid4().hex}:"
    async with isolated_postgres("serve") as database_url:
        shared = {
            "HOTLINE_STORE_DATABASE_URL": database_url,
            "HOTLINE_STORE_STATE_BACKEND": "redis",
            "HOTLINE_ROUTING_STATE_BACKEND": "redis",
            "HOTLINE_ROUTING_REDIS_PREFIX": prefix,
        }
        try:
            async with started(serve_settings(tmp_path, shared)) as node:
                assert node.acd is not None and node.acd.settings.state_backend == "redis"
                yield node
        finally:
            await delete_redis_prefix(prefix)


@pytest.fixture
async def controller_without_acd(tmp_path: Path) -> AsyncIterator[Controller]:
    async with started(serve_settings(tmp_path, {"HOTLINE_ROUTING_ENABLED": "false"})) as node:
        yield node


def serve_settings(tmp_path: Path, extra: dict[str, str]) -> Settings:
    """`hotline serve` on the shipped files, the recorder's directories in the test's own."""
    return controller_settings(
        tmp_path,
        {
            **extra,
            "HOTLINE_NODE_NAME": "test-node",
            **recorder_environment(tmp_path / "recorder"),
            **staff_environment(tmp_path, SHIPPED_OPERATORS),
        },
    )


async def call_outcome(node: Controller, call_id: str) -> str | None:
    from hotline.store.db import CallLog

    assert node.engine is not None
    record = await CallLog(node.engine).get(call_id)
    assert record is not None, "the call was not logged"
    return record.outcome


async def test_call_is_answered_tagged_and_queued_to_its_group(controller: Controller) -> None:
    assert controller.agi is not None and controller.acd is not None
    await controller.acd.node.login(ON_DUTY)
    asterisk = await FakeAsterisk.call(controller.agi.port, EMERGENCY)
    await expect_answer_and_recording(asterisk, controller.settings.recorder.spool_dir)
    # the operator hung up and Dial(...,g) handed the call back: the menu ends there
    await expect_emergency_call_through_the_acd(asterisk)
    await expect_done(asterisk)
    assert await asterisk.closed_by_server()
    assert await call_outcome(controller, "1795563091.1") == "answered"
    assert controller.acd is not None
    assert controller.acd.node.acd.operators[ON_DUTY].state.value == "wrap_up"


async def test_with_the_acd_off_asterisk_queue_serves_the_group(
    controller_without_acd: Controller,
) -> None:
    controller = controller_without_acd
    assert controller.agi is not None and controller.acd is None
    asterisk = await FakeAsterisk.call(controller.agi.port, EMERGENCY)
    await expect_answer_and_recording(asterisk, controller.settings.recorder.spool_dir)
    # the operator hung up and Queue(...,c) handed the call back: the menu ends there
    await expect_emergency_menu(asterisk, "200 result=1 (CONTINUE)")
    await expect_done(asterisk)
    assert await asterisk.closed_by_server()
    assert await call_outcome(controller, "1795563091.1") == "answered"


async def test_general_line_starts_with_its_greeting(controller: Controller) -> None:
    assert controller.agi is not None
    asterisk = await FakeAsterisk.call(controller.agi.port)
    await expect_answer_and_recording(asterisk, controller.settings.recorder.spool_dir)
    await asterisk.expect("SET VARIABLE HOTLINE_DID 88001000001", "200 result=1")
    await asterisk.expect(
        'STREAM FILE hotline/greeting-general "0123459"', "200 result=-1 endpos=0"
    )
    await asterisk.send("HANGUP")
    assert await asterisk.closed_by_server()
    assert await call_outcome(controller, "1795563091.1") == "hangup"


async def test_caller_hanging_up_ends_the_call_cleanly(controller: Controller) -> None:
    assert controller.agi is not None
    asterisk = await FakeAsterisk.call(controller.agi.port)
    await asterisk.expect("ANSWER", "200 result=0")
    await asterisk.send("HANGUP")
    # Whether the next command (starting the recording) was already on its way or not, the
    # server ends the session itself: Asterisk never closes a FastAGI socket after a hang-up.
    line = await asyncio.wait_for(asterisk.reader.readline(), 5)
    if line:
        assert line.startswith(b"EXEC MixMonitor ")
        # EXEC runs on a dead channel; MixMonitor has nothing left to record.
        await asterisk.send("200 result=0")
    assert await asterisk.closed_by_server()
    assert await call_outcome(controller, "1795563091.1") == "hangup"


async def test_health_reports_every_part(controller: Controller) -> None:
    assert await controller.health() == {
        "database": "ok",
        "state": "ok",
        "audit": "ok",
        "reporting": "ok",
        "acd": "ok",
        "acd_files": "ok",
        "workspace": "ok",
        "supervision": "ok",
        "recorder": "ok",
        "ami": "disabled",
        "callbacks": "disabled",  # accepted and kept pending: nothing dials without AMI
        "message-deadline": "ok",  # voice messages' call backs checked against the deadline
        "http": "ok",
        "menus": "ok",
        "agi": "listening",
    }


# --- the real command, as an admin starts it ---------------------------------------------


class Served:
    """`hotline serve` as a subprocess, where it said it listens, and its log as it comes
    (a thread reads stderr line by line, so nothing the process writes is lost or waited
    for twice)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.log: list[dict[str, Any]] = []
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.log.append(json.loads(raw))
            if self.log[-1].get("event") == "controller started":
                self._started.set()

    def wait_started(self) -> None:
        assert self._started.wait(timeout=30), f"hotline serve did not start: {self.log[-3:]}"
        started = next(line for line in self.log if line.get("event") == "controller started")
        self.agi_port, self.http_port = int(started["agi_port"]), int(started["http_port"])

    def whole_log(self) -> list[dict[str, Any]]:
        """Every line, once the process has ended."""
        self._reader.join(timeout=30)
        return self.log


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # Port 0 for both: the OS picks free ports, and the start line of the log says which
    # (a port picked by the test beforehand could be taken by another process meanwhile).
    env = {
        **os.environ,
        "HOTLINE_AGI_PORT": "0",
        "HOTLINE_HTTP_PORT": "0",
        "HOTLINE_STORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3",
        "HOTLINE_IVR_VERSIONS_DIR": str(tmp_path / "menu-versions"),
        "HOTLINE_REPORTING_JOURNAL_DIR": str(tmp_path / "facts-journal"),
        **staff_environment(tmp_path, SHIPPED_OPERATORS),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        serving = Served(process)
        serving.wait_started()
        wait_healthy(serving.http_port, process)
        yield serving
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "hotline serve exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                assert answer.status == 200
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("hotline serve never became healthy")


def test_hotline_serve_answers_the_transcript_environment_and_drains_on_sigterm(
    served: Served, tmp_path: Path
) -> None:
    process, agi_port, http_port = served.process, served.agi_port, served.http_port
    login = f"http://127.0.0.1:{http_port}/api/operators/{ON_DUTY}/login"
    request = urllib.request.Request(login, method="POST", headers=as_user(ON_DUTY))
    with urllib.request.urlopen(request, timeout=5) as ok:
        assert json.load(ok)["state"] == "ready"  # the operator API of the served controller

    async def one_call() -> None:
        asterisk = await FakeAsterisk.call(agi_port, EMERGENCY)
        await expect_answer_and_recording(asterisk, tmp_path / "var/recorder/spool")
        # SIGTERM while the caller talks to an operator (Asterisk's Dial, which goes on
        # without the controller): the call must still be able to finish.
        sigterm = partial(process.send_signal, signal.SIGTERM)
        await expect_emergency_call_through_the_acd(asterisk, while_talking=sigterm)
        await expect_done(asterisk)
        assert await asterisk.closed_by_server()

    asyncio.run(one_call())
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    lines = served.whole_log()
    events = [line["event"] for line in lines]
    assert "controller started" in events and "controller stopped" in events
    # What start-up built is out of the full collections' way: a started controller holds
    # well over 10,000 objects (about 150,000), frozen once it has started.
    settled = next(line for line in lines if line["event"] == "start-up heap settled")
    assert events.index("start-up heap settled") > events.index("controller started")
    assert settled["frozen_objects"] > 10_000
    call_lines = [line for line in lines if line.get("call_id") == "1795563091.1"]
    assert call_lines, "no log line carried the call id"
    assert all("79161234567" not in json.dumps(line) for line in lines), "caller number leaked"
    with sqlite3.connect(tmp_path / "calls.sqlite3") as db:
        outcome = db.execute("SELECT outcome FROM calls WHERE call_id = '1795563091.1'")
        assert outcome.fetchone() == ("answered",)


async def test_controller_keeps_its_ami_link_to_the_simulated_asterisk(tmp_path: Path) -> None:
    from hotline.clock import SystemClock
    from pbxsim.ami_accounts import ManagerUser
    from pbxsim.ami_server import AmiServer

    asterisk = AmiServer(
        clock=SystemClock(), users={"hotline": ManagerUser("hotline", "s3cret")}, port=0
    )
    await asterisk.start()
    settings = controller_settings(
        tmp_path,
        {
            "HOTLINE_AMI_ENABLED": "true",
            "HOTLINE_AMI_PORT": str(asterisk.port),
            "HOTLINE_AMI_SECRET": "s3cret",
            **recorder_environment(tmp_path / "recorder"),
        },
    )
    async with started(settings) as node:
        assert node.ami is not None
        await asyncio.wait_for(node.ami.wait_connected(), 10)
        assert (await node.health())["ami"] == "up"
        assert await node.ami.command("core show version") == [
            "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 "
            "23:26:57 UTC"
        ]
        # Asterisk goes away: health says so at once instead of pretending.
        await asterisk.close()
        for _ in range(100):
            if not node.ami.connected:
                break
            await asyncio.sleep(0.05)
        assert (await node.health())["ami"] == "down"


async def test_the_operator_desktop_can_escalate_only_to_listed_agencies(
    controller: Controller,
) -> None:
    """The escalation API is mounted by the controller with the shipped allow-list."""
    import aiohttp

    port = controller.http_port
    url = f"http://127.0.0.1:{port}/api/operators/ivanova/escalate"
    async with aiohttp.ClientSession(headers=as_user("ivanova")) as client:
        async with client.post(url, json={"agency": "anywhere"}) as reply:
            assert reply.status == 400  # not on dialplans/agencies.yaml
            assert "sfr" in (await reply.json())["error"]
        async with client.post(url, json={"agency": "sfr"}) as reply:
            assert reply.status == 409  # listed, but she is not in a conversation
