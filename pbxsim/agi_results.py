"""What res_agi answers: handler results, reply lines, AGIExecEnd codes, and the C number
parsing (sscanf/atoi) the handlers read their arguments with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from hotline.agi.protocol import DEAD_CHANNEL_TEXT, AgiReply
from pbxsim.agi_usage import USAGE

# res_agi's handler results (include/asterisk/agi.h) and its "asyncagi break" code.
RESULT_SUCCESS: Final = 0


RESULT_SHOWUSAGE: Final = 1


RESULT_FAILURE: Final = 2


ASYNC_AGI_BREAK: Final = 3


# Not handler results: how the dispatcher marks a line no handler ran for.
UNKNOWN_COMMAND: Final = -510


NOT_PERMITTED: Final = -511


INVALID_TEXT: Final = "Invalid or unknown command"


USAGE_HEAD: Final = "Invalid command syntax.  Proper usage follows:"


NO_USAGE_TEXT: Final = "Invalid command syntax.  Proper usage not available."


Handled = tuple[int, AgiReply | None]  # a handler's res_agi result and its reply line


@dataclass(frozen=True)
class Execution:
    """One command as the session sees it: the reply to write and whether res_agi counted
    it as RESULT_FAILURE (which decides AGISTATUS)."""

    reply: AgiReply
    failed: bool = False


@dataclass
class CallStats:
    """What the call did, for the run report."""

    commands: int = 0
    prompts: list[str] = field(default_factory=list)
    digits_received: list[str] = field(default_factory=list)
    digits_discarded: list[str] = field(default_factory=list)


def ok(result: int | str, data: str | None = None, endpos: int | None = None) -> AgiReply:
    """A ``200`` reply."""
    return AgiReply(code=200, result=str(result), data=data, endpos=endpos)


def c_int(text: str) -> int | None:
    """The number sscanf("%d") reads from the start of `text`, or None."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match[1]) if match else None


def c_atoi(text: str) -> int:
    """atoi(): the leading number, 0 when there is none."""
    value = c_int(text)
    return 0 if value is None else value


def c_float(text: str) -> float | None:
    """The number sscanf("%lf") reads from the start of `text`, or None."""
    match = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", text)
    return float(match[1]) if match else None


def exec_end(status: int) -> tuple[int, str]:
    """AGIExecEnd's ResultCode and Result for a handler's status."""
    if status == UNKNOWN_COMMAND:
        return 510, INVALID_TEXT
    if status == NOT_PERMITTED:
        return 511, DEAD_CHANNEL_TEXT
    if status == RESULT_SHOWUSAGE:
        return 520, "Usage"
    if status == RESULT_FAILURE:
        return -1, "Failure"
    if status in (RESULT_SUCCESS, ASYNC_AGI_BREAK):
        return 200, "Success"
    return 200, "Unknown Result"


def status_of(res: int) -> int:
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


def usage_reply(words: tuple[str, ...]) -> AgiReply:
    usage = USAGE.get(" ".join(words), "")
    if not usage:
        return AgiReply(code=520, text=NO_USAGE_TEXT)
    return AgiReply(code=520, text=f"{USAGE_HEAD}\n{usage}")


def smaller(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None


def arg_at(args: Sequence[str], n: int) -> str:
    return args[n] if len(args) > n else ""


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")
