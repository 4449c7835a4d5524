"""A simulated channel as the dialplan interpreter drives it: extensions.conf run on the
simulator's channels.

`SimDialplanChannel` is the `pbxsim.dialplan.DialplanChannel` of one `AgiChannel`: variables
and functions are the channel's, every priority is reported as Asterisk's ``Newexten`` event,
``AGI()`` opens a FastAGI session to the host and port its URL names (`run_agi`, which leaves
AGISTATUS) and the other applications are those ``EXEC`` runs (`AgiChannel.run_application`).
`DialplanSubroutines` is what Dial's ``U()`` and ``b()`` run on the dialled channel: the
subroutine the option names, through the same interpreter (`CalleeDialplan`).

`load_dialplan_interpreter` reads extensions.conf (by default the shipped
``asterisk-conf/extensions.conf``) with HOTLINE_CONTROLLER pointed at the controller under test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pbxsim.agi_core import ChannelCore
from pbxsim.callers import CallerScript
from pbxsim.channel import AgiChannel
from pbxsim.dialplan import (
    CONTINUE,
    HANGUP,
    AppResult,
    DialplanError,
    DialplanInterpreter,
    DialplanStep,
)
from pbxsim.dialplan.arguments import app_args
from pbxsim.fastagi import AgiRequestSpec, AgiSessionResult, FastAgiConfig, run_agi
from pbxsim.model import SimChannel

log = logging.getLogger(__name__)

# The dialplan the simulated PBX runs unless told otherwise: the one shipped for Asterisk.
SHIPPED_DIALPLAN: Final = Path(__file__).resolve().parents[1] / "asterisk-conf" / "extensions.conf"
AGI_PORT: Final = 4573  # res_agi's default FastAGI port


def load_dialplan_interpreter(
    path: Path | str | None,
    controller_host: str,
    controller_port: int,
    more_controllers: Sequence[str] = (),
) -> DialplanInterpreter:
    """extensions.conf at `path` (None: the shipped one), its HOTLINE_CONTROLLER global set to
    the controller the simulator talks to, and HOTLINE_AGI_HOSTS to it and then
    `more_controllers` (host:port each), tried in turn by [from-pstn]."""
    first = f"{controller_host}:{controller_port}"
    return DialplanInterpreter.from_file(
        path or SHIPPED_DIALPLAN,
        globals_override={
            "HOTLINE_CONTROLLER": first,
            "HOTLINE_AGI_HOSTS": "&".join((first, *more_controllers)),
        },
    )


def agi_address(url: str) -> tuple[str, int]:
    """The (host, port) an ``agi://host[:port]/script`` URL connects to."""
    parts = urlsplit(url)
    if parts.scheme != "agi" or not parts.hostname:
        raise DialplanError(f"AGI({url}): the simulator runs only agi://host[:port]/script")
    return parts.hostname, parts.port or AGI_PORT


@dataclass(frozen=True)
class AgiLaunch:
    """What the channel's ``AGI()`` needs beyond its data: the channel's type and thread as
    res_agi reports them, and the FastAGI client's limits."""

    channel_type: str = "Local"
    threadid: int = 140365331818176
    fastagi: FastAgiConfig = field(default_factory=FastAgiConfig)


