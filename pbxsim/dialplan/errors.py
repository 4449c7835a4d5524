"""What goes wrong with a dialplan: in the file (`DialplanSyntaxError`, with file:line) or while
a channel runs it (`DialplanError` and its kinds, naming the priority's file:line).

Where a real Asterisk would log a warning and hang the channel up (a Goto to a context that does
not exist, a label that is not there, a Return without Gosub), the simulator raises instead: a
broken dialplan must fail the test that runs it, not look like a caller hanging up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLine:
    """Where a line of the dialplan comes from."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class DialplanError(Exception):
    """A channel cannot go on through the dialplan; the message names where and why."""


class DialplanSyntaxError(DialplanError):
    """extensions.conf (or a file it includes) cannot be read; `source` is the line."""

    def __init__(self, source: SourceLine, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class NoSuchExtension(DialplanError):
    """A channel was started at an extension its context does not have (a real Asterisk
    rejects such a call before any dialplan runs)."""


class DialplanLoopError(DialplanError):
    """A channel ran more priorities than the interpreter's step limit: a Goto loop. Asterisk
    has no such limit; the simulator must not hang."""


class ExpressionError(DialplanError):
    """A ``$[...]`` expression Asterisk could not parse, or an operator the simulator does
    not implement."""
