"""The FastAGI wire format, both directions, with no I/O.

Written from the bytes a real Asterisk 22 sends (see tests/data/asterisk/agi-ivr-session.txt):

* The session opens with ``agi_<name>: <value>`` lines ended by an empty line; values may be
  empty (``agi_accountcode: ``) and carry UTF-8.
* Each command is one line; Asterisk splits it into arguments on blanks, honouring double
  quotes and backslash escapes (res_agi's ``parse_args``).
* Each reply is one line (``200 result=... (data) endpos=N``, ``510 ...``, ``511 ...``), except
  the usage block ``520-...`` which runs until the line ``520 End of proper usage.``.
* ``HANGUP`` arrives unsolicited the moment the caller hangs up, before or after any reply.

The server side uses `format_command`, `EnvReader` (built on `parse_env_block` and
`parse_env_line`) and `ReplyReader`; the simulator (the Asterisk side) uses `parse_command`,
`format_env` and `format_reply`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from types import MappingProxyType
from typing import Final, NamedTuple
from urllib.parse import parse_qsl, urlsplit

HANGUP_LINE: Final = "HANGUP"
USAGE_END_LINE: Final = "520 End of proper usage."
DEAD_CHANNEL_TEXT: Final = "Command Not Permitted on a dead channel or intercept routine"

_ENV_KEY = re.compile(r"agi_[a-z0-9_]+")
# The variables Asterisk 22 sends, in the order it sends them (res_agi.c's setup_env); AGI
# arguments, ``agi_arg_1: ...``, follow them.
ASTERISK_ENV_ORDER: Final = (
    "agi_network",
    "agi_network_script",
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
)
# Names that need no pattern match: Asterisk's own.
_ASTERISK_ENV_KEYS: Final = frozenset(ASTERISK_ENV_ORDER)
# Asterisk's environment as it sends it: each name, ": ", and the rest of its line as the
# value (``.`` stops at a line break), then whatever lines follow (AGI arguments).
_ASTERISK_ENV = re.compile(
    "\n".join(f"{re.escape(name)}: (.*)" for name in ASTERISK_ENV_ORDER) + "(?:\n(?s:(.*)))?"
)
_AFTER_ASTERISK: Final = len(ASTERISK_ENV_ORDER) + 1  # the group of the lines after it
# Copied to start an environment: the dict and its keys (hashes cached) are made once.
_ENV_TEMPLATE: Final = dict.fromkeys(ASTERISK_ENV_ORDER, "")
# The variables whose values repeat from call to call: they describe the dialplan and the
# channel technology, never the caller or the call (no caller id, no unique id, no channel
# name, no script query, no AGI arguments), so an `EnvReader` may remember them.
_DIALPLAN_ENV_KEYS: Final = frozenset(
    {
        "agi_network",
        "agi_language",
        "agi_type",
        "agi_version",
        "agi_callingpres",
        "agi_callingani2",
        "agi_callington",
        "agi_callingtns",
        "agi_dnid",
        "agi_context",
        "agi_extension",
        "agi_priority",
        "agi_enhanced",
    }
)
# The others, in order: the groups of an `EnvReader` layout.
# (`EnvReader.read` stores them by name, in this order.)
_CALL_ENV_ORDER: Final = tuple(k for k in ASTERISK_ENV_ORDER if k not in _DIALPLAN_ENV_KEYS)
# Where the dialplan's values are among the groups of `_ASTERISK_ENV`.
_DIALPLAN_VALUES: Final = itemgetter(
    *(i for i, k in enumerate(ASTERISK_ENV_ORDER) if k in _DIALPLAN_ENV_KEYS)
)
# Bound of the layouts one `EnvReader` learns: past it, the others are read by `_ASTERISK_ENV`.
_ENV_LAYOUTS: Final = 64
_VERB = re.compile(r"[A-Z][A-Z ]*[A-Z]|[A-Z]")
# Numbers on the wire are ASCII digits, and short: Python's int() also takes "٣", "1_000" and
# " 7", and raises ValueError past 4,300 digits, so every number is matched here first.
# endpos is a sample offset (int64 in Asterisk); a longer one is not Asterisk talking.
_REPLY_200 = re.compile(
    r"result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?[0-9]{1,19}))?"
)
_REPLY_CODE = re.compile(r"[0-9]{3}")
_RESULT_NUMBER = re.compile(r"-?[0-9]{1,19}")
# The results Asterisk sends all day (0, 1, -1, digit codes), as numbers: one lookup.
_SMALL_RESULTS: Final = {str(number): number for number in range(-1, 256)}
# What Asterisk's argument splitter treats specially: blanks, quotes, backslashes, line ends.
_NEEDS_QUOTES = re.compile(r'[\s"\\\x00]')  # NUL: not \s, but it must not go out raw
_LINE_BREAKS = re.compile(r"[\r\n\x00]")
# Verbs that passed `_VERB` (plain str only), so that each is checked once.
_CHECKED_VERBS: set[str] = set()
_CHECKED_VERBS_MAX: Final = 256


class AgiProtocolError(Exception):
    """Bytes that do not follow the AGI protocol; the session that sent them cannot go on."""


class Quoted(str):
    """An argument always sent in double quotes, as Asterisk's own examples send escape digits
    (``STREAM FILE beep "12#"``, ``SAY DIGITS 123 ""``)."""

    __slots__ = ()


# --- environment -------------------------------------------------------------------------


def parse_env_line(line: str) -> tuple[str, str]:
    """Split one ``agi_name: value`` line; the value may be empty."""
    key, sep, value = line.partition(": ")
    if not sep and line.endswith(":"):
        key, value = line[:-1], ""
    elif not sep:
        raise AgiProtocolError(f"not an AGI environment line: {line[:80]!r}")
    if not _ENV_KEY.fullmatch(key):
        raise AgiProtocolError(f"bad AGI environment variable name: {key[:80]!r}")
    return key, value


def parse_env_block(text: str, env: dict[str, str]) -> dict[str, str]:
    """`env` with the ``agi_name: value`` lines of `text` (no empty line, no final line
    break) added, as `parse_env_line` reads them one by one; a new dict when `env` is empty.

    Asterisk's environment, its names in its order, is read by one regex match and one dict
    update, all in C: a loop over its ~25 lines costs half as much again (a line's partition,
    unpacking and checks in bytecode). Anything else is read line by line."""
    match = _ASTERISK_ENV.fullmatch(text)
    if match is None:
        _parse_env_lines(text, env)
        return env
    return _asterisk_env(match, env)


def _asterisk_env(match: re.Match[str], env: dict[str, str]) -> dict[str, str]:
    """`parse_env_block` for a text `_ASTERISK_ENV` matched."""
    if not env:
        env = _ENV_TEMPLATE.copy()
    # Not strict: the last group (the lines after Asterisk's) has no name and is left out.
    env.update(zip(ASTERISK_ENV_ORDER, match.groups(), strict=False))
    rest = match[_AFTER_ASTERISK]
    if rest is not None:
        _parse_env_lines(rest, env)
    return env


class _EnvLayout(NamedTuple):
    """Asterisk's environment with the dialplan's values of one dialplan context: the
    regex that matches it (those values as literals) and the environment it starts from."""

    pattern: re.Pattern[str]
    template: dict[str, str]


class EnvReader:
    """`parse_env_block` that learns the layouts it reads (one per server).

    A dialplan sends the same values in 13 of Asterisk's variables all day
    (``agi_context: from-pstn``, `_DIALPLAN_ENV_KEYS`, never the caller's or the call's own):
    a regex with those values as literals matches a call's environment in one go, and the
    other 9 values fill a copy of an environment holding them. That is a third less work
    than `_ASTERISK_ENV`, which reads the others, and from which the layouts are learnt."""

    __slots__ = ("_last", "_layouts")

    def __init__(self) -> None:
        self._layouts: dict[tuple[str, ...], _EnvLayout] = {}
        self._last: _EnvLayout | None = None  # the layout of the latest call: tried first

    def __repr__(self) -> str:  # what it remembers, for a look (no caller data, see above)
        return f"EnvReader({list(self._layouts)!r})"

    def read(self, text: str, env: dict[str, str]) -> dict[str, str]:
        """`parse_env_block`: `env` with the lines of `text` added (a new dict if empty)."""
        if env:  # the environment came in pieces: no layout applies to a piece
            return parse_env_block(text, env)
        last = self._last
        if last is not None and (match := last.pattern.fullmatch(text)) is not None:
            env = last.template.copy()
            # The call's values in _CALL_ENV_ORDER, stored one by one: a third of the cost
            # of env.update(zip(...)), which goes through a sequence check per pair.
            (
                env["agi_network_script"],
                env["agi_request"],
                env["agi_channel"],
                env["agi_uniqueid"],
                env["agi_callerid"],
                env["agi_calleridname"],
                env["agi_rdnis"],
                env["agi_accountcode"],
                env["agi_threadid"],
                rest,  # the lines after Asterisk's (AGI arguments), if any
            ) = match.groups()
            if rest is not None:
                _parse_env_lines(rest, env)
            return env
        match = _ASTERISK_ENV.fullmatch(text)
        if match is None:
            _parse_env_lines(text, env)
            return env
        self._last = self._layout(match.groups())
        return _asterisk_env(match, env)

    def _layout(self, values: tuple[str, ...]) -> _EnvLayout | None:
        """The layout of these values of Asterisk's variables, learnt if new (bounded)."""
        dialplan = _DIALPLAN_VALUES(values)
        layout = self._layouts.get(dialplan)
        if layout is None and len(self._layouts) < _ENV_LAYOUTS:
            known = dict(zip(ASTERISK_ENV_ORDER, values, strict=False))
            lines = [
                f"{re.escape(name)}: {re.escape(known[name])}"
                if name in _DIALPLAN_ENV_KEYS
                else f"{re.escape(name)}: (.*)"
                for name in ASTERISK_ENV_ORDER
            ]
            template = {
                name: known[name] if name in _DIALPLAN_ENV_KEYS else ""
                for name in ASTERISK_ENV_ORDER
            }
            pattern = re.compile("\n".join(lines) + "(?:\n(?s:(.*)))?")
            layout = self._layouts[dialplan] = _EnvLayout(pattern, template)
        return layout


