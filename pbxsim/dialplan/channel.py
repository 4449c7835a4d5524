"""What the dialplan interpreter needs from a channel: the `DialplanChannel` protocol the
simulator implements, what it reports (`DialplanStep`) and what its applications answer
(`AppResult`), plus `ChannelVariables`, a store of channel variables with Asterisk's rules a
channel may use to implement the variable half of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from pbxsim.dialplan.errors import SourceLine
from pbxsim.dialplan.model import ExtenAddress


@dataclass(frozen=True)
class DialplanStep:
    """One priority about to run: what a real Asterisk reports as a ``Newexten`` event
    (AppData is the data after substitution; the Context/Extension/Priority headers are
    `address`: the extension as dialled, not the pattern it matched)."""

    address: ExtenAddress
    app: str
    data: str
    source: SourceLine


@dataclass(frozen=True)
class AppResult:
    """How an application the channel ran ended.

    `hangup`: it returned -1 (the channel hung up, or the application failed): the PBX stops
    running the dialplan. `goto`: the channel was sent elsewhere while the application ran (an
    AMI Redirect, AGI ``EXEC Goto``): the dialplan goes on at exactly that address. Neither:
    the next priority runs."""

    hangup: bool = False
    goto: ExtenAddress | None = None


CONTINUE: Final = AppResult()
HANGUP: Final = AppResult(hangup=True)


class DialplanChannel(Protocol):
    """One channel as the interpreter drives it. Variables, functions and non-control
    applications are the channel's; control flow (NoOp, Set, Goto, GotoIf, Gosub, GosubIf,
    Return, ExecIf, Hangup) is the interpreter's."""

    def get_variable(self, name: str) -> str | None:
        """A channel variable (or a built-in such as CHANNEL, UNIQUEID), None if unset; the
        interpreter answers EXTEN, CONTEXT and PRIORITY itself and falls back to globals."""
        ...

    def set_variable(self, name: str, value: str) -> None:
        """``Set(name=value)`` and the interpreter's own variables (GOSUB_RETVAL,
        INVALID_EXTEN); a name may carry ``_``/``__`` inheritance prefixes. Real Asterisk
        reports each as a ``VarSet`` event."""
        ...

    def push_variable(self, name: str, value: str) -> None:
        """Gosub's frame variables (ARG1.., ARGC, LOCAL()): set `name`, hiding but keeping
        any value it had (Asterisk reports ``VarSet`` with Variable ``LOCAL(name)``)."""
        ...

    def pop_variable(self, name: str) -> None:
        """Return: drop the value the matching push set, showing the hidden one again."""
        ...

    def read_function(self, name: str, args: str) -> str | None:
        """A dialplan function's value, e.g. ("CALLERID", "num"), ("CHANNEL", "language"),
        ("CONFBRIDGE_INFO", "parties,<conference>"); None for a function the channel does
        not implement (the interpreter raises DialplanError). GLOBAL() and LOCAL() are the
        interpreter's."""
        ...

    def write_function(self, name: str, args: str, value: str) -> bool:
        """``Set(NAME(args)=value)``, e.g. CHANNEL(language), CONFBRIDGE(user,quiet),
        PJSIP_HEADER(add,X-...); False for a function the channel does not implement."""
        ...

    def newexten(self, step: DialplanStep) -> None:
        """A priority is about to run (every priority, control flow included)."""
        ...

    async def run_app(self, app: str, data: str) -> AppResult:
        """Run an application the simulator implements (AGI, Answer, Playback, Queue, Dial,
        ConfBridge, MixMonitor, Wait, SendDTMF, ...) with its substituted data; raise
        DialplanError for an application it does not know."""
        ...


class ChannelVariables:
    """Channel variables as Asterisk keeps them: a name set with a ``_`` or ``__`` prefix
    (inherited by channels this one dials) is found without it and replaces the unprefixed
    one; pushed values hide older ones until popped."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._stacks: dict[str, list[tuple[str, str]]] = {}
        for name, value in (initial or {}).items():
            self.set(name, value)

    def get(self, name: str) -> str | None:
        stack = self._stacks.get(_bare(name))
        return stack[-1][1] if stack else None

    def set(self, name: str, value: str) -> None:
        stack = self._stacks.setdefault(_bare(name), [])
        if stack:
            stack[-1] = (name, value)
        else:
            stack.append((name, value))

    def push(self, name: str, value: str) -> None:
        self._stacks.setdefault(_bare(name), []).append((name, value))

    def pop(self, name: str) -> None:
        stack = self._stacks.get(_bare(name))
        if stack:
            stack.pop()
        if not stack:
            self._stacks.pop(_bare(name), None)

    def inherited(self) -> dict[str, str]:
        """What a channel this one dials starts with: ``__X`` stays ``__X``, ``_X`` becomes
        ``X`` (inherited once), unprefixed variables are not passed on."""
        passed: dict[str, str] = {}
        for stack in self._stacks.values():
            name, value = stack[-1]
            if name.startswith("__"):
                passed[name] = value
            elif name.startswith("_"):
                passed[name[1:]] = value
        return passed

    def as_dict(self) -> dict[str, str]:
        """The visible value of every variable, by its name without prefixes."""
        return {bare: stack[-1][1] for bare, stack in self._stacks.items()}


def _bare(name: str) -> str:
    return name[2:] if name.startswith("__") else name[1:] if name.startswith("_") else name
