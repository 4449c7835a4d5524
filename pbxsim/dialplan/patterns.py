"""Extension names and patterns as Asterisk 22 matches and orders them (main/pbx.c).

A name starting with ``_`` is a pattern: ``X`` is a digit, ``Z`` 1-9, ``N`` 2-9, ``[...]`` a set
(ranges ``a-d`` allowed), ``.`` one or more of anything and ``!`` zero or more, both only at the
end; ``-`` anywhere is decoration and ignored. Other characters match themselves. A context's
extensions are kept sorted the way Asterisk sorts them (literal names first, then patterns, the
more specific a pattern position the earlier) and the first one that matches and has the
wanted priority wins: `compare_extensions` is that order, `extension_matches` the test.
"""

from __future__ import annotations

from functools import cmp_to_key
from typing import Final

_DOT: Final = 0x18000  # '.' sorts after every character set
_BANG: Final = 0x28000  # '!' after '.'
_END: Final = 0x30000  # the end of a pattern after both
_DIGITS: Final = {"N": "23456789", "X": "0123456789", "Z": "123456789"}


def pattern_error(name: str) -> str | None:
    """Why the pattern `name` is malformed (an unclosed ``[`` or a wildcard before the end),
    or None for a well-formed pattern or a literal name."""
    if not name.startswith("_"):
        return None
    body = name[1:]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "[":
            close = body.find("]", index + 1)
            if close < 0:
                return f"unclosed '[' in pattern {name!r}"
            index = close
        elif char in ".!" and body[index + 1 :].strip("-"):
            return f"{char!r} must end the pattern {name!r}"
        index += 1
    return None


def extension_matches(name: str, exten: str) -> bool:
    """Whether the extension `name` (a literal or a ``_`` pattern) matches the dialled
    `exten`, as Asterisk's E_MATCH does."""
    if not name.startswith("_"):
        return _plain(name) == _plain(exten)
    if exten.startswith("_") and compare_patterns(name[1:], exten[1:]) == 0:
        return True
    return _pattern_matches(name[1:], _plain(exten))


def compare_extensions(left: str, right: str) -> int:
    """Asterisk's sort order of two extension names: <0 if `left` comes first."""
    if not left.startswith("_"):
        if right.startswith("_"):
            return -1
        return _sign_compare(_plain(left).encode(), _plain(right).encode())
    if not right.startswith("_"):
        return 1
    return compare_patterns(left[1:], right[1:])


extension_sort_key = cmp_to_key(compare_extensions)


def compare_patterns(left: str, right: str) -> int:
    """Two pattern bodies (without the ``_``) position by position: a position matching fewer
    characters sorts first; equal counts sort by the characters themselves."""
    left_positions = _positions(left)
    right_positions = _positions(right)
    for (left_score, left_bits), (right_score, right_bits) in zip(
        left_positions, right_positions, strict=False
    ):
        if left_score != right_score:
            return left_score - right_score
        if left_bits != right_bits:  # swapped on purpose: lower characters fill higher bits
            return _sign_compare(right_bits, left_bits)
        if left_score == _END:
            return 0
    return 0


def _plain(text: str) -> str:
    return text.replace("-", "")


def _sign_compare(left: bytes, right: bytes) -> int:
    return (left > right) - (left < right)


def _pattern_matches(pattern: str, exten: str) -> bool:
    at = 0  # position in the pattern
    for char in exten:
        while at < len(pattern) and (pattern[at] == "-" or pattern.startswith("[]", at)):
            at += 1 if pattern[at] == "-" else 2  # decoration; an empty set is skipped
        if at >= len(pattern):
            return False  # the number is longer than the pattern
        token = pattern[at]
        if token in ".!":
            return True
        if token == "[":
            close = pattern.index("]", at)
            if char not in _set_members(pattern[at + 1 : close]):
                return False
            at = close + 1
            continue
        allowed = _DIGITS.get(token.upper())
        if (char not in allowed) if allowed else char != token:
            return False
        at += 1
    rest = pattern[at:].lstrip("-")
    return rest == "" or rest.startswith("!")


def _set_members(body: str) -> set[str]:
    members: set[str] = set()
    index = 0
    while index < len(body):
        if index + 2 < len(body) and body[index + 1] == "-":
            members.update(chr(code) for code in range(ord(body[index]), ord(body[index + 2]) + 1))
            index += 3
        else:
            members.add(body[index])
            index += 1
    return members


def _positions(body: str) -> list[tuple[int, bytes]]:
    """Each position of a pattern body as (score, bitmap of the characters it matches):
    score = number of characters << 8 | the lowest one, or a wildcard/end marker."""
    raw = body.encode()
    positions: list[tuple[int, bytes]] = []
    index = 0
    while True:
        if index >= len(raw):
            positions.append((_END, bytes(32)))
            return positions
        char = raw[index]
        index += 1
        if char == ord("-"):
            continue  # decoration between positions
        if char == ord("["):
            close = raw.index(b"]", index)
            members = {ord(c) for c in _set_members(raw[index:close].decode("latin-1"))}
            index = close + 1
            if not members:
                continue  # an empty set is skipped
            positions.append((len(members) << 8 | min(members), _bitmap(members)))
        elif char in b".!":
            positions.append((_DOT if char == ord(".") else _BANG, bytes(32)))
        elif chr(char).upper() in _DIGITS:
            digits = {ord(c) for c in _DIGITS[chr(char).upper()]}
            positions.append((len(digits) << 8 | min(digits), _bitmap(digits)))
        else:
            positions.append((0x100 | char, _bitmap({char})))


def _bitmap(codes: set[int]) -> bytes:
    bits = bytearray(32)
    for code in codes:
        bits[code // 8] |= 1 << (7 - code % 8)
    return bytes(bits)
