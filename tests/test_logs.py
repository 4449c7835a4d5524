"""Structured logs: one line per event, call ids from context, personal data masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from hotline.logs import (
    _NUMBERS,
    JsonFormatter,
    bind_call,
    configure_logging,
    current_call_id,
    mask_field,
    mask_personal,
    reset_call_id,
    set_call_id,
)
from hotline.settings import LogSettings

log = logging.getLogger("hotline.test")

Format = Literal["json", "text"]
Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Capture = Callable[..., io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Install the hotline handler on a buffer; put the root logger back afterwards."""
    root = logging.getLogger()
    level = root.level
    installed: list[logging.Handler] = []

    def install(fmt: Format, level: Level = "DEBUG") -> io.StringIO:
        buffer = io.StringIO()
        installed.append(configure_logging(LogSettings(level=level, format=fmt), buffer))
        return buffer

    yield install
    for handler in installed:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(buffer)]


# --- JSON format ---------------------------------------------------------------------------


def test_json_one_object_per_event(capture: Capture) -> None:
    buffer = capture("json")
    log.info("first")
    log.warning("second %d", 2, extra={"queue": "general", "waiting": 3})
    first, second = records(buffer)
    assert first["event"] == "first"
    assert first["level"] == "INFO"
    assert first["logger"] == "hotline.test"
    assert first["ts"].endswith("Z")
    assert first["call_id"] is None
    assert second["event"] == "second 2"
    assert second["level"] == "WARNING"
    assert second["queue"] == "general"
    assert second["waiting"] == 3


def test_call_id_inside_bind_call_only(capture: Capture) -> None:
    buffer = capture("json")
    log.info("before")
    with bind_call("1714567890.42"):
        assert current_call_id() == "1714567890.42"
        log.info("during")
    log.info("after")
    assert [r["call_id"] for r in records(buffer)] == [None, "1714567890.42", None]


def test_token_helpers(capture: Capture) -> None:
    buffer = capture("json")
    token = set_call_id("c-1")
    log.info("during")
    reset_call_id(token)
    log.info("after")
    assert [r["call_id"] for r in records(buffer)] == ["c-1", None]


def test_nested_bind_call_restores_outer(capture: Capture) -> None:
    buffer = capture("json")
    with bind_call("outer"):
        with bind_call("inner"):
            log.info("a")
        log.info("b")
    assert [r["call_id"] for r in records(buffer)] == ["inner", "outer"]


async def test_concurrent_calls_do_not_mix(capture: Capture) -> None:
    buffer = capture("json")

    async def call(call_id: str) -> None:
        with bind_call(call_id):
            for step in range(5):
                log.info("step", extra={"who": call_id, "step": step})
                await asyncio.sleep(0)  # let the other calls interleave

    await asyncio.gather(*(call(f"call-{n}") for n in range(4)))
    got = records(buffer)
    assert len(got) == 20
    assert all(r["call_id"] == r["who"] for r in got)
    # They really did interleave, so the test proves something.
    assert [r["call_id"] for r in got[:4]] == ["call-0", "call-1", "call-2", "call-3"]
    assert current_call_id() is None


async def test_task_started_inside_call_inherits_id(capture: Capture) -> None:
    buffer = capture("json")

    async def child() -> None:
        log.info("child")

    with bind_call("parent"):
        task = asyncio.create_task(child())
    await task
    assert records(buffer)[0]["call_id"] == "parent"


def test_exception_stays_on_one_line(capture: Capture) -> None:
    buffer = capture("json")
    try:
        raise ValueError("caller 79161234567 broke it")
    except ValueError:
        log.exception("failed")
    (line,) = lines(buffer)
    record = json.loads(line)
    assert "ValueError" in record["exc"]
    assert "79161234567" not in line


def test_extra_cannot_overwrite_own_fields(capture: Capture) -> None:
    buffer = capture("json")
    log.info("real", extra={"event": "fake", "level": "fake"})
    (record,) = records(buffer)
    assert record["event"] == "real"
    assert record["level"] == "INFO"
    assert record["event_"] == "fake"


