"""Whole calls of the shipped general line (8-800-100-00-01) through the real FastAGI server,
byte for byte: every command line the controller writes to Asterisk, in order, with the
checkpoints it leaves for a handed-back call. The engine's speed-ups (precomputed command
parts, cached checkpoints, cached opening hours) must not change a single byte of these."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agi_peer import AsteriskPeer, env_bytes, serving

from hotline import say_ru
from hotline.validators import VALIDATORS
from ivr.entry import CallEntry
from ivr.menu.library import load_library
from ivr.menu.model import Services

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
GENERAL = "88001000001"
MOSCOW = ZoneInfo("Europe/Moscow")
WORKDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=MOSCOW)  # Friday
HOLIDAY = datetime(2026, 11, 4, 11, 0, tzinfo=MOSCOW)  # Unity Day, open 10-14
EVENING = datetime(2026, 11, 27, 21, 30, tzinfo=MOSCOW)

TOPIC = "%D0%BE%D0%B1%D1%89%D0%B8%D0%B9+%D0%B2%D0%BE%D0%BF%D1%80%D0%BE%D1%81"  # общий вопрос
PAYMENTS = "%D0%BE%D0%BF%D0%BB%D0%B0%D1%82%D0%B0"  # оплата
GENERAL_TOPIC = f"&var.topic={TOPIC}&var.group=general"
PAYMENTS_TOPIC = f"&var.topic={PAYMENTS}&var.group=payments"


def checkpoint(node: str, state: str = "") -> str:
    """The command line that leaves a checkpoint (`ivr.menu.resume`) on the channel."""
    return f"SET VARIABLE HOTLINE_RESUME v=1&menu=88001000001&node={node}{state}"


def lines(*commands: str) -> bytes:
    return "".join(command + "\n" for command in commands).encode()


async def call_bytes(
    at: datetime, keys: str, *, reentry: str = "0", carried: str = "", surge: bool = False
) -> bytes:
    """One call of the general line at `at`: the caller presses the next of `keys` whenever
    WAIT FOR DIGIT asks (0 once they run out); every prompt plays to its end and the queue
    answers. Returns every byte the controller wrote."""
    library, problems = load_library(
        DIALPLANS, Services(validators=VALIDATORS, say=say_ru), GENERAL, lambda: surge
    )
    assert problems == []
    entry = CallEntry(None, "test-node", library=library, clock=lambda: at)
    pressed: Iterator[str] = iter(keys)
    written = b""
    async with serving({"hotline": entry}) as server:
        peer = await AsteriskPeer.connect(
            server.port,
            env_bytes(
                network_script=f"hotline?did={GENERAL}&reentry={reentry}",
                request=f"agi://127.0.0.1:4573/hotline?did={GENERAL}&reentry={reentry}",
                extension=GENERAL,
                uniqueid="1795563091.7",
            ),
        )
        try:
            while line := await peer.read_line():
                written += line
                await peer.reply(_answer(line, pressed, carried))
        finally:
            await peer.close()
    return written


def _answer(line: bytes, pressed: Iterator[str], carried: str) -> str:
    if line.startswith(b"WAIT FOR DIGIT"):
        return f"200 result={ord(next(pressed, '0'))}"
    if line.startswith(b"STREAM FILE"):
        return "200 result=0 endpos=8000"
    if line.startswith(b"GET VARIABLE HOTLINE_RESUME"):
        return f"200 result=1 ({carried})" if carried else "200 result=0"
    if line.startswith(b"GET VARIABLE QUEUESTATUS"):
        return "200 result=1 (CONTINUE)"
    return "200 result=1" if line.startswith((b"SET VARIABLE", b"HANGUP")) else "200 result=0"


async def test_a_workday_call_to_the_operator_without_a_rating_writes_these_bytes() -> None:
    written = await call_bytes(WORKDAY_NOON, "0")
    assert written == lines(
        "ANSWER",
        "SET VARIABLE HOTLINE_DID 88001000001",
        'STREAM FILE hotline/greeting-general "0123459"',
        checkpoint("main-menu"),
        'STREAM FILE hotline/general-main-menu "1234580"',
        "WAIT FOR DIGIT 5000",
        checkpoint("operator-hours", GENERAL_TOPIC),
        checkpoint("queue-general", GENERAL_TOPIC),
        'SET VARIABLE HOTLINE_TOPIC "общий вопрос"',
        "SET VARIABLE HOTLINE_GROUP general",
        'EXEC Queue "hotline-general,tc,,,1800"',
        "GET VARIABLE QUEUESTATUS",
        checkpoint("rate", "&queued=general%3Aanswered" + GENERAL_TOPIC),
        'STREAM FILE hotline/rating-request "12345"',
        "WAIT FOR DIGIT 5000",
        'STREAM FILE hotline/rating-request "12345"',
        "WAIT FOR DIGIT 5000",
        'STREAM FILE hotline/thank-you ""',
        'STREAM FILE hotline/goodbye ""',
        "HANGUP",
        "SET VARIABLE HOTLINE_DONE 1",
    )


async def test_a_holiday_call_about_payments_rated_five_writes_these_bytes() -> None:
    written = await call_bytes(HOLIDAY, "505")
    assert written == lines(
        "ANSWER",
        "SET VARIABLE HOTLINE_DID 88001000001",
        'STREAM FILE hotline/greeting-general "0123459"',
        'STREAM FILE hotline/holiday-today "0123459"',
        checkpoint("main-menu"),
        'STREAM FILE hotline/general-main-menu "1234580"',
        "WAIT FOR DIGIT 5000",
        'STREAM FILE hotline/info-payments "09"',
        checkpoint("payments-after"),
        'STREAM FILE hotline/after-info-menu "90"',
        "WAIT FOR DIGIT 5000",
        checkpoint("operator-hours", PAYMENTS_TOPIC),
        checkpoint("queue-payments", PAYMENTS_TOPIC),
        "SET VARIABLE HOTLINE_TOPIC оплата",
        "SET VARIABLE HOTLINE_GROUP payments",
        'EXEC Queue "hotline-payments,tc,,,1800"',
        "GET VARIABLE QUEUESTATUS",
        checkpoint("rate", "&queued=payments%3Aanswered" + PAYMENTS_TOPIC),
        'STREAM FILE hotline/rating-request "12345"',
        "WAIT FOR DIGIT 5000",
        "SET VARIABLE HOTLINE_RATING 5",
        'STREAM FILE hotline/rating-thanks ""',
        checkpoint("goodbye", "&queued=payments%3Aanswered" + PAYMENTS_TOPIC + "&var.rating=5"),
        'STREAM FILE hotline/thank-you ""',
        'STREAM FILE hotline/goodbye ""',
        "HANGUP",
        "SET VARIABLE HOTLINE_DONE 1",
    )


async def test_a_call_handed_back_in_the_queue_resumes_there_and_writes_these_bytes() -> None:
    # in the evening, with surge on: the checkpoint, not the hours, decides where it goes on
    carried = f"v=1&menu=88001000001&node=queue-general{GENERAL_TOPIC}"
    written = await call_bytes(EVENING, "", reentry="1", carried=carried, surge=True)
    assert written == lines(
        "ANSWER",
        "SET VARIABLE HOTLINE_DID 88001000001",
        "GET VARIABLE HOTLINE_RESUME",
        # no checkpoint: the call is where the carried one says
        'SET VARIABLE HOTLINE_TOPIC "общий вопрос"',
        "SET VARIABLE HOTLINE_GROUP general",
        'EXEC Queue "hotline-general,tc,,,1800"',
        "GET VARIABLE QUEUESTATUS",
        checkpoint("rate", "&queued=general%3Aanswered" + GENERAL_TOPIC),
        'STREAM FILE hotline/rating-request "12345"',
        "WAIT FOR DIGIT 5000",
        'STREAM FILE hotline/rating-request "12345"',
        "WAIT FOR DIGIT 5000",
        'STREAM FILE hotline/thank-you ""',
        'STREAM FILE hotline/goodbye ""',
        "HANGUP",
        "SET VARIABLE HOTLINE_DONE 1",
    )
