"""How Asterisk splits application data: arguments (ast_app_separate_args), option letters
(ast_app_parse_options), Goto addresses (pbx_parse_location) and the Gosub strings Dial builds
from its ``U()`` and ``b()`` options. Applications the simulator implements use these to read
their data the way Asterisk's own applications do.
"""

from __future__ import annotations

import re
from typing import Final

_PRIORITY: Final = re.compile(r"\s*([+-]?\d+)\s*")


def app_args(
    data: str, delimiter: str = ",", *, raw: bool = False, limit: int | None = None
) -> list[str]:
    """The arguments of `data`: split at `delimiter` outside ``()``, ``[]`` and ``"..."``;
    unless `raw`, quotes are removed and ``\\`` makes the next character literal. With
    `limit`, the last argument is the unsplit rest. Empty data has no arguments; data ending
    with a delimiter has an empty last one (``Queue(q,t,,,1800)`` has five)."""
    if not data:
        return []
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    at = 0
    while at < len(data):
        if limit is not None and len(args) == limit - 1:
            current.append(data[at:])
            break
        char = data[at]
        if char == "\\":
            current.append(data[at + 1 : at + 2] if not raw else data[at : at + 2])
            at += 2
            continue
        if char == '"' and delimiter != '"':
            quote = not quote
            if not raw:
                at += 1
                continue
        elif char == delimiter and not (paren or bracket or quote):
            args.append("".join(current))
            current = []
            at += 1
            continue
        paren, bracket = _depths(char, paren, bracket)
        current.append(char)
        at += 1
    args.append("".join(current))
    return args


def app_options(options: str) -> dict[str, str]:
    """Option letters and their arguments: ``gU(sub^1)b(hdr^s^1)`` -> {"g": "", "U": "sub^1",
    "b": "hdr^s^1"}. Raises ValueError for an argument without its closing parenthesis."""
    found: dict[str, str] = {}
    at = 0
    while at < len(options):
        letter = options[at]
        at += 1
        if options[at : at + 1] != "(":
            found[letter] = ""
            continue
        end = _closing_paren(options, at)
        if end < 0:
            raise ValueError(f"missing ')' for option {letter!r} in {options!r}")
        found[letter] = _unescape_option(options[at + 1 : end])
        at = end + 1
    return found


def split_goto(target: str) -> tuple[str | None, str | None, str]:
    """``[[context,]exten,]priority`` -> (context, exten, priority); missing parts are None."""
    parts = target.split(",", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2].split(",")[0]
    if len(parts) == 2:
        return None, parts[0], parts[1]
    return None, None, parts[0]


def priority_number(text: str) -> int | None:
    """A priority written as a number (nothing may follow it), or None: then it is a label."""
    match = _PRIORITY.fullmatch(text)
    return int(match.group(1)) if match else None


def split_gosub(data: str) -> tuple[str, list[str]]:
    """Gosub's ``address(arg1,arg2)`` -> (address, [arg1, arg2]); arguments run to the last
    ``)`` and are split raw (quotes kept)."""
    address, paren, rest = data.partition("(")
    if not paren:
        return address, []
    return address, app_args(rest[: rest.rfind(")")] if ")" in rest else rest, raw=True)


def callee_gosub(u_argument: str) -> str:
    """Dial's ``U(context^arg1^arg2)`` as the Gosub it runs on the answering channel:
    ``context,s,1(arg1,arg2)``."""
    context, separator, args = u_argument.replace("^", ",").partition(",")
    return f"{context},s,1({args})" if separator else f"{context},s,1"


def predial_gosub(b_argument: str) -> str:
    """Dial's ``b([[context^]exten^]priority[(arg1^...)])`` pre-dial handler as a Gosub."""
    return b_argument.replace("^", ",")


def _depths(char: str, paren: int, bracket: int) -> tuple[int, int]:
    if char == "(":
        return paren + 1, bracket
    if char == ")":
        return max(paren - 1, 0), bracket
    if char == "[":
        return paren, bracket + 1
    if char == "]":
        return paren, max(bracket - 1, 0)
    return paren, bracket


def _closing_paren(text: str, opening: int) -> int:
    depth = 0
    quoted = text[opening + 1 : opening + 2] == '"'
    in_quote = False
    at = opening
    while at < len(text):
        char = text[at]
        if char == "\\":
            at += 2
            continue
        if char == '"' and quoted:
            in_quote = not in_quote
        elif not in_quote and char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return at
        at += 1
    return -1


def _unescape_option(argument: str) -> str:
    if argument.startswith('"') and argument.endswith('"') and len(argument) >= 2:
        return argument[1:-1].replace('\\"', '"')
    return re.sub(r"\\(.)", r"\1", argument)