def _parse_env_lines(text: str, env: dict[str, str]) -> None:
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        if not sep or key not in _ASTERISK_ENV_KEYS:
            key, value = parse_env_line(line)
        env[key] = value


def format_env(env: Mapping[str, str]) -> bytes:
    """The environment block as Asterisk writes it, with its closing empty line."""
    lines = [f"{key}: {_single_line(value)}\n" for key, value in env.items()]
    return ("".join(lines) + "\n").encode()


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """Which script a call asked for, from ``agi://host:port/script?name=value``."""

    script: str
    query: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgiRequest:
        """Read the script from ``agi_network_script`` (falling back to ``agi_request``) and the
        positional ``agi_arg_N`` values in order."""
        target = env.get("agi_network_script")
        if target is None:
            url = urlsplit(env.get("agi_request", ""))
            target = f"{url.path}?{url.query}"  # the query string carries ?did= here too
        path, _, query = target.partition("?")
        script = path.strip("/")
        # Asterisk numbers the arguments from 1 with no gap; probing all 128 possible names
        # cost ~20 us per call, the largest single cost of a FastAGI session.
        args: list[str] = []
        while (arg := env.get(f"agi_arg_{len(args) + 1}")) is not None:
            args.append(arg)
        # Read-only: one request may serve many calls (`FastAgiServer.request_for`).
        return cls(script=script, query=MappingProxyType(_parse_query(query)), args=tuple(args))


