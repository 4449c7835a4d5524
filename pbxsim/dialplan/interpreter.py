"""The dialplan interpreter: runs extensions.conf on simulated channels.

`DialplanInterpreter` holds a loaded `Dialplan`, the global variables (the file's
``[globals]``, overridable: the simulator points HOTLINE_CONTROLLER at its test controller)
and a step limit. `run` takes a channel through the dialplan from an address until the PBX
would stop (Hangup, an application returning -1, the extension running out of priorities),
then runs the context's ``h`` extension if there is one. `run_subroutine` is what Dial's
``U()`` (`arguments.callee_gosub`) and ``b()`` (`arguments.predial_gosub`) do on the dialled
channel: a Gosub run to its Return.

A real Asterisk runs a Goto loop forever; the interpreter stops a channel after `max_steps`
priorities with `DialplanLoopError`, so a broken dialplan fails a test instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pbxsim.dialplan.applications import CONTROL_APPLICATIONS, ControlApplication
from pbxsim.dialplan.arguments import split_gosub, split_goto
from pbxsim.dialplan.channel import DialplanChannel
from pbxsim.dialplan.errors import DialplanError, NoSuchExtension
from pbxsim.dialplan.model import Dialplan, ExtenAddress
from pbxsim.dialplan.outcome import DialplanEnd, JumpTo, SubroutineResult
from pbxsim.dialplan.parser import load_dialplan
from pbxsim.dialplan.run import ChannelRun

DEFAULT_MAX_STEPS: Final = 1000  # a hotline call runs about 15 priorities


class DialplanInterpreter:
    """Runs one loaded dialplan on any number of channels (one `run` per channel)."""

    def __init__(
        self,
        dialplan: Dialplan,
        *,
        globals_override: Mapping[str, str] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        self.dialplan = dialplan
        self.globals: dict[str, str] = {**dialplan.globals, **(globals_override or {})}
        self.max_steps = max_steps
        self.control_applications: Mapping[str, ControlApplication] = CONTROL_APPLICATIONS

    @classmethod
    def from_file(
        cls,
        path: Path | str,
        *,
        globals_override: Mapping[str, str] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> DialplanInterpreter:
        """Load extensions.conf (and its includes) and interpret it."""
        return cls(load_dialplan(path), globals_override=globals_override, max_steps=max_steps)

    async def run(
        self, channel: DialplanChannel, context: str, exten: str, priority: int = 1
    ) -> DialplanEnd:
        """Run `channel` from (context, exten, priority) until the PBX would stop. Raises
        `NoSuchExtension` if nothing is there (Asterisk would refuse the call), and
        `DialplanError` if the dialplan goes somewhere that does not exist."""
        if context not in self.dialplan.contexts:
            raise NoSuchExtension(f"{self.dialplan.path}: no context {context!r}")
        if not self.dialplan.exists(context, exten, priority):
            raise NoSuchExtension(
                f"{self.dialplan.path}: no extension {exten!r} priority {priority} in {context!r}"
            )
        run = ChannelRun(self, channel, ExtenAddress(context, exten, priority))
        end = await run.run()
        await run.run_h()
        return end

    async def run_subroutine(
        self, channel: DialplanChannel, gosub: str, *, where: ExtenAddress | None = None
    ) -> SubroutineResult:
        """Run the Gosub `gosub` (``context,exten,priority(args)``) on `channel` until its
        Return, as Asterisk's ast_app_exec_sub does; `where` is the channel's own address if
        it has one (it fills a shorter address in). If the subroutine hangs up or falls
        through instead, its frames are popped and GOSUB_RETVAL is empty."""
        if where is None and _partial(gosub):
            raise DialplanError(f"subroutine {gosub!r} needs context,exten,priority")
        run = ChannelRun(self, channel, where or ExtenAddress("", "", 0))
        flow = run.gosub(gosub, special=True)
        assert isinstance(flow, JumpTo)
        run.address = flow.address
        end = await run.run()
        if end.reason == "return":
            return SubroutineResult(True, run.retval, end)
        run.unwind()
        channel.set_variable("GOSUB_RETVAL", "")
        return SubroutineResult(False, "", end)

    def resolve(self, channel: DialplanChannel, where: ExtenAddress, target: str) -> ExtenAddress:
        """Where a Goto to `target` from `where` leads (for a channel's own Goto, e.g. AGI
        ``EXEC Goto`` or an AMI Redirect with a label)."""
        return ChannelRun(self, channel, where).resolve(target)

    def substitute(self, channel: DialplanChannel, where: ExtenAddress, text: str) -> str:
        """`text` with its ``${...}``/``$[...]`` substituted on `channel` at `where`."""
        return ChannelRun(self, channel, where).substitute(text)


def _partial(gosub: str) -> bool:
    context, exten, _ = split_goto(split_gosub(gosub)[0])
    return not context or not exten
