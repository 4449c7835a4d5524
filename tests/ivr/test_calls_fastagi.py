"""Simulated calls on every number at chosen moments (workday, evening, Saturday, public
holiday, surge), end to end: the PBX simulator plays Asterisk (FastAGI client, callers pressing
keys at given seconds), the real FastAGI server runs the entry with the shipped menus, the call
log is a real database (SQLite) and the status lookups go to the stand-in status service."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from agi_peer import AsteriskPeer, env_bytes, serving
from ports import bound_port
from sqlalchemy.exc import TimeoutError as PoolTimeout

from hotline import say_ru
from hotline.agi.router import Router
from hotline.agi.server import FastAgiServer
from hotline.store.db import Base, CallLog, create_engine
from hotline.validators import VALIDATORS
from ivr.entry import CallEntry
from ivr.menu.history import CallLogHistory
from ivr.menu.library import load_library
from ivr.menu.model import Services
from ivr.menu.status import HttpStatusService
from pbxsim.model import SimChannel
from pbxsim.runner import CallOutcome, run_scenario
from pbxsim.scenario import parse_scenario
from pbxsim.status_service import load_fixtures, serve

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
MOSCOW = ZoneInfo("Europe/Moscow")
WORKDAY = datetime(2026, 11, 27, 12, 0, tzinfo=MOSCOW)  # Friday
EVENING = datetime(2026, 11, 27, 21, 30, tzinfo=MOSCOW)
SATURDAY = datetime(2026, 11, 28, 11, 0, tzinfo=MOSCOW)
HOLIDAY = datetime(2026, 11, 4, 11, 0, tzinfo=MOSCOW)  # Unity Day: open 10-14
NIGHT = datetime(2026, 11, 29, 3, 0, tzinfo=MOSCOW)  # Sunday night


@dataclass
class Queues:
    """The ACD half, reduced to what QUEUESTATUS says: every queue answers, or reports
    `status`. An answered call ends, as in app_queue, with the caller hung up (ANSWERED), or
    with option ``c`` back in the menu with QUEUESTATUS=CONTINUE."""

    status: str = "ANSWERED"
    entered: list[tuple[str, str]] = field(default_factory=list)

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str:
        self.entered.append((queue, options))
        if self.status == "ANSWERED" and "c" in options:
            return "CONTINUE"
        return self.status


@dataclass
class Commands:
    """The AGI commands of each call, from the simulator's AGIExecStart events."""

    by_call: dict[str, list[str]] = field(default_factory=dict)

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        if event == "AGIExecStart":
            fields = dict(headers)
            self.by_call.setdefault(fields["Uniqueid"], []).append(fields["Command"])


@dataclass
class Hotline:
    """The controller's side: FastAGI server, entry, call log; `now` is the menus' clock and
    `surge` the admin's switch."""

    port: int
    log: CallLog
    messages: Path = Path("/nonexistent")  # where the menus record voice messages
    now: datetime = WORKDAY
    surge: bool = False
    runs: int = 0

    async def call(
        self,
        number: str,
        dtmf: list[tuple[float, str]] = (),  # type: ignore[assignment]
        *,
        at: datetime,
        caller_id: str = "79035550011",
        surge: bool = False,
        queues: Queues | None = None,
        hangup_after: float = 600,
    ) -> tuple[CallOutcome, list[str], str | None]:
        """One call; its outcome, its AGI commands and what the call log recorded."""
        self.now, self.surge = at, surge
        self.runs += 1
        presses = ", ".join(f"{{at: {t}, digits: '{d}'}}" for t, d in dtmf)
        scenario = parse_scenario(
            f"pbx: {{epoch: {1795563000 + self.runs}}}\n"
            f"calls: [{{number: '{number}', caller_id: '{caller_id}', dtmf: [{presses}],"
            f" hangup_after: {hangup_after}}}]\n"
        )
        commands = Commands()
        # The menus never leave the caller waiting outside a command, so a generous idle
        # grace only keeps simulated time from jumping ahead while the controller does a
        # lookup on a loaded machine.
        report = await run_scenario(
            scenario,
            "127.0.0.1",
            self.port,
            sink=commands,
            queues=queues or Queues(),
            idle_grace=5.0,
        )
        (outcome,) = report.calls
        assert outcome.error is None, outcome.error
        record = await self.log.get(outcome.uniqueid)
        assert record is not None, "the call was not logged"
        return outcome, commands.by_call[outcome.uniqueid], record.outcome


