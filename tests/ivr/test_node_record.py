"""``record``: a voice message, named after the call, with the entries set on the channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotline.agi.session import Recording
from ivr.menu.console import ConsoleChannel, ScriptedKeypad
from ivr.menu.engine import Engine
from ivr.menu.loader import check_menu, parse_menu
from ivr.menu.model import Services

RECORD = """\
number: "1000"
group: general
start: a
nodes:
  a: {kind: set, values: {callback_phone: "79161234567"}, next: r}
  r: {kind: record, prompts: [hotline/record-message], store: message, max_seconds: 60, next: bye}
  bye: {kind: hangup}
"""


class Recorder(ConsoleChannel):
    def __init__(self, call_id: str) -> None:
        super().__init__(ScriptedKeypad([]), call_id=call_id)
        self.recordings: list[tuple[str, int]] = []

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        **options: object,
    ):  # type: ignore[override]
        self.recordings.append((path, timeout_ms))
        return await super().record_file(path, fmt, escape_digits, timeout_ms)


async def test_the_message_is_recorded_with_a_safe_name() -> None:
    channel = Recorder("1795563091.7/../x")  # a hostile call id cannot leave the directory
    result = await Engine().run(
        channel, parse_menu(RECORD, "r.yaml"), Services(recordings_dir="/spool"), _now()
    )
    assert channel.recordings == [("/spool/1795563091.7_.._x-message", 60000)]
    assert result.variables["message"] == "/spool/1795563091.7_.._x-message.wav"
    assert channel.variables["HOTLINE_CALLBACK_PHONE"] == "79161234567"
    assert channel.variables["HOTLINE_MESSAGE"] == "/spool/1795563091.7_.._x-message.wav"
    assert str(result.end) == "hangup"


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 11, 27, 9, tzinfo=UTC)


# --- what the caller hears when the message was not kept ------------------------------------

EMERGENCY = Path(__file__).resolve().parents[2] / "dialplans" / "88005000005.yaml"


class FailingRecorder(Recorder):
    """RECORD FILE answered as Asterisk 22 does when it cannot open the file."""

    def __init__(self, call_id: str, reason: str) -> None:
        super().__init__(call_id)
        self.reason = reason
        self._queue_status = "JOINEMPTY"  # nobody on duty: the menu's message path

    async def record_file(self, path: str, *args: object, **options: object):  # type: ignore[override]
        self.recordings.append((path, 0))
        return Recording(None, 0, self.reason)


@dataclass
class Booking:
    accept: bool
    phones: list[str] = field(default_factory=list)

    async def request(
        self, call_id: str, *, phone: str, group: str, number: str, data: Mapping[str, str]
    ) -> bool:
        self.phones.append(f"{group}:{phone}")
        return self.accept


def emergency_menu():
    return parse_menu(EMERGENCY.read_text(encoding="utf-8"), str(EMERGENCY))


@pytest.mark.parametrize("accept", [True, False])
async def test_the_emergency_line_never_says_saved_for_a_message_that_was_not(
    accept: bool,
) -> None:
    """Nobody on duty, the message cannot be written on the PBX (``(writefile)``): instead
    of "message saved" the caller is offered a call back to their number, or, when that
    cannot be booked either, asked to call later."""
    channel = FailingRecorder("1795563091.8", "writefile")
    booking = Booking(accept)
    result = await Engine().run(
        channel, emergency_menu(), Services(callbacks=booking), _now(), caller_id="79161234567"
    )
    assert "hotline/message-saved" not in channel.played
    said = ["hotline/message-callback"] if accept else ["hotline/call-later"]
    assert channel.played[-3:] == ["hotline/message-not-saved", *said, "hotline/goodbye"]
    assert booking.phones == ["emergency:79161234567"]
    assert "message" not in result.variables and "HOTLINE_MESSAGE" not in channel.variables


async def test_a_saved_message_still_says_saved() -> None:
    channel = FailingRecorder("1795563091.9", "dtmf")
    await Engine().run(channel, emergency_menu(), Services(), _now(), caller_id="79161234567")
    assert channel.played[-2:] == ["hotline/message-saved", "hotline/goodbye"]


def test_the_shipped_emergency_menu_names_every_prompt_it_plays() -> None:
    _, problems = check_menu(EMERGENCY.read_text(encoding="utf-8"), str(EMERGENCY))
    assert problems == []


@dataclass
class Messages:
    """The controller's voice messages as the menu sees them."""

    accept: bool
    received_: list[dict[str, object]] = field(default_factory=list)

    async def received(
        self,
        call_id: str,
        *,
        path: str,
        group: str,
        phone: str,
        number: str,
        data: Mapping[str, str],
    ) -> bool:
        self.received_.append({"path": path, "group": group, "phone": phone, "data": dict(data)})
        return self.accept


WITH_PHONE = """\
number: "1000"
group: emergency
start: a
nodes:
  a: {kind: set, values: {callback_phone: "89161234567", topic: "авария"}, next: r}
  r:
    kind: record
    prompts: [hotline/record-message]
    phone: callback_phone
    next: saved
  saved: {kind: hangup, prompts: [hotline/message-saved]}
"""


@pytest.mark.parametrize("reason", ["dtmf", "timeout", "hangup"])
async def test_a_saved_message_is_handed_over_with_the_number_to_call_back(reason: str) -> None:
    channel = FailingRecorder("1795563091.10", reason)
    messages = Messages(accept=True)
    services = Services(recordings_dir="/spool", messages=messages)
    await Engine().run(channel, parse_menu(WITH_PHONE, "m.yaml"), services, _now())
    assert messages.received_ == [
        {
            "path": "/spool/1795563091.10-message.wav",
            "group": "emergency",
            "phone": "89161234567",
            "data": {"callback_phone": "89161234567", "topic": "авария"},
        }
    ]


async def test_a_message_nobody_took_is_not_called_saved() -> None:
    channel = FailingRecorder("1795563091.11", "dtmf")
    services = Services(recordings_dir="/spool", messages=Messages(accept=False))
    result = await Engine().run(channel, parse_menu(WITH_PHONE, "m.yaml"), services, _now())
    assert channel.played[-2:] == ["hotline/message-not-saved", "hotline/call-later"]
    assert result.end is not None and result.end.outcome == "message_not_saved"
