"""Structured logs: one line per event, the call id on every line, personal data masked.

Every line logged while a call is handled carries that call's id, without passing it around:
the session wraps its work in `bind_call(call_id)`, which sets a `ContextVar`.  asyncio copies
the context into each task, so concurrent calls never see each other's id.

Callers of a government hotline are private persons, so their numbers, SNILS, INN and names
must not end up in log storage: `mask_personal` hides long digit runs in every message and
extra field, and extra fields with a sensitive name (`caller_id`, `calleridname`, ...) are
masked whatever their content.

One line per event is kept even for hostile input (a caller name is whatever the far end
sends): line breaks and control characters are escaped, in both formats.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import islice
from typing import IO, Any, Final

from hotline.settings import LogSettings

# The only module-level mutable state: the id of the call being handled in this context.
_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hotline_call_id", default=None
)

# Extra fields whose value is personal whatever it looks like.  Keys are compared lower-cased
# and without an `agi_` prefix, so the AGI environment and AMI events (CallerIDNum, ...) match.
NUMBER_FIELDS: Final = frozenset(
    {
        "caller_id",
        "callerid",
        "calleridnum",
        "connectedlinenum",
        "rdnis",
        "phone",
        "snils",
        "inn",
        "passport",
    }
)
NAME_FIELDS: Final = frozenset({"caller_name", "calleridname", "connectedlinename", "name"})
SENSITIVE_FIELDS: Final = NUMBER_FIELDS | NAME_FIELDS

# Digit sequences that may be personal: optional "+" or "(", digit groups joined by up to two
# blanks, a dash, a dot or parentheses ("+7 916 123-45-67", "8 (916) 1234567",
# "916  123  45  67", "112-233-445 95", "8 916 123.45.67"), a run joined by dots only
# ("8.916.123.45.67", matched alone so "22.1.0 3.11.2" stays two), and passports written with their
# series ("4510 № 123456", "45 10 номер 123456", "4510/123456"). Every repetition needs a
# non-digit separator, so matching stays linear. Tried first, and left alone: what
# diagnostics need and is not personal: ISO dates and times, Russian dates (05.12.2026), IPv4
# addresses, decimals and Asterisk uniqueids ("1714567890.42"): a dotted run of any other
# shape (three groups or more) is a number written with dots.
_NUMBERS: Final = re.compile(
    r"""
    (?P<keep>
        \d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?
      | (?<![\d.])(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.(?:19|20)\d{2}(?![.\d])
      | (?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![.\d])
      | (?<![\d.])\d+\.\d+(?![.\d])
    )
    | (?P<number>
        (?<!\d)\d{2}[ \t]?\d{2}[ \t]*(?:№|N[o°]?\.?|номер|/)[ \t]*\d{6}(?!\d)
      | \+?\d+(?:\.\d+){2,}
      | [+(]?\d+(?:(?:[ \t]{0,2}\(|\)[ \t\-]{0,2}|[ \t]{0,2}[\-.][ \t]{0,2}|[ \t]{1,2})\d+)*
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
# Fewer digits than this are kept: extensions, menu choices, ports, counts, years.  Local
# phone numbers have 7 digits, INN 10 or 12, SNILS and full phone numbers 11.
MIN_MASKED_DIGITS: Final = 7
_KEEP_LAST_DIGITS: Final = 2
# A text with fewer digits than that has nothing to mask (every token masked is made of
# `\d`s and separators): most messages and fields, found so by one plain search rather than
# by `_NUMBERS`' many alternatives (a fifth of a log line's cost).
_ENOUGH_DIGITS: Final = re.compile(rf"\d(?:\D*\d){{{MIN_MASKED_DIGITS - 1}}}")
_DIGIT: Final = re.compile(r"\d")

# Characters that would end a line for some reader (str.splitlines, terminals, log shippers).
_LINE_BREAKING: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# json.dumps(ensure_ascii=False) escapes \x00-\x1f itself, but not these.
_JSON_UNESCAPED_BREAKING: Final = re.compile(r"[\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# The attributes of a plain LogRecord, and those that are not extra fields.
_PLAIN_RECORD: Final = vars(logging.LogRecord("", 0, "", 0, "", None, None))
_PLAIN_RECORD_LENGTH: Final = len(_PLAIN_RECORD)
_RECORD_ATTRS: Final = frozenset(_PLAIN_RECORD) | {
    "message",
    "asctime",
    "taskName",
    "call_id",
}
_OWN_FIELDS: Final = ("ts", "level", "logger", "event", "call_id", "exc", "stack")


# --- call id ------------------------------------------------------------------------------


@contextlib.contextmanager
def bind_call(call_id: str) -> Iterator[None]:
    """Tag every log line emitted inside the block (and tasks it starts) with `call_id`."""
    token = _CALL_ID.set(call_id)
    try:
        yield
    finally:
        _CALL_ID.reset(token)


def set_call_id(call_id: str | None) -> contextvars.Token[str | None]:
    """Token-based form of `bind_call`, for code that cannot use a `with` block."""
    return _CALL_ID.set(call_id)


def reset_call_id(token: contextvars.Token[str | None]) -> None:
    """Undo the matching `set_call_id`."""
    _CALL_ID.reset(token)


def current_call_id() -> str | None:
    """The call id bound in this context, or None outside any call."""
    return _CALL_ID.get()


# --- masking --------------------------------------------------------------------------------


def mask_personal(text: str) -> str:
    """Mask phone numbers and other long digit runs, keeping only their last 2 digits.

    `79161234567` -> `*********67`; separators are kept: `+7 916 123-45-67` ->
    `+* *** ***-**-67`, `8.916.123.45.67` -> `*.***.***.**.67`, `4510 № 123456` ->
    `**** № ****56`.  Runs shorter than MIN_MASKED_DIGITS digits, ISO and Russian dates,
    IPv4 addresses, decimals and uniqueids (`1714567890.42`) are left alone.
    """
    if text.isdecimal():  # a bare number (a caller id, a dialled number): the whole of it is
        # one token to `_NUMBERS`, masked the same way here at a twentieth of the cost
        if len(text) < MIN_MASKED_DIGITS:
            return text
        return "*" * (len(text) - _KEEP_LAST_DIGITS) + text[-_KEEP_LAST_DIGITS:]
    if _ENOUGH_DIGITS.search(text) is None:
        return text
    return _NUMBERS.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    if match.group("keep") is not None:
        return token
    digits = sum(map(str.isdigit, token))  # (its digits are all `\d`s: see `_NUMBERS`)
    if digits < MIN_MASKED_DIGITS:
        return token
    return _DIGIT.sub("*", token, digits - _KEEP_LAST_DIGITS)  # all but the last ones


def mask_number(value: str) -> str:
    """Mask a value known to be a number (caller id, SNILS, ...) whatever its length.

    Letters are masked too: a caller id may read `"Ivan Petrov" <79161234567>`.
    """
    return _mask_digits(value, mask_letters=True)


def _mask_digits(text: str, *, mask_letters: bool) -> str:
    digits_left = sum(map(str.isdigit, text))
    out = []
    for char in text:
        if char.isdigit():
            digits_left -= 1
            out.append(char if digits_left < _KEEP_LAST_DIGITS else "*")
        elif mask_letters and char.isalpha():
            out.append("*")
        else:
            out.append(char)
    return "".join(out)


def mask_name(value: str) -> str:
    """Keep the first letter of a person's name: `Иван Петров` -> `И***`."""
    stripped = value.strip()
    return stripped[0] + "***" if stripped else ""


def mask_field(key: str, value: Any) -> Any:
    """Mask one extra field: by its name if sensitive, else by content (`mask_personal`).

    Numbers (int, float) under ordinary names are quantities and stay as they are; identifiers
    arrive from Asterisk as strings.
    """
    normalized = key.lower().removeprefix("agi_")
    if value is None or isinstance(value, bool):
        return value
    if normalized in NUMBER_FIELDS:
        return mask_number(str(value))
    if normalized in NAME_FIELDS:
        return mask_name(str(value))
    return _mask_value(value)


def _mask_value(value: Any) -> Any:
    if value.__class__ is str:  # nearly every field: no walk through the checks below
        return mask_personal(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): mask_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v) for v in value]
    return mask_personal(str(value))


# --- formatting -----------------------------------------------------------------------------


def one_line(text: str) -> str:
    """Escape line breaks and control characters so `text` cannot start a new log line."""
    return _LINE_BREAKING.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class CallIdFilter(logging.Filter):
    """Stamp the current call id on each record, in the thread that logs it.

    Needed when records are formatted elsewhere (a QueueHandler's listener thread), where the
    context variable would read differently.  An explicit `extra={"call_id": ...}` wins.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = _CALL_ID.get()
        return True


class _StructuredFormatter(logging.Formatter):
    """Collects one record's fields, masked; subclasses decide how to print them."""

    def __init__(self) -> None:
        super().__init__()
        # The second of the last record's time and its text: records come many a second,
        # and formatting a datetime costs more than the rest of a short line.
        self._second = -1
        self._second_text = ""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        call_id = getattr(record, "call_id", None)
        out: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_personal(record.getMessage()),
            "call_id": call_id if call_id is not None else _CALL_ID.get(),
        }
        attributes = vars(record)
        # Extra fields only make a record longer than a plain one (logging refuses an extra
        # named like a record attribute), and come after a plain record's attributes, which
        # LogRecord sets first: most lines carry none, and the rest are walked from there.
        if len(attributes) - ("call_id" in attributes) > _PLAIN_RECORD_LENGTH:
            for key, value in islice(attributes.items(), _PLAIN_RECORD_LENGTH, None):
                if key not in _RECORD_ATTRS and not key.startswith("_"):
                    # An extra named like one of ours must not overwrite it.
                    out[key + "_" if key in _OWN_FIELDS else key] = mask_field(key, value)
        if record.exc_info:
            out["exc"] = mask_personal(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = mask_personal(self.formatStack(record.stack_info))
        return out

    def _timestamp(self, created: float) -> str:
        """UTC, ISO 8601 with milliseconds: `2024-05-01T09:30:00.123Z`."""
        second = int(created)
        if second != self._second:
            moment = datetime.fromtimestamp(second, tz=UTC).replace(tzinfo=None)
            self._second, self._second_text = second, moment.isoformat(timespec="seconds")
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(_StructuredFormatter):
    """`{"ts", "level", "logger", "event", "call_id", ...extra fields}`, one object per line."""

    def __init__(self) -> None:
        super().__init__()
        # One encoder for every line: `json.dumps` with options makes a new one each time.
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    def format(self, record: logging.LogRecord) -> str:
        text = self._encode(self.fields(record))
        if text.isascii() and "\x7f" not in text:  # two C scans, a tenth of the regex's
            return text
        # Such characters can only occur inside JSON strings, where \\uXXXX is valid.
        return _JSON_UNESCAPED_BREAKING.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class TextFormatter(_StructuredFormatter):
    """`<ts> <LEVEL> <logger> [<call_id>|-] <event> key=value ...` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        call_id = fields.pop("call_id")
        head = " ".join(
            [
                fields.pop("ts"),
                fields.pop("level"),
                fields.pop("logger"),
                f"[{one_line(str(call_id)) if call_id is not None else '-'}]",
                one_line(fields.pop("event")),
            ]
        )
        tail = "".join(f" {one_line(key)}={_text_value(value)}" for key, value in fields.items())
        return head + tail


def _text_value(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    text = one_line(text)
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class _HotlineHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler `configure_logging` installs, so a second call replaces it."""


def configure_logging(settings: LogSettings, stream: IO[str] | None = None) -> logging.Handler:
    """Send all logging to `stream` (default: `sys.stderr` at call time) in the chosen format.

    Calling it again replaces the previous handler; handlers installed by others (pytest's
    caplog, for one) are left in place.  Returns the handler installed.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HotlineHandler)]:
        root.removeHandler(old)
    handler = _HotlineHandler(sys.stderr if stream is None else stream)
    handler.addFilter(CallIdFilter())
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    logging.captureWarnings(True)  # warnings become log events, one line each, masked
    _gather_only_what_lines_say(True)
    return handler


# What every record gathers that the lines never say: where it was logged (a walk up the
# stack, switched off by `logging._srcfile = None`, as the logging HOWTO's "Optimization"
# says), the thread and the process. Not gathered, a line costs about a quarter less.
_LOGGING_SRCFILE: Final = logging._srcfile


def _gather_only_what_lines_say(only: bool) -> None:
    """Stop gathering what the lines never say (True), or gather it again (False)."""
    logging._srcfile = None if only else _LOGGING_SRCFILE
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = not only


def unconfigure_logging() -> None:
    """Remove what `configure_logging` installed (for a process that ran the command in
    process, such as the test suite, whose streams it wrote to are then closed)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HotlineHandler)]:
        root.removeHandler(old)
    logging.captureWarnings(False)
    _gather_only_what_lines_say(False)