@pytest.fixture
async def hotline(tmp_path: Path) -> AsyncIterator[Hotline]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    status = await serve(load_fixtures(DIALPLANS / "status-fixtures.yaml"), "127.0.0.1", 0)
    status_port = bound_port(status)
    log = CallLog(engine)
    messages = tmp_path / "messages"
    messages.mkdir()
    holder = Hotline(0, log, messages)
    services = Services(
        status=HttpStatusService(f"http://127.0.0.1:{status_port}"),
        history=CallLogHistory(engine),
        validators=VALIDATORS,
        say=say_ru,
        # an existing directory: the simulator, like Asterisk, refuses to record elsewhere
        recordings_dir=str(messages),
    )
    library, problems = load_library(DIALPLANS, services, "88001000001", lambda: holder.surge)
    assert problems == []
    router = Router()
    router.add("hotline", CallEntry(log, "test-node", library=library, clock=lambda: holder.now))
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()
    holder.port = server.port
    try:
        yield holder
    finally:
        await server.drain(5)
        await status.cleanup()
        await engine.dispose()


def queued(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("EXEC Queue")]


def tagged(commands: list[str]) -> dict[str, str]:
    """The channel variables the menu set for the operator's screen (not the checkpoints it
    leaves for a handed-back call, HOTLINE_RESUME)."""
    found = {}
    for command in commands:
        if command.startswith("SET VARIABLE HOTLINE_RESUME "):
            continue
        if command.startswith("SET VARIABLE HOTLINE_"):
            name, _, value = command.removeprefix("SET VARIABLE ").partition(" ")
            found[name] = value.strip('"')
    return found


# --- 8-800-100-00-01, general --------------------------------------------------------------


async def test_general_workday_registration_help_then_operator(hotline: Hotline) -> None:
    # 1 s: "2" during the greeting (barge-in); 3 s: "4" (password reset) during the
    # registration menu; 7 s: "0" (operator) after the information
    outcome, commands, logged = await hotline.call(
        "88001000001", [(1, "2"), (3, "4"), (7, "0")], at=WORKDAY
    )
    assert outcome.prompts[:4] == (
        "hotline/greeting-general",
        "hotline/registration-menu",
        "hotline/info-password-reset",
        "hotline/after-info-menu",
    )
    assert queued(commands) == ['EXEC Queue "hotline-registration,tc,,,1800"']
    assert tagged(commands) == {
        "HOTLINE_DID": "88001000001",
        "HOTLINE_TOPIC": "регистрация и вход",
        "HOTLINE_GROUP": "registration",
    }
    assert logged == "answered"


async def test_general_evening_silent_caller_hears_the_hours_and_is_let_go(
    hotline: Hotline,
) -> None:
    outcome, commands, logged = await hotline.call("88001000001", [], at=EVENING)
    assert outcome.prompts[:3] == (
        "hotline/greeting-general",
        "hotline/closed-now",
        "hotline/hours-info",
    )
    assert outcome.prompts.count("hotline/after-hours-menu") == 2
    assert outcome.prompts[-2:] == ("hotline/thank-you", "hotline/goodbye")
    assert queued(commands) == []  # nobody to answer at 21:30
    assert commands[-1] == "HANGUP"
    assert logged == "completed"


