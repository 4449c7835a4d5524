"""How a channel's pass through the dialplan ends (`DialplanEnd`), how a subroutine run for
Dial's ``U()``/``b()`` ended (`SubroutineResult`), and the moves a control-flow application
makes (`Flow`: go on, jump, stop), which the interpreter's loop carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pbxsim.dialplan.model import ExtenAddress

EndReason = Literal["hangup", "app-hangup", "fallthrough", "return"]


@dataclass(frozen=True)
class DialplanEnd:
    """Why the PBX stopped running the dialplan on a channel.

    ``hangup``: the Hangup application ran (`cause`: its cause code, None for none given);
    ``app-hangup``: an application returned -1 (the caller hung up during AGI, Queue, Dial..);
    ``fallthrough``: the extension ran out of priorities (Asterisk then hangs up);
    ``return``: a subroutine run by `DialplanInterpreter.run_subroutine` returned.
    `address` is the last priority run (or the missing one fallen through to)."""

    reason: EndReason
    address: ExtenAddress
    steps: int
    cause: int | None = None


@dataclass(frozen=True)
class SubroutineResult:
    """What Dial learns from a ``U()`` subroutine: `returned` with Return(`retval`), or ended
    otherwise (`end`: hung up or fell through; GOSUB_RETVAL is then empty)."""

    returned: bool
    retval: str
    end: DialplanEnd


@dataclass(frozen=True)
class NextPriority:
    """Go on with the next priority."""


@dataclass(frozen=True)
class JumpTo:
    """Go on at exactly `address`."""

    address: ExtenAddress


@dataclass(frozen=True)
class StopRun:
    """Stop running the dialplan."""

    reason: EndReason
    cause: int | None = None


Flow = NextPriority | JumpTo | StopRun
NEXT = NextPriority()