def _parse_query(query: str) -> dict[str, str]:
    """``parse_qsl(query, keep_blank_values=True)`` as a dict; a query with nothing to unquote
    (the usual ``did=88001000001``) is split directly, at a tenth of the cost."""
    if not query:
        return {}
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    pairs: dict[str, str] = {}
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs[name] = value
    return pairs


# --- commands ----------------------------------------------------------------------------


def quote_arg(value: str) -> str:
    """Double-quote a value so that Asterisk reads it back as exactly one argument.

    Line breaks and NUL cannot travel inside an AGI line at all: they would end the command
    and start another, so they become spaces. That is the one lossy step, and it is what makes
    a hostile caller name unable to inject a command.
    """
    if "\n" in value or "\r" in value or "\x00" in value:  # `_single_line`, inlined
        value = _LINE_BREAKS.sub(" ", value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_arg(arg: str | int) -> str:
    """One argument: integers and plain words as they are, anything else quoted."""
    if arg.__class__ is str:  # the usual case first
        if arg.isprintable():
            # Printable text holds no line break, NUL or blank other than the space (every
            # other character `_NEEDS_QUOTES` matches is a control or separator character):
            # three C-level scans decide what the regex would, at a third of its cost on
            # Cyrillic text, and `quote_arg`'s line-break check is not needed.
            if '"' in arg or "\\" in arg:
                return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return f'"{arg}"' if " " in arg or not arg else arg
        return arg if arg and not _NEEDS_QUOTES.search(arg) else quote_arg(arg)
    if isinstance(arg, bool):
        raise TypeError("AGI arguments are text or integers, not booleans")
    if isinstance(arg, int):
        return str(arg)
    if isinstance(arg, Quoted) or not arg or _NEEDS_QUOTES.search(arg):
        return quote_arg(arg)
    return arg


def format_command(verb: str, *args: str | int) -> bytes:
    """One command line, e.g. ``format_command("STREAM FILE", "beep", Quoted("12#"))``."""
    if verb not in _CHECKED_VERBS:
        if not _VERB.fullmatch(verb):
            raise ValueError(f"not an AGI command verb: {verb!r}")
        if len(_CHECKED_VERBS) < _CHECKED_VERBS_MAX and verb.__class__ is str:
            _CHECKED_VERBS.add(verb)
    if not args:
        return (verb + "\n").encode()
    return (verb + " " + " ".join([format_arg(arg) for arg in args]) + "\n").encode()


def parse_command(line: str) -> list[str]:
    """Split a command line into words the way Asterisk does (quotes and backslash escapes).

    The verb comes back as separate words (``["STREAM", "FILE", "beep", "12#"]``): Asterisk
    matches verbs word by word too.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = quoted = escaped = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = in_word = True
        elif char == '"':
            quoted = not quoted
            in_word = True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value or "\x00" in value:
        return _LINE_BREAKS.sub(" ", value)
    return value


# --- replies -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply. ``result`` is the raw text after ``result=`` (digits for GET DATA, ``-1`` when
    the channel hung up during the command); ``data`` is the text in parentheses."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def value(self) -> int:
        """The result as a number; raises AgiProtocolError when it is not one (ASCII digits,
        at most 19 of them, an optional minus)."""
        result = self.result
        number = _SMALL_RESULTS.get(result)
        if number is not None:
            return number
        if result.isdigit() and result.isascii() and len(result) <= 19:  # what the pattern
            return int(result)  # matches without a minus, checked without the regex engine
        if not _RESULT_NUMBER.fullmatch(result):
            raise AgiProtocolError(f"result is not a number: {self.result[:40]!r}")
        return int(self.result)


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """The unsolicited ``HANGUP`` line: the caller is gone."""


HANGUP: Final = HangupNotice()


def parse_reply_line(line: str) -> AgiReply:
    """Parse a single-line reply (everything but a ``520-`` block)."""
    if not _REPLY_CODE.fullmatch(line[:3]) or (len(line) > 3 and line[3] != " "):
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code, rest = int(line[:3]), line[4:]
    if code != 200:
        return AgiReply(code=code, text=rest)
    match = _REPLY_200.fullmatch(rest)
    if match is None:
        raise AgiProtocolError(f"malformed 200 reply: {line[:80]!r}")
    endpos = match["endpos"]
    return AgiReply(
        code=200,
        result=match["result"],
        data=match["data"],
        endpos=int(endpos) if endpos is not None else None,
    )


class ReplyReader:
    """Turns reply lines into replies, holding the lines of a ``520-`` usage block until its
    end line. Feed it lines without their line break."""

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: list[str] | None = None

    @property
    def in_usage_block(self) -> bool:
        return self._usage is not None

    def feed(self, line: str) -> AgiReply | HangupNotice | None:
        """Return a complete reply, the hang-up notice, or None while a 520 block is open."""
        if line == HANGUP_LINE:
            return HANGUP
        if self._usage is not None:
            if line.startswith("520 "):
                text, self._usage = "\n".join(self._usage), None
                return AgiReply(code=520, text=text)
            self._usage.append(line)
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        return parse_reply_line(line)


def format_reply(reply: AgiReply) -> bytes:
    """A reply as Asterisk writes it, multi-line for a 520 usage block."""
    if reply.code == 520 and "\n" in reply.text:
        first, _, usage = reply.text.partition("\n")
        return f"520-{first}\n{usage}\n{USAGE_END_LINE}\n".encode()
    if reply.code != 200:
        return f"{reply.code} {reply.text}\n".encode()
    parts = [f"200 result={reply.result}"]
    if reply.data is not None:
        parts.append(f"({reply.data})")
    if reply.endpos is not None:
        parts.append(f"endpos={reply.endpos}")
    return (" ".join(parts) + "\n").encode()


def iter_lines(data: bytes) -> Iterable[str]:
    """Decode a block of whole LF-terminated lines (test and replay helper)."""
    text = data.decode()
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