async def test_a_call_log_too_busy_when_the_call_comes_in_still_logs_the_whole_call(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded 2-core CI saw the database pool time out at a call's first write: the call
    failed back to the dialplan and its row was never written. Now the caller hears the
    menu as usual and the row, with its outcome, is written at the end."""
    real = hotline.log.call_started
    refused: list[str] = []

    async def busy_once(call_id: str, **fields: Any) -> Any:
        if not refused:
            refused.append(call_id)
            raise PoolTimeout("QueuePool limit of size 5 overflow 10 reached")
        return await real(call_id, **fields)

    monkeypatch.setattr(hotline.log, "call_started", busy_once)
    outcome, commands, logged = await hotline.call("88001000001", [], at=EVENING)
    assert refused == [outcome.uniqueid]
    # served by the session Asterisk opened: not failed back to the dialplan and re-entered
    # (which, with the store still busy, would end in the fallback queue unlogged)
    assert "GET VARIABLE HOTLINE_RESUME" not in commands
    assert outcome.prompts[:2] == ("hotline/greeting-general", "hotline/closed-now")
    assert outcome.prompts[-2:] == ("hotline/thank-you", "hotline/goodbye")
    assert logged == "completed"
    record = await hotline.log.get(outcome.uniqueid)
    assert record is not None and record.dialled_number == "88001000001"
    assert record.caller_id == "79035550011"


async def test_general_evening_callback_request(hotline: Hotline) -> None:
    # "2" during the self-service offer, then the callback number and # while asked for it
    outcome, commands, logged = await hotline.call(
        "88001000001", [(5, "2"), (7, "89161234567#")], at=EVENING
    )
    assert "hotline/enter-phone" in outcome.prompts
    assert tagged(commands)["HOTLINE_CALLBACK_PHONE"] == "79161234567"
    assert any(c.startswith("RECORD FILE") for c in commands)
    assert outcome.prompts[-2:] == ("hotline/callback-accepted", "hotline/goodbye")
    assert logged == "completed"


async def test_general_saturday_application_status_then_operator(hotline: Hotline) -> None:
    # "4" during the greeting, the application number while asked, "0" after the status
    outcome, commands, logged = await hotline.call(
        "88001000001", [(1, "4"), (3, "1234567897#"), (15, "0")], at=SATURDAY
    )
    assert "hotline/status-accepted" in outcome.prompts  # from the status service
    assert "hotline/status-updated" in outcome.prompts
    date_files = say_ru.date_files(datetime(2026, 11, 25).date())
    assert all(name in outcome.prompts for name in date_files)
    assert queued(commands) == ['EXEC Queue "hotline-application-status,tc,,,1800"']
    assert tagged(commands)["HOTLINE_APPLICATION"] == "1234567897"
    assert "SET VARIABLE QUEUE_PRIO 1" in commands
    assert logged == "answered"


async def test_general_holiday_short_hours_note_then_operator(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call("88001000001", [(5, "0")], at=HOLIDAY)
    assert outcome.prompts[:3] == (
        "hotline/greeting-general",
        "hotline/holiday-today",
        "hotline/general-main-menu",
    )
    assert queued(commands) == ['EXEC Queue "hotline-general,tc,,,1800"']
    assert logged == "answered"


async def test_general_surge_at_night_reaches_an_operator(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call("88001000001", [(3, "0")], at=NIGHT, surge=True)
    assert outcome.prompts[:2] == ("hotline/greeting-general", "hotline/surge-mode")
    assert queued(commands) == ['EXEC Queue "hotline-general,tc,,,1800"']
    assert logged == "answered"


async def test_general_same_night_without_surge_is_closed(hotline: Hotline) -> None:
    outcome, commands, _ = await hotline.call("88001000001", [(3, "0")], at=NIGHT)
    assert "hotline/closed-now" in outcome.prompts and queued(commands) == []


async def test_a_caller_who_called_before_is_welcomed_back(hotline: Hotline) -> None:
    first, _, _ = await hotline.call("88001000001", [(5, "0")], at=WORKDAY, caller_id="79260000001")
    again, _, _ = await hotline.call("88001000001", [(5, "0")], at=WORKDAY, caller_id="79260000001")
    assert "hotline/welcome-back" not in first.prompts
    assert again.prompts[:2] == ("hotline/greeting-general", "hotline/welcome-back")


async def test_only_wrong_keys_end_with_an_operator_not_a_loop(hotline: Hotline) -> None:
    presses = [(3 + 2.5 * n, "7") for n in range(6)]
    outcome, commands, logged = await hotline.call("88001000001", presses, at=WORKDAY)
    assert outcome.prompts.count("hotline/invalid-input") == 3
    assert queued(commands) == ['EXEC Queue "hotline-general,tc,,,1800"']
    assert logged == "answered"


async def test_nobody_answering_offers_a_callback(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call(
        "88001000001", [(1, "0")], at=WORKDAY, queues=Queues("JOINEMPTY")
    )
    assert queued(commands) == ['EXEC Queue "hotline-general,tc,,,1800"']
    assert "hotline/all-busy" in outcome.prompts and "hotline/callback-menu" in outcome.prompts
    assert logged == "joinempty"


async def test_an_unknown_number_gets_the_general_menu(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call("88007777777", [(1, "0")], at=WORKDAY)
    assert logged == "answered"
    assert outcome.prompts[0] == "hotline/greeting-general"
    assert tagged(commands)["HOTLINE_DID"] == "88007777777"
    assert queued(commands) == ['EXEC Queue "hotline-general,tc,,,1800"']


async def test_a_caller_hanging_up_mid_menu_is_logged_as_hangup(hotline: Hotline) -> None:
    outcome, _, logged = await hotline.call("88001000001", [], at=WORKDAY, hangup_after=3)
    assert outcome.caller_hung_up and logged == "hangup"


# --- 8-800-200-00-02 documents, 300-00-03 business, 400-00-04 social, emergency ------------


async def test_documents_workday_apply_online_then_operator(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call("88002000002", [(1, "1"), (5, "0")], at=WORKDAY)
    assert outcome.prompts[:3] == (
        "hotline/greeting-documents",
        "hotline/info-apply-online",
        "hotline/after-info-menu",
    )
    assert queued(commands) == ['EXEC Queue "hotline-documents,tc,,,1800"']
    assert logged == "answered"


async def test_documents_evening_operator_key_offers_a_callback(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call("88002000002", [(7, "0")], at=EVENING)
    assert outcome.prompts[:3] == (
        "hotline/greeting-documents",
        "hotline/closed-now",
        "hotline/hours-info",
    )
    assert "hotline/callback-menu" in outcome.prompts and queued(commands) == []
    assert logged == "completed"


async def test_business_saturday_question_with_inn(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call(
        "88003000003", [(1, "2"), (3, "7707083893#")], at=SATURDAY
    )
    assert "hotline/enter-inn" in outcome.prompts
    assert queued(commands) == ['EXEC Queue "hotline-business,tc,,,1800"']
    assert tagged(commands)["HOTLINE_INN"] == "7707083893"
    assert tagged(commands)["HOTLINE_TOPIC"] == "вопрос по организации"
    assert logged == "answered"


async def test_social_holiday_question_with_snils(hotline: Hotline) -> None:
    outcome, commands, logged = await hotline.call(
        "88004000004", [(3, "2"), (5, "11223344595#")], at=HOLIDAY
    )
    assert outcome.prompts[:2] == ("hotline/greeting-social", "hotline/holiday-today")
    assert queued(commands) == ['EXEC Queue "hotline-social,tc,,,1800"']
    assert tagged(commands)["HOTLINE_SNILS"] == "11223344595"
    assert logged == "answered"


@pytest.mark.parametrize(
    "at", [WORKDAY, EVENING, HOLIDAY, NIGHT], ids=["workday", "evening", "holiday", "night"]
)
async def test_emergency_answers_at_any_hour_straight_to_on_duty(
    hotline: Hotline, at: datetime
) -> None:
    outcome, commands, logged = await hotline.call("88005000005", [], at=at)
    assert outcome.prompts == ("hotline/greeting-emergency",)
    assert "SET VARIABLE QUEUE_PRIO 10" in commands
    assert queued(commands) == ['EXEC Queue "hotline-emergency,tc,,,1800"']
    assert logged == "answered"


async def test_with_no_menu_at_all_the_caller_is_still_queued(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    log = CallLog(engine)
    library, _ = load_library(tmp_path, Services(), "88001000001")  # no menu files here
    router = Router()
    router.add("hotline", CallEntry(log, "test-node", library=library, clock=lambda: WORKDAY))
    server = FastAgiServer(router, host="127.0.0.1", port=0)
    await server.start()
    try:
        commands = Commands()
        scenario = parse_scenario("pbx: {epoch: 1795560000}\ncalls: [{number: '88001000001'}]\n")
        report = await run_scenario(
            scenario, "127.0.0.1", server.port, sink=commands, queues=Queues("TIMEOUT")
        )
        (outcome,) = report.calls
        record = await log.get(outcome.uniqueid)
    finally:
        await server.drain(5)
        await engine.dispose()
    assert queued(commands.by_call[outcome.uniqueid]) == ['EXEC Queue "hotline-general,t,,,1800"']
    assert record is not None and record.outcome == "timeout"


# --- transfer and record over FastAGI ------------------------------------------------------


async def test_emergency_unanswered_caller_leaves_a_recorded_message(hotline: Hotline) -> None:
    # nobody on duty is logged in: the caller records a message and presses # to finish it
    outcome, commands, logged = await hotline.call(
        "88005000005", [(30, "#")], at=NIGHT, queues=Queues("JOINEMPTY")
    )
    assert queued(commands) == ['EXEC Queue "hotline-emergency,tc,,,1800"']
    path = f"{hotline.messages}/{outcome.uniqueid}-message"
    records = [c for c in commands if c.startswith("RECORD FILE")]
    assert records == [f'RECORD FILE {path} wav "#" 120000 0 BEEP s=5']
    assert tagged(commands)["HOTLINE_MESSAGE"] == f"{path}.wav"
    assert outcome.prompts[-2:] == ("hotline/message-saved", "hotline/goodbye")
    assert commands[-1] == "HANGUP"
    assert logged == "joinempty"  # the call log keeps what the queue said
    # the simulator wrote it, as Asterisk would
    assert os.listdir(hotline.messages) == [f"{outcome.uniqueid}-message.wav"]


async def test_emergency_message_the_pbx_cannot_write_is_not_called_saved(
    hotline: Hotline,
) -> None:
    """The issue's night on the emergency line: nobody on duty, and the messages directory
    missing on the PBX host: RECORD FILE answers ``(writefile)``; the caller is told and a
    call back is arranged instead of hearing "message saved"."""
    hotline.messages.rmdir()
    outcome, commands, logged = await hotline.call(
        "88005000005", [(30, "#")], at=NIGHT, queues=Queues("JOINEMPTY")
    )
    assert any(c.startswith("RECORD FILE") for c in commands)
    assert "hotline/message-saved" not in outcome.prompts
    assert outcome.prompts[-3:] == (
        "hotline/message-not-saved",
        "hotline/message-callback",
        "hotline/goodbye",
    )
    assert "HOTLINE_MESSAGE" not in tagged(commands)
    assert logged == "joinempty"  # the call log keeps what the queue said


# A menu with a transfer and a voice message, served through the real FastAGI server to a raw
# Asterisk peer: the simulator has no Dial(), and the peer says what Asterisk would.
TRANSFER_MENU = """\
number: "88009000020"
title: перевод и сообщение
group: general
start: choose
nodes:
  choose:
    kind: menu
    prompts: [hotline/choose]
    options: {"1": ambulance, "2": complaint}
    fallback: bye
  ambulance: {kind: transfer, number: "103", prompts: [hotline/transferring]}
  complaint: {kind: set, values: {topic: "жалоба"}, next: message}
  message:
    kind: record
    prompts: [hotline/leave-message]
    store: message
    max_seconds: 60
    silence: 4
    next: bye
  bye: {kind: hangup, prompts: [hotline/goodbye]}
"""


@dataclass
class RawHotline:
    port: int
    log: CallLog


@pytest.fixture
async def raw_hotline(tmp_path: Path) -> AsyncIterator[RawHotline]:
    (tmp_path / "88009000020.yaml").write_text(TRANSFER_MENU, "utf-8")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    log = CallLog(engine)
    library, problems = load_library(tmp_path, Services(), "88009000020")
    assert problems == []
    entry = CallEntry(log, "test-node", library=library, clock=lambda: WORKDAY)
    try:
        async with serving({"hotline": entry}) as server:
            yield RawHotline(server.port, log)
    finally:
        await engine.dispose()


async def raw_call(
    port: int, replies: dict[str, str], uniqueid: str, dead_after: str | None = None
) -> list[str]:
    """One call from a raw Asterisk peer: every command answered by the first reply whose
    prefix it starts with, until the server closes the call; the commands it sent. After the
    command starting with `dead_after` the caller is gone: Asterisk answers 511 to all."""
    peer = await AsteriskPeer.connect(
        port,
        env_bytes(
            network_script="hotline?did=88009000020",
            request="agi://127.0.0.1:4573/hotline?did=88009000020",
            extension="88009000020",
            uniqueid=uniqueid,
        ),
    )
    commands: list[str] = []
    dead = False
    try:
        while line := await peer.read_line():
            command = line.decode().rstrip("\n")
            commands.append(command)
            if dead:
                await peer.reply(DEAD_CHANNEL)
                continue
            await peer.reply(next(r for p, r in replies.items() if command.startswith(p)))
            dead = dead_after is not None and command.startswith(dead_after)
    finally:
        await peer.close()
    return commands


DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
ASTERISK = {
    "ANSWER": "200 result=0",
    "SET VARIABLE": "200 result=1",
    "STREAM FILE hotline/choose": "200 result=0 endpos=8000",
    "STREAM FILE": "200 result=0 endpos=8000",
    "WAIT FOR DIGIT": "200 result=0",
    "HANGUP": "200 result=1",
}


@pytest.mark.parametrize(
    ("dial_status", "logged"),
    [("ANSWER", "transfer answer"), ("BUSY", "transfer busy"), (None, "transfer unknown")],
)
async def test_transfer_dials_the_number_and_the_log_keeps_how_it_went(
    raw_hotline: RawHotline, dial_status: str | None, logged: str
) -> None:
    replies = {
        **ASTERISK,
        "STREAM FILE hotline/choose": "200 result=49 endpos=4000",  # "1" during the menu
        "EXEC Dial": "200 result=0",
        # app_dial leaves DIALSTATUS unset when Dial() could not even start
        "GET VARIABLE DIALSTATUS": f"200 result=1 ({dial_status})"
        if dial_status
        else "200 result=0",
    }
    commands = await raw_call(raw_hotline.port, replies, "1795563100.7")
    # a number that did not answer is said so, not left as silence before the line drops
    told = [] if dial_status == "ANSWER" else ['STREAM FILE hotline/transfer-failed ""']
    assert commands[-4 - len(told) :] == [
        'STREAM FILE hotline/transferring ""',
        'EXEC Dial "Local/103@hotline-transfer,60"',
        "GET VARIABLE DIALSTATUS",
        *told,
        "SET VARIABLE HOTLINE_DONE 1",  # finished: the dialplan hangs up, no re-entry
    ]
    assert "HANGUP" not in commands  # the line belongs to the number it was transferred to
    assert tagged(commands) == {"HOTLINE_DID": "88009000020", "HOTLINE_DONE": "1"}
    record = await raw_hotline.log.get("1795563100.7")
    assert record is not None and record.outcome == logged


async def test_record_keeps_the_message_with_what_the_caller_chose(
    raw_hotline: RawHotline,
) -> None:
    replies = {
        **ASTERISK,
        "STREAM FILE hotline/choose": "200 result=50 endpos=4000",  # "2": a complaint
        "RECORD FILE": "200 result=35 (dtmf) endpos=96000",  # the caller pressed #
    }
    # a hostile unique id cannot steer where the message is written
    commands = await raw_call(raw_hotline.port, replies, "1795563100.8/../../etc/passwd")
    path = "/var/spool/asterisk/hotline-messages/1795563100.8_.._.._etc_passwd-message"
    record_at = commands.index(f'RECORD FILE {path} wav "#" 60000 0 BEEP s=4')
    # what the caller chose is on the channel before the recording starts
    assert commands[record_at - 1] == "SET VARIABLE HOTLINE_TOPIC жалоба"
    # a call handed back now resumes after the recording (at "bye"), not recording again
    resume = commands[record_at + 2]
    assert resume.startswith("SET VARIABLE HOTLINE_RESUME v=1&menu=88009000020&node=bye&")
    assert commands[record_at + 1 :] == [
        f"SET VARIABLE HOTLINE_MESSAGE {path}.wav",
        resume,
        'STREAM FILE hotline/goodbye ""',
        "HANGUP",
        "SET VARIABLE HOTLINE_DONE 1",
    ]
    record = await raw_hotline.log.get("1795563100.8/../../etc/passwd")
    assert record is not None and record.outcome == "completed"


async def test_a_caller_hanging_up_during_the_recording_is_logged_as_hangup(
    raw_hotline: RawHotline,
) -> None:
    replies = {
        **ASTERISK,
        "STREAM FILE hotline/choose": "200 result=50 endpos=4000",
        "RECORD FILE": "200 result=-1 (hangup) endpos=16000",
    }
    commands = await raw_call(raw_hotline.port, replies, "1795563100.9", dead_after="RECORD")
    # the first command after the hang-up is refused and the menu stops there
    assert commands[-2].startswith("RECORD FILE")
    assert commands[-1].startswith("SET VARIABLE HOTLINE_MESSAGE")
    record = await raw_hotline.log.get("1795563100.9")
    assert record is not None and record.outcome == "hangup"


@pytest.mark.parametrize(
    "failed",
    [
        "200 result=-1 (writefile)",  # the directory is missing on the PBX host
        "200 result=-1 (waitfor) endpos=0",
        "200 result=-1 (randomerror) endpos=0",  # the beep could not be played
        "200 result=35 (randomerror) endpos=0",  # "#" during the beep: nothing recorded
        "200 result=-1",  # the silence detector could not be set up
    ],
)
async def test_a_message_asterisk_did_not_save_is_never_called_saved(
    raw_hotline: RawHotline, failed: str
) -> None:
    """RECORD FILE's failure forms (Asterisk 22's handle_recordfile): the caller is told the
    message could not be kept and to call later; the call is not tagged with a message."""
    replies = {
        **ASTERISK,
        "STREAM FILE hotline/choose": "200 result=50 endpos=4000",
        "RECORD FILE": failed,
    }
    commands = await raw_call(raw_hotline.port, replies, "1795563100.10")
    record_at = next(n for n, c in enumerate(commands) if c.startswith("RECORD FILE"))
    assert commands[record_at + 1 :] == [
        'STREAM FILE hotline/message-not-saved ""',
        'STREAM FILE hotline/call-later ""',
        "SET VARIABLE HOTLINE_DONE 1",
    ]
    record = await raw_hotline.log.get("1795563100.10")
    assert record is not None and record.outcome == "message_not_saved"
