"""The control-flow applications the interpreter runs itself, as Asterisk 22 defines them:
NoOp, Set, Goto, GotoIf, Gosub, GosubIf, Return, ExecIf and Hangup (pbx_builtins.c,
app_stack.c, app_exec.c). Each takes the channel's `ChannelRun` and the substituted data and
says where the channel goes next. Every other application is the channel's
(`DialplanChannel.run_app`).

Conditions are Asterisk's: empty is false, a leading number is true unless 0, any other text
is true. Where Asterisk would log a warning and hang up (Goto to a missing context or label,
Return without Gosub, a function nobody implements) the interpreter raises `DialplanError`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from pbxsim.dialplan.arguments import app_args
from pbxsim.dialplan.outcome import NEXT, Flow, JumpTo, StopRun
from pbxsim.dialplan.run import ChannelRun
from pbxsim.dialplan.substitute import split_function

_LEADING_INT: Final = re.compile(r"\s*([+-]?\d+)")

ControlApplication = Callable[[ChannelRun, str], Awaitable[Flow]]


def condition_true(condition: str) -> bool:
    """pbx_checkcondition: empty is false, a number is its truth, other text is true."""
    if not condition:
        return False
    match = _LEADING_INT.match(condition)
    return int(match.group(1)) != 0 if match else True


async def _noop(run: ChannelRun, data: str) -> Flow:
    return NEXT


async def _set(run: ChannelRun, data: str) -> Flow:
    """Set(name=value) or Set(FUNC(args)=value); the value is everything after the first =."""
    name, equals, value = data.partition("=")
    if not equals or not name:
        run.fail(f"Set({data}) needs name=value")
    if not name.endswith(")"):
        run.channel.set_variable(name, value)
        return NEXT
    function, args = split_function(name)
    if function == "GLOBAL":
        run.interpreter.globals[args] = value
    elif function == "LOCAL":
        run.set_local(args, value)
    elif not run.channel.write_function(function, args, value):
        run.fail(f"function {function}() cannot be set by the simulator")
    return NEXT


async def _goto(run: ChannelRun, data: str) -> Flow:
    return JumpTo(run.resolve(data))


async def _goto_if(run: ChannelRun, data: str) -> Flow:
    """GotoIf(condition?[iftrue][:iffalse])."""
    condition, _, branches = data.partition("?")
    if_true, _, if_false = branches.partition(":")
    branch = if_true if condition_true(condition) else if_false
    return JumpTo(run.resolve(branch)) if branch else NEXT


async def _gosub(run: ChannelRun, data: str) -> Flow:
    if not data:
        run.fail("Gosub needs an address")
    return run.gosub(data)


async def _gosub_if(run: ChannelRun, data: str) -> Flow:
    """GosubIf(condition?[iftrue(args)][:iffalse(args)])."""
    parts = app_args(data, "?", raw=True, limit=2)
    if len(parts) != 2:
        return NEXT
    branches = app_args(parts[1], ":", raw=True, limit=2)
    branch = branches[0] if condition_true(parts[0]) else "".join(branches[1:])
    return run.gosub(branch) if branch else NEXT


async def _return(run: ChannelRun, data: str) -> Flow:
    return run.return_from_gosub(data)


async def _exec_if(run: ChannelRun, data: str) -> Flow:
    """ExecIf(condition?app(args)[:app(args)]): the chosen application runs without a
    priority of its own."""
    parts = app_args(data, "?", limit=2)
    if len(parts) != 2:
        run.fail(f"ExecIf({data}) needs condition?application")
    apps = app_args(parts[1], ":", raw=True, limit=2)
    chosen = apps[0] if condition_true(parts[0]) else "".join(apps[1:])
    if not chosen:
        return NEXT
    app, paren, args = chosen.partition("(")
    if paren:
        args = args.rstrip()[:-1] if args.rstrip().endswith(")") else args
    return await run.execute(app.strip(), args)


async def _hangup(run: ChannelRun, data: str) -> Flow:
    """Hangup([cause]): the PBX stops; the cause (e.g. 16, 17) goes to the channel's end."""
    match = _LEADING_INT.match(data)
    return StopRun("hangup", int(match.group(1)) if match else None)


CONTROL_APPLICATIONS: Final[dict[str, ControlApplication]] = {
    "noop": _noop,
    "set": _set,
    "goto": _goto,
    "gotoif": _goto_if,
    "gosub": _gosub,
    "gosubif": _gosub_if,
    "return": _return,
    "execif": _exec_if,
    "hangup": _hangup,
}