# --- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("79161234567", "*********67"),
        ("call from 79161234567 ended", "call from *********67 ended"),
        ("+79161234567", "+*********67"),
        ("+7 916 123-45-67", "+* *** ***-**-67"),
        ("8 (916) 123-45-67", "* (***) ***-**-67"),
        ("SNILS 112-233-445 95", "SNILS ***-***-*** 95"),
        ("INN 7707083893", "INN ********93"),  # legal entity, 10 digits
        ("INN 500100732259", "INN **********59"),  # person, 12 digits
        ("local 1234567", "local *****67"),
        # A bare number, as extra fields carry them: masked from seven digits on, whatever
        # script its digits are in (the regex's \\d is Unicode); superscripts are no digits.
        ("1234567", "*****67"),
        ("123456", "123456"),
        ("88001000001", "*********01"),
        ("٧٩١٦١٢٣٤٥٦٧", "*********٦٧"),
        ("²³⁴⁵⁶⁷⁸⁹", "²³⁴⁵⁶⁷⁸⁹"),
    ],
)
def test_mask_personal(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "extension 1234 pressed 5",
        "port 4573",
        "uniqueid 1714567890.42",
        "at 2024-05-01 12:30:00",
        "peer 192.168.10.20",
        "year 2024, 3 callers",
    ],
)
def test_mask_personal_keeps_non_personal_numbers(text: str) -> None:
    assert mask_personal(text) == text


@pytest.mark.parametrize(
    ("key", "value", "masked"),
    [
        ("caller_id", "79161234567", "*********67"),
        ("callerid", "+7 916 123-45-67", "+* *** ***-**-67"),
        ("phone", "1234", "**34"),  # sensitive by name, however short
        ("snils", "112-233-445 95", "***-***-*** 95"),
        ("inn", 500100732259, "**********59"),
        ("agi_callerid", "79161234567", "*********67"),
        ("CallerIDNum", "79161234567", "*********67"),
        ("caller_name", "Иван Петров", "И***"),
        ("calleridname", "Ivan", "I***"),
        ("name", "Мария", "М***"),
        ("callerid", '"Ivan" <79161234567>', '"****" <*********67>'),
        ("queue", "general", "general"),
        ("note", "call me at 79161234567", "call me at *********67"),
        ("duration_ms", 1234567, 1234567),  # quantities are not identifiers
        ("caller_id", None, None),
    ],
)
def test_mask_field(key: str, value: Any, masked: Any) -> None:
    assert mask_field(key, value) == masked


def test_masking_in_json_lines(capture: Capture) -> None:
    buffer = capture("json")
    with bind_call("c-9"):
        log.info(
            "call from %s",
            "+7 916 123-45-67",
            extra={
                "caller_id": "79161234567",
                "calleridname": "Иван Петров",
                "snils": "112-233-445 95",
                "inn": "500100732259",
                "env": {"agi_callerid": "79161234567", "agi_channel": "PJSIP/trunk"},
            },
        )
    (line,) = lines(buffer)
    for secret in ("79161234567", "916 123", "Иван", "Петров", "112-233-445", "500100732259"):
        assert secret not in line
    record = json.loads(line)
    assert record["event"] == "call from +* *** ***-**-67"
    assert record["caller_id"] == "*********67"
    assert record["calleridname"] == "И***"
    assert record["snils"] == "***-***-*** 95"
    assert record["inn"] == "**********59"
    assert record["env"] == {"agi_callerid": "*********67", "agi_channel": "PJSIP/trunk"}
    assert record["call_id"] == "c-9"


def test_masking_in_text_lines(capture: Capture) -> None:
    buffer = capture("text")
    log.info("call from 79161234567", extra={"calleridname": "Иван", "phone": "89161234567"})
    (line,) = lines(buffer)
    assert "79161234567" not in line
    assert "89161234567" not in line
    assert "Иван" not in line
    assert "call from *********67" in line
    assert "calleridname=И***" in line
    assert "phone=*********67" in line


# --- one line per event ---------------------------------------------------------------------

HOSTILE = 'Ivan\n{"level": "CRITICAL", "event": "forged"}\r\u2028\u2029\x85\x1b[31m'


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_newline_in_message_stays_one_line(capture: Capture, fmt: Format) -> None:
    buffer = capture(fmt)
    log.info("caller said %s", HOSTILE)
    log.info("next")
    # str.splitlines breaks on \u2028, \x85 and friends too: the strictest reader.
    assert len(lines(buffer)) == 2
    assert "\x1b" not in buffer.getvalue()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_newline_in_extra_stays_one_line(capture: Capture, fmt: Format) -> None:
    buffer = capture(fmt)
    log.info("hello", extra={"channel": HOSTILE, "calleridname": "\nMallory"})
    assert len(lines(buffer)) == 1


