"""Variable substitution in application data, as pbx_substitute_variables does it.

``${NAME}`` is a variable, ``${FUNC(args)}`` a dialplan function, ``${NAME:offset:length}`` a
piece of either (a negative offset counts from the end, a negative length leaves that many
characters off the end), ``$[...]`` an expression (`expressions.evaluate`). What is inside a
``${...}`` or ``$[...]`` is substituted first, so names and arguments may themselves contain
``${...}``. Text outside them is copied as is. Where values come from is the caller's business:
a `Lookup` answers variables (None: unset, substituted as empty) and functions.
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from pbxsim.dialplan.errors import DialplanError
from pbxsim.dialplan.expressions import evaluate

_INT_PREFIX: Final = re.compile(r"\s*([+-]?\d+)")


class Lookup(Protocol):
    """Where substituted values come from."""

    def variable(self, name: str) -> str | None:
        """The variable's value, or None if it is not set."""
        ...

    def function(self, name: str, args: str) -> str:
        """A dialplan function read: ``CALLERID(num)`` is ("CALLERID", "num"). Raises
        `DialplanError` for a function nobody implements."""
        ...


def substitute(text: str, lookup: Lookup) -> str:
    """`text` with every ``${...}`` and ``$[...]`` replaced by its value."""
    out: list[str] = []
    at = 0
    while True:
        start = _next_dollar(text, at)
        if start < 0:
            out.append(text[at:])
            return "".join(out)
        out.append(text[at:start])
        opener = text[start + 1]
        closer = "}" if opener == "{" else "]"
        end, nested = _matching(text, start + 2, opener, closer)
        inner = text[start + 2 : end]
        if nested:
            inner = substitute(inner, lookup)
        out.append(_expand(inner, lookup) if opener == "{" else evaluate(inner))
        at = end + 1


def substring(value: str, offset: int, length: int | None) -> str:
    """``${VAR:offset:length}``: Asterisk's rules for negative and out-of-range numbers."""
    if offset < 0:
        offset = max(len(value) + offset, 0)
    if offset >= len(value):
        return ""
    rest = value[offset:]
    if length is None or length >= len(rest):
        return rest
    if length >= 0:
        return rest[:length]
    return rest[:length] if len(rest) > -length else ""


def split_function(call: str) -> tuple[str, str]:
    """``NAME(args)`` -> (NAME, args): the arguments run to the last ``)``."""
    name, _, rest = call.partition("(")
    return name.strip(), rest[: rest.rfind(")")] if ")" in rest else rest


def _next_dollar(text: str, at: int) -> int:
    """Where the next ``${`` or ``$[`` starts, or -1."""
    while True:
        found = text.find("$", at)
        if found < 0 or found + 1 >= len(text):
            return -1
        if text[found + 1] in "{[":
            return found
        at = found + 1


def _matching(text: str, at: int, opener: str, closer: str) -> tuple[int, bool]:
    """The index of the closer matching an opener just before `at`, and whether the enclosed
    text holds ``${``/``$[`` to substitute first."""
    depth = 1
    nested = False
    index = at
    while index < len(text):
        char = text[index]
        if char == "$" and text[index + 1 : index + 2] in ("{", "["):
            nested = True
        elif char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return index, nested
        index += 1
    raise DialplanError(f"missing {closer!r} in {text!r}")


def _expand(inner: str, lookup: Lookup) -> str:
    """The value of what was between ``${`` and ``}``."""
    name, offset, length = _offset_length(inner)
    if name.endswith(")"):
        value = lookup.function(*split_function(name))
    else:
        value = lookup.variable(name) or ""
    if offset == 0 and length is None:
        return value
    return substring(value, offset, length)


def _offset_length(inner: str) -> tuple[str, int, int | None]:
    """Split ``NAME:offset:length`` at the first ``:`` outside parentheses; a number that does
    not parse leaves its default (offset 0, the whole length), as sscanf does."""
    depth = 0
    for index, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == ":" and depth == 0:
            offset_match = _INT_PREFIX.match(inner, index + 1)
            if offset_match is None:
                return inner[:index], 0, None
            after = offset_match.end()
            length_match = (
                _INT_PREFIX.match(inner, after + 1) if inner[after : after + 1] == ":" else None
            )
            length = int(length_match.group(1)) if length_match else None
            return inner[:index], int(offset_match.group(1)), length
    return inner, 0, None