class SimDialplanChannel:
    """One `AgiChannel` as a `DialplanChannel`. `agi_result` is how its last ``AGI()`` ended
    (None until one ran)."""

    def __init__(self, agi: AgiChannel, launch: AgiLaunch | None = None) -> None:
        self.agi = agi
        self.launch = launch or AgiLaunch()
        self.agi_result: AgiSessionResult | None = None
        self._hidden: dict[str, list[str | None]] = {}  # values Gosub frames pushed over

    def get_variable(self, name: str) -> str | None:
        return self.agi.variable_value(name)

    def set_variable(self, name: str, value: str) -> None:
        self.agi.set_variable(name, value)

    def push_variable(self, name: str, value: str) -> None:
        self._hidden.setdefault(name, []).append(self.agi.channel.variables.get(name))
        self.agi.channel.variables[name] = value
        local = ("Variable", f"LOCAL({name})")
        self.agi.sink.emit("VarSet", [*self.agi.channel.headers(), local, ("Value", value)])

    def pop_variable(self, name: str) -> None:
        stack = self._hidden.get(name)
        old = stack.pop() if stack else None
        if old is None:
            self.agi.channel.variables.pop(name, None)
        else:
            self.agi.channel.variables[name] = old

    def read_function(self, name: str, args: str) -> str | None:
        return self.agi.function_value(f"{name}({args})")

    def write_function(self, name: str, args: str, value: str) -> bool:
        if name == "CHANNEL" and args.strip().lower() == "language":
            self.agi.channel.language = value
            return True
        if name in ("CALLERID", "CONNECTEDLINE"):
            self.agi.set_variable(f"{name}({args})", value)
            return True
        return False

    def newexten(self, step: DialplanStep) -> None:
        """Asterisk's ``Newexten``: the channel block at the new priority, then the extension
        dialled, the application and its data after substitution."""
        channel = self.agi.channel
        address = step.address
        channel.context, channel.exten, channel.priority = (
            address.context,
            address.exten,
            address.priority,
        )
        self.agi.sink.emit(
            "Newexten",
            [
                *channel.headers(),
                ("Extension", address.exten),
                ("Application", step.app),
                ("AppData", step.data),
            ],
        )

    async def run_app(self, app: str, data: str) -> AppResult:
        if app.lower() == "agi":
            return await self._agi(data)
        result = await self.agi.run_application(app, data)
        if result is None:
            raise DialplanError(f"{app}({data}): an application the simulator does not run")
        return HANGUP if result < 0 else CONTINUE

    async def _agi(self, data: str) -> AppResult:
        """``AGI(url,args...)``: a FastAGI session where the URL points; AGISTATUS is left on
        the channel, and HANGUP ends the dialplan as res_agi's -1 does."""
        url, *args = app_args(data) or [""]
        host, port = agi_address(url)
        request = AgiRequestSpec(
            url=url,
            args=tuple(args),
            channel_type=self.launch.channel_type,
            threadid=self.launch.threadid,
        )
        self.agi_result = await run_agi(self.agi, request, host, port, self.launch.fastagi)
        return HANGUP if self.agi_result.status == "HANGUP" else CONTINUE


@dataclass
class DialplanSubroutines:
    """Dial's ``U()``/``b()`` on the dialled channel: the dialplan's Gosub, run by
    `interpreter` on a channel of its own that shares the caller's clock, events and queues.
    The dialled channel's place in the dialplan is restored afterwards, as
    ast_app_exec_sub does."""

    interpreter: DialplanInterpreter
    launch: AgiLaunch = field(default_factory=lambda: AgiLaunch(channel_type="PJSIP"))

    async def run_gosub(self, caller: ChannelCore, callee: SimChannel, gosub: str) -> None:
        connected = (callee.connected_num, callee.connected_name)
        leg = AgiChannel(
            callee,
            CallerScript(),
            clock=caller.clock,
            sink=caller.sink,
            sounds=caller.sounds,
            queues=caller.queues,
            callee_dialplan=self,
            caller_num=_known(callee.caller_id_num),
            caller_name=_known(callee.caller_id_name),
        )
        callee.connected_num, callee.connected_name = connected  # the caller, not itself
        place = (callee.context, callee.exten, callee.priority)
        launch = self.launch
        if caller.threadid is not None:  # app_dial runs U() on the caller's thread
            launch = replace(launch, threadid=caller.threadid)
        channel = SimDialplanChannel(leg, launch)
        try:
            result = await self.interpreter.run_subroutine(channel, gosub)
        finally:
            callee.context, callee.exten, callee.priority = place
        status = channel.agi_result.status if channel.agi_result else None
        if not result.returned or status not in (None, "SUCCESS"):
            log.warning("simulated %s on %s: %s, AGISTATUS=%s", gosub, callee.name, result, status)


def _known(value: str) -> str | None:
    """A caller ID field as `AgiChannel` takes it: None where Asterisk prints ``<unknown>``."""
    return None if value == "<unknown>" else value
