"""Simulated callers: who calls, what they press and when, and when they give up.

A caller is a `CallSpec` (the dialled number and the caller ID the PBX sees) and a
`CallerScript`, the caller's side of the call as a timeline measured in seconds from the moment
the call arrives: key presses (`DtmfPress`, a tone with a begin and an end, as the AMI
``DTMFBegin``/``DTMFEnd`` events report it) and the moment the caller hangs up. The PBX side
(`pbxsim.channel`) plays that timeline against the AGI commands the controller sends.

Key presses follow Asterisk's own ``SendDTMF()`` timing, measured in ami-ivr-call.txt: a 100 ms
pause, then per digit a 100 ms tone and a 250 ms gap. A channel hears a digit when its tone
ends, which is when ``GET DATA`` or ``WAIT FOR DIGIT`` can take it.

Caller ID text is sanitised on the way in: a real Asterisk channel never holds a raw line break
in a caller name (SIP and ISDN cannot carry one), and one in the AGI environment would end the
block early and let the rest of the name pose as protocol lines.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")

# app_senddtmf + ast_dtmf_stream in Asterisk 22, as ami-ivr-call.txt shows them.
SEND_DTMF_LEAD: Final = 0.1
TONE_SECONDS: Final = 0.1
TONE_GAP: Final = 0.25

_LINE_BREAKS: Final = re.compile(r"[\r\n\x00]")
_APP_CALL: Final = re.compile(
    r"^\s*(?:(?:same|exten)\s*=>\s*(?:[^,]*,)?\s*(?:n|\d+)\s*,)?\s*"
    r"(?P<app>[A-Za-z]+)\((?P<args>.*)\)\s*$"
)


class CallerScriptError(ValueError):
    """A caller script that cannot be played (unknown step, bad digit, negative time)."""


@dataclass(frozen=True, slots=True)
class DtmfPress:
    """One key press as the PBX hears it: the tone starts at `begin` and ends at `end`."""

    digit: str
    begin: float
    end: float


@dataclass(frozen=True, slots=True)
class CallerScript:
    """The caller's side of one call, in seconds since the call arrived.

    `hangup_at` is the caller's patience: they hang up then, whatever is playing.
    `hangup_after_commands` hangs up right after the reply to that many AGI commands;
    `hangup_during_command` hangs up while that (1-based) command runs, shortly after it starts;
    `hangup_during_line` does the same for the first command line that starts with it (any
    case), e.g. ``"EXEC Dial"``: the caller who gives up while the operator's phone rings.

    `menu_keys` is a caller who listens: each key is pressed `reaction` seconds after the
    first command that reads a key it may be (a prompt with that escape digit, ``GET DATA``,
    ``WAIT FOR DIGIT``) starts after the previous key was heard. The timing follows the menus
    whatever their prompts last, as a person's would.
    """

    presses: tuple[DtmfPress, ...] = ()
    hangup_at: float | None = None
    hangup_after_commands: int | None = None
    hangup_during_command: int | None = None
    hangup_during_line: str | None = None
    menu_keys: str = ""
    reaction: float = 0.5

    def __post_init__(self) -> None:
        for press in self.presses:
            if press.digit not in DTMF_DIGITS:
                raise CallerScriptError(f"not a DTMF digit: {press.digit!r}")
            if press.begin < 0 or press.end < press.begin:
                raise CallerScriptError(f"bad tone timing for {press.digit!r}")
        if self.hangup_at is not None and self.hangup_at < 0:
            raise CallerScriptError("hangup_at must not be negative")
        if any(key not in DTMF_DIGITS for key in self.menu_keys):
            raise CallerScriptError(f"not DTMF digits: {self.menu_keys!r}")
        if self.reaction < 0:
            raise CallerScriptError("reaction must not be negative")

    def with_patience(self, seconds: float) -> CallerScript:
        """The same script with the caller hanging up at `seconds` at the latest."""
        hangup = seconds if self.hangup_at is None else min(self.hangup_at, seconds)
        return CallerScript(
            self.presses,
            hangup,
            self.hangup_after_commands,
            self.hangup_during_command,
            self.hangup_during_line,
            self.menu_keys,
            self.reaction,
        )


@dataclass(frozen=True, slots=True)
class CallSpec:
    """Who calls where. `None` caller fields mean the network sent none (``unknown``)."""

    number: str
    caller_num: str | None = None
    caller_name: str | None = None
    script: CallerScript = field(default_factory=CallerScript)

    def __post_init__(self) -> None:
        object.__setattr__(self, "number", clean_caller_text(self.number))
        if self.caller_num is not None:
            object.__setattr__(self, "caller_num", clean_caller_text(self.caller_num))
        if self.caller_name is not None:
            object.__setattr__(self, "caller_name", clean_caller_text(self.caller_name))


def clean_caller_text(value: str) -> str:
    """Caller ID text as a channel could hold it: line breaks and NUL become spaces."""
    return _LINE_BREAKS.sub(" ", value)


def send_dtmf(
    at: float, digits: str, *, gap: float = TONE_GAP, tone: float = TONE_SECONDS
) -> tuple[DtmfPress, ...]:
    """The presses of ``SendDTMF(digits)`` started at `at` seconds."""
    _check_digits(digits)
    start = at + SEND_DTMF_LEAD
    return tuple(
        DtmfPress(digit, start + n * (tone + gap), start + n * (tone + gap) + tone)
        for n, digit in enumerate(digits)
    )


def send_dtmf_seconds(digits: str, *, gap: float = TONE_GAP, tone: float = TONE_SECONDS) -> float:
    """How long ``SendDTMF(digits)`` keeps the caller busy."""
    return SEND_DTMF_LEAD + len(digits) * (tone + gap)


def random_presses(
    rng: random.Random,
    *,
    digits: str,
    presses: int,
    start: float = 1.0,
    min_gap: float = 0.5,
    max_gap: float = 3.0,
) -> tuple[DtmfPress, ...]:
    """`presses` single key presses picked from `digits`, spaced by a random pause."""
    _check_digits(digits)
    result: list[DtmfPress] = []
    at = start
    for _ in range(presses):
        at += rng.uniform(min_gap, max_gap)
        result.extend(send_dtmf(at, rng.choice(digits)))
    return tuple(result)


def script_from_dialplan(steps: Iterable[str]) -> CallerScript:
    """A caller written as dialplan, like the ``[test-caller]`` context of extensions.conf.

    Understands ``Answer``, ``NoOp``, ``Wait(seconds)``, ``SendDTMF(digits[,gap_ms[,tone_ms]])``
    and ``Hangup``; time starts when the call arrives. Lines may be bare application calls or
    whole ``exten =>``/``same =>`` lines.
    """
    at = 0.0
    presses: list[DtmfPress] = []
    for step in steps:
        app, args = _parse_step(step)
        if app in ("answer", "noop"):
            continue
        if app == "wait":
            at += _seconds(args[0] if args else "0", step)
        elif app == "senddtmf":
            at = _send_step(at, args, step, presses)
        elif app == "hangup":
            return CallerScript(tuple(presses), hangup_at=at)
        else:
            raise CallerScriptError(f"a caller script cannot run {step.strip()!r}")
    return CallerScript(tuple(presses))


def merge_presses(*groups: Sequence[DtmfPress]) -> tuple[DtmfPress, ...]:
    """Several bursts as one timeline, in the order the tones start."""
    return tuple(sorted((p for group in groups for p in group), key=lambda p: (p.begin, p.end)))


def _send_step(at: float, args: list[str], step: str, presses: list[DtmfPress]) -> float:
    digits = args[0] if args else ""
    gap = _seconds(args[1], step) / 1000 if len(args) > 1 and args[1] else TONE_GAP
    tone = _seconds(args[2], step) / 1000 if len(args) > 2 and args[2] else TONE_SECONDS
    presses.extend(send_dtmf(at, digits, gap=gap, tone=tone))
    return at + send_dtmf_seconds(digits, gap=gap, tone=tone)


def _parse_step(step: str) -> tuple[str, list[str]]:
    match = _APP_CALL.match(step)
    if match is None:
        raise CallerScriptError(f"not a dialplan application call: {step.strip()!r}")
    args = match["args"].split(",") if match["args"] else []
    return match["app"].lower(), [arg.strip() for arg in args]


def _seconds(text: str, step: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CallerScriptError(f"not a number in {step.strip()!r}: {text!r}") from None
    if value < 0:
        raise CallerScriptError(f"negative time in {step.strip()!r}")
    return value


def _check_digits(digits: str) -> None:
    bad = sorted(set(digits) - DTMF_DIGITS)
    if bad:
        raise CallerScriptError(f"not DTMF digits: {''.join(bad)!r}")
