"""One channel's pass through the dialplan (Asterisk's __ast_pbx_run loop): where it is, its
Gosub stack, the step counter, and what ``${...}`` means on it.

Each step finds the priority at the channel's address, substitutes its data, reports it
(`DialplanChannel.newexten`) and runs the application: the control-flow ones
(`applications.CONTROL_APPLICATIONS`, handed over by the interpreter) here, every other one on
the channel. The channel then moves to the next priority, or where the application sent it,
or stops. An extension that runs out of priorities ends the run (``fallthrough``); an
extension the context does not have goes to the context's ``i`` extension, as in Asterisk,
and is an error without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NoReturn

from pbxsim.dialplan.arguments import app_args, priority_number, split_gosub, split_goto
from pbxsim.dialplan.channel import DialplanChannel, DialplanStep
from pbxsim.dialplan.errors import (
    DialplanError,
    DialplanLoopError,
    ExpressionError,
    SourceLine,
)
from pbxsim.dialplan.model import Dialplan, ExtenAddress
from pbxsim.dialplan.outcome import NEXT, DialplanEnd, Flow, JumpTo, StopRun
from pbxsim.dialplan.substitute import substitute

if TYPE_CHECKING:
    from pbxsim.dialplan.interpreter import DialplanInterpreter


@dataclass
class GosubFrame:
    """A Gosub's return address (None: the end of a `run_subroutine`) and the variables it
    pushed on the channel (ARG1.., ARGC, LOCAL()s), popped again by Return."""

    return_to: ExtenAddress | None
    arguments: int
    variables: list[str] = field(default_factory=list)


class ChannelRun:
    """The interpreter's state for one channel while it runs the dialplan."""

    def __init__(
        self, interpreter: DialplanInterpreter, channel: DialplanChannel, address: ExtenAddress
    ) -> None:
        self.interpreter = interpreter
        self.dialplan: Dialplan = interpreter.dialplan
        self.channel = channel
        self.address = address
        self.frames: list[GosubFrame] = []
        self.steps = 0
        self.retval = ""  # what the Return ending a run_subroutine gave
        self.source: SourceLine | None = None  # the priority running now

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> DialplanEnd:
        """Step until an application stops the run."""
        while True:
            flow = await self._step()
            if isinstance(flow, StopRun):
                return DialplanEnd(flow.reason, self.address, self.steps, flow.cause)
            self.address = self.move(flow)

    async def run_h(self) -> None:
        """After the end, the context's ``h`` extension, if it has one (Asterisk runs it for
        every channel that leaves the PBX)."""
        context = self.address.context
        if self.address.exten == "h" or not self.dialplan.exists(context, "h", 1):
            return
        self.address = ExtenAddress(context, "h", 1)
        while not isinstance(flow := await self._step(), StopRun):
            self.address = self.move(flow)

    def move(self, flow: Flow) -> ExtenAddress:
        if isinstance(flow, JumpTo):
            return flow.address
        return replace(self.address, priority=self.address.priority + 1)

    async def _step(self) -> Flow:
        address = self.address
        priority = self.dialplan.find(address.context, address.exten, address.priority)
        if priority is None:
            return self._missing()
        self.steps += 1
        if self.steps > self.interpreter.max_steps:
            raise DialplanLoopError(
                f"{priority.source}: more than {self.interpreter.max_steps} priorities run on "
                f"one channel (now at {address} {priority.app}): a Goto loop?"
            )
        self.source = priority.source
        data = self.substitute(priority.data)
        self.channel.newexten(DialplanStep(address, priority.app, data, priority.source))
        return await self.execute(priority.app, data)

    async def execute(self, app: str, data: str) -> Flow:
        """Run one application with its substituted data."""
        control = self.interpreter.control_applications.get(app.lower())
        if control is not None:
            return await control(self, data)
        result = await self.channel.run_app(app, data)
        if result.hangup:
            return StopRun("app-hangup")
        return NEXT if result.goto is None else JumpTo(result.goto)

    def _missing(self) -> Flow:
        context, exten = self.address.context, self.address.exten
        if context not in self.dialplan.contexts:
            self.fail(f"context {context!r} does not exist")
        if self.dialplan.exists(context, exten, 1):
            return StopRun("fallthrough")
        if self.dialplan.exists(context, "i", 1):
            self.channel.set_variable("INVALID_EXTEN", exten)
            return JumpTo(ExtenAddress(context, "i", 1))
        self.fail(f"extension {exten!r} is not in context {context!r}, which has no 'i'")

    def fail(self, message: str) -> NoReturn:
        raise DialplanError(f"{self.where()}: {message}")

    def where(self) -> str:
        """The running priority's file:line and address, for error messages."""
        return f"{self.source} ({self.address})" if self.source else str(self.address)

    # -- addresses and the Gosub stack ------------------------------------------------------

    def resolve(self, target: str) -> ExtenAddress:
        """A Goto address ``[[context,]exten,]priority`` (priority: a number, ``+N``/``-N``
        relative to the current one, or a label) from the current address."""
        if not target.strip():
            self.fail("an empty Goto address")
        context, exten, priority = split_goto(target)
        context = context or self.address.context
        exten = exten or self.address.exten
        if context not in self.dialplan.contexts:
            self.fail(f"Goto {target!r}: context {context!r} does not exist")
        sign = {"+": 1, "-": -1}.get(priority[:1], 0)
        text = priority[1:] if sign else priority
        number = priority_number(text)
        if number is None:
            label = self.dialplan.find_label(context, exten, text)
            if label is None:
                self.fail(f"Goto {target!r}: no label {text!r} at {context},{exten}")
            return ExtenAddress(context, exten, label)
        if sign:
            number = self.address.priority + sign * number
        return ExtenAddress(context, exten, number)

    def gosub(self, data: str, *, special: bool = False) -> Flow:
        """Gosub(address(args)): push a frame with ARG1.. ARGC and jump."""
        target, args = split_gosub(data)
        destination = self.resolve(target)
        if not self.dialplan.exists(destination.context, destination.exten, destination.priority):
            self.fail(f"Gosub to {destination}, which does not exist")
        count = max(len(args), self.frames[-1].arguments if self.frames else 0)
        return_to = None if special else replace(self.address, priority=self.address.priority + 1)
        frame = GosubFrame(return_to, count)
        self.frames.append(frame)
        for index in range(count):
            self.set_local(f"ARG{index + 1}", args[index] if index < len(args) else "", frame)
        self.set_local("ARGC", str(len(args)), frame)
        return JumpTo(destination)

    def return_from_gosub(self, value: str) -> Flow:
        if not self.frames:
            self.fail("Return without Gosub")
        frame = self._pop_frame()
        self.channel.set_variable("GOSUB_RETVAL", value)
        if frame.return_to is None:
            self.retval = value
            return StopRun("return")
        return JumpTo(frame.return_to)

    def set_local(self, name: str, value: str, frame: GosubFrame | None = None) -> None:
        """LOCAL(name)=value: a variable of the innermost Gosub frame."""
        if frame is None:
            if not self.frames:
                self.fail(f"LOCAL({name}) outside a Gosub")
            frame = self.frames[-1]
        if name in frame.variables:
            self.channel.set_variable(name, value)
        else:
            frame.variables.append(name)
            self.channel.push_variable(name, value)

    def unwind(self) -> None:
        """A subroutine ended without Return: pop frames up to and with its own."""
        while self.frames:
            if self._pop_frame().return_to is None:
                break

    def _pop_frame(self) -> GosubFrame:
        frame = self.frames.pop()
        for name in reversed(frame.variables):
            self.channel.pop_variable(name)
        return frame

    # -- substitution -----------------------------------------------------------------------

    def substitute(self, text: str) -> str:
        try:
            return substitute(text, self)
        except ExpressionError as error:
            raise ExpressionError(f"{self.where()}: {error}") from None
        except DialplanError as error:
            raise DialplanError(f"{self.where()}: {error}") from None

    def variable(self, name: str) -> str | None:
        """EXTEN, CONTEXT, PRIORITY, then the channel's variables, then the globals."""
        builtin = {"EXTEN": self.address.exten, "CONTEXT": self.address.context}
        if name in builtin:
            return builtin[name]
        if name == "PRIORITY":
            return str(self.address.priority)
        value = self.channel.get_variable(name)
        return value if value is not None else self.interpreter.globals.get(name)

    def function(self, name: str, args: str) -> str:
        """GLOBAL(), LOCAL(), LEN() and CUT() here; every other function is the channel's."""
        if name == "GLOBAL":
            return self.interpreter.globals.get(args, "")
        if name == "CUT":
            return self._cut(args)
        if name == "LOCAL":
            return self.channel.get_variable(args) or ""
        if name == "LEN":
            return str(len(args))
        value = self.channel.read_function(name, args)
        if value is None:
            raise DialplanError(f"function {name}() is not implemented by the simulator")
        return value

    def _cut(self, args: str) -> str:
        """``CUT(varname,delimiter,fields)`` (func_cut): fields N, N-M, N- or -M of the
        variable's value split at the delimiter (1-based; none there: empty)."""
        parts = app_args(args)
        if len(parts) != 3 or not parts[1]:
            raise DialplanError(f"CUT({args}): needs a variable, a delimiter and fields")
        name, delimiter, spec = parts
        fields = (self.variable(name) or "").split(delimiter[0])
        low, dash, high = spec.partition("-")
        try:
            first = int(low) if low else 1
            last = (int(high) if high else len(fields)) if dash else first
        except ValueError:
            raise DialplanError(f"CUT({args}): fields {spec!r} is not N, N-M, N- or -M") from None
        return delimiter[0].join(fields[max(first, 1) - 1 : last])