def test_json_round_trips_the_hostile_message(capture: Capture) -> None:
    buffer = capture("json")
    log.info("%s", HOSTILE)
    assert records(buffer)[0]["event"] == HOSTILE


def test_a_delete_character_in_ascii_text_is_escaped_too(capture: Capture) -> None:
    buffer = capture("json")
    log.info("before\x7fafter", extra={"channel": "PJSIP/\x7f"})
    (line,) = lines(buffer)
    assert "\x7f" not in line and line.count("\\u007f") == 2
    assert records(buffer)[0]["event"] == "before\x7fafter"


@pytest.mark.parametrize("with_call_id", [False, True])
def test_one_extra_field_is_kept_with_or_without_a_call_id(with_call_id: bool) -> None:
    record = logging.LogRecord("hotline.test", logging.INFO, __file__, 1, "hello", None, None)
    record.queue = "general"  # as `extra={"queue": ...}` sets it
    if with_call_id:
        record.call_id = "1714567890.42"  # as `CallIdFilter` sets it
    fields = json.loads(JsonFormatter().format(record))
    assert fields["queue"] == "general"
    assert fields["call_id"] == ("1714567890.42" if with_call_id else None)


def test_extra_fields_follow_ours_in_the_order_given(capture: Capture) -> None:
    buffer = capture("json")
    log.info("queued", extra={"queue": "general", "position": 3, "agi_callerid": "79161234567"})
    (record,) = records(buffer)
    assert list(record) == [
        *"ts level logger event call_id".split(),
        "queue",
        "position",
        "agi_callerid",
    ]
    assert record["position"] == 3 and record["agi_callerid"] == "*********67"


# --- text format ------------------------------------------------------------------------------


def test_text_line_fields(capture: Capture) -> None:
    buffer = capture("text")
    with bind_call("1714567890.42"):
        log.warning("queue full", extra={"queue": "general", "reason": "no agents left"})
    log.info("idle")
    first, second = lines(buffer)
    assert " WARNING hotline.test [1714567890.42] queue full " in first
    assert "queue=general" in first
    assert 'reason="no agents left"' in first
    assert " INFO hotline.test [-] idle" in second


def test_configure_twice_replaces_own_handler(capture: Capture) -> None:
    first = capture("json")
    second = capture("text")
    log.info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


def test_level_filters(capture: Capture) -> None:
    buffer = capture("json", "WARNING")
    log.info("dropped")
    log.warning("kept")
    assert [r["event"] for r in records(buffer)] == ["kept"]


def masked_one_digit_at_a_time(text: str) -> str:
    """`mask_personal` spelled out: each token `_NUMBERS` finds that is not kept and holds 7
    digits or more has every digit but its last two starred."""

    def token(match: re.Match[str]) -> str:
        digits = [i for i, char in enumerate(match.group(0)) if char.isdigit()]
        if match.group("keep") is not None or len(digits) < 7:
            return match.group(0)
        chars = list(match.group(0))
        for i in digits[:-2]:
            chars[i] = "*"
        return "".join(chars)

    return _NUMBERS.sub(token, text)


def test_masking_on_many_texts_stars_every_digit_of_a_long_run_but_the_last_two() -> None:
    """`mask_personal` skips texts with fewer than 7 digits and stars a token's digits with
    one regex pass: on every text it must mask exactly what the rule spelled out one digit at
    a time masks (fixed seed: the same texts every run)."""
    pieces = [*"0123456789", "٣", "²", " ", "  ", "-", ".", "(", ")", "+", "/", "№", "N", "o"]
    pieces += ["номер", "Иван", "call", "\t", "\n", ":", "2026-12-06", "10.0.0.1", "1795.42"]
    chooser = random.Random(20261206)
    for _ in range(20_000):
        text = "".join(chooser.choices(pieces, k=chooser.randint(0, 14)))
        assert mask_personal(text) == masked_one_digit_at_a_time(text), text
