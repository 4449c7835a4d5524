"""What Dial's ``U(name^args)`` runs on the operator's channel at answer: the hotline
dialplan's subroutine makes a second FastAGI call (asterisk-conf/extensions.conf).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from pbxsim.callers import CallerScript
from pbxsim.model import SimChannel

if TYPE_CHECKING:
    from pbxsim.agi_core import ChannelCore


log = logging.getLogger(__name__)


DialSubroutine = Callable[["ChannelCore", SimChannel, list[str]], Awaitable[None]]


DEFAULT_CONTROLLER: Final = "127.0.0.1:4573"  # extensions.conf's [globals] HOTLINE_CONTROLLER


def agi_subroutine(script: str, param: str) -> DialSubroutine:
    """A Dial ``U()`` subroutine that runs ``AGI(agi://${HOTLINE_CONTROLLER}/<script>?<param>=
    ${ARG1})`` on the operator's channel, then returns: a second FastAGI session, as Asterisk
    opens it. HOTLINE_CONTROLLER is read like the dialplan global (a caller channel variable
    of that name stands in for it; default 127.0.0.1:4573)."""

    async def run(caller: ChannelCore, callee: SimChannel, args: list[str]) -> None:
        from urllib.parse import quote

        from pbxsim.channel import AgiChannel
        from pbxsim.fastagi import AgiRequestSpec, run_agi

        controller = caller.variable("HOTLINE_CONTROLLER") or DEFAULT_CONTROLLER
        host, _, port = controller.rpartition(":")
        url = f"agi://{controller}/{script}?{param}={quote(args[0] if args else '')}"
        leg = AgiChannel(
            callee, CallerScript(), clock=caller.clock, sink=caller.sink, queues=caller.queues
        )
        result = await run_agi(leg, AgiRequestSpec(url=url, channel_type="PJSIP"), host, int(port))
        if result.status != "SUCCESS":
            log.warning("simulated U() hook %s: AGISTATUS=%s", url, result.status)

    return run
