"""AGI commands that steer the channel itself: ANSWER, HANGUP, CHANNEL STATUS, SET AUTOHANGUP,
SET CALLERID/CONTEXT/EXTENSION/PRIORITY/MUSIC, VERBOSE, NOOP, and the ones a simulated
channel has nothing behind (SEND TEXT/IMAGE, TDD MODE, SPEECH ...).
"""

from __future__ import annotations

import re

from pbxsim.agi_core import ChannelCore
from pbxsim.agi_results import (
    ASYNC_AGI_BREAK,
    RESULT_SHOWUSAGE,
    RESULT_SUCCESS,
    Handled,
    c_float,
    c_int,
    ok,
    status_of,
)
from pbxsim.timeline import (
    CAUSE_NORMAL,
)


class ChannelControlCommands(ChannelCore):
    """The commands that change the channel rather than play or read it."""

    async def h_answer(self, argv: list[str]) -> Handled:
        res = await self._answer()
        return status_of(res), ok(res)

    async def h_asyncagi_break(self, argv: list[str]) -> Handled:
        return ASYNC_AGI_BREAK, ok(0)

    async def h_channel_status(self, argv: list[str]) -> Handled:
        if len(argv) == 2:
            return RESULT_SUCCESS, ok(int(self.channel.state))
        if len(argv) == 3:
            found = argv[2] == self.channel.name
            return RESULT_SUCCESS, ok(int(self.channel.state) if found else -1)
        return RESULT_SHOWUSAGE, None

    async def h_hangup(self, argv: list[str]) -> Handled:
        if len(argv) > 2:
            return RESULT_SHOWUSAGE, None
        if len(argv) == 2 and argv[1] != self.channel.name:
            return RESULT_SUCCESS, ok(-1)
        if not self.hung_up:
            self._schedule_hangup(self.clock.now(), by_caller=False, cause=0)
            self.poll()
        return RESULT_SUCCESS, ok(1)

    async def h_noop(self, argv: list[str]) -> Handled:
        return RESULT_SUCCESS, ok(0)

    async def h_send_image(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(0)

    async def h_send_text(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(0)

    async def h_set_autohangup(self, argv: list[str]) -> Handled:
        seconds = c_float(argv[2]) if len(argv) == 3 else None
        if seconds is None:
            return RESULT_SHOWUSAGE, None
        if self._autohangup is not None:
            self._timeline.remove(self._autohangup)
            self._autohangup = None
        if seconds > 0:
            self._autohangup = self._schedule_hangup(
                self.clock.now() + seconds, by_caller=False, cause=CAUSE_NORMAL
            )
        return RESULT_SUCCESS, ok(0)

    async def h_set_callerid(self, argv: list[str]) -> Handled:
        if len(argv) > 2:
            name, num = parse_callerid(argv[2])
            self.caller_name, self.caller_num = name, num
            self._sync_caller_id()
            self._emit("NewCallerid", ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
        return RESULT_SUCCESS, ok(1)

    async def h_set_context(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        self.channel.context = argv[2]
        return RESULT_SUCCESS, ok(0)

    async def h_set_extension(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        self.channel.exten = argv[2]
        return RESULT_SUCCESS, ok(0)

    async def h_set_music(self, argv: list[str]) -> Handled:
        if len(argv) < 3:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(0)

    async def h_set_priority(self, argv: list[str]) -> Handled:
        priority = c_int(argv[2]) if len(argv) == 3 else None
        if priority is None:  # labels need a dialplan the simulator does not have
            return RESULT_SHOWUSAGE, None
        # ast_explicit_goto inside the pbx loop stores priority - 1; the loop adds one back.
        self.channel.priority = priority - 1
        return RESULT_SUCCESS, ok(0)

    async def h_speech_create(self, argv: list[str]) -> Handled:
        return RESULT_SUCCESS, ok(0)  # no speech engine is loaded

    async def h_speech_argc4(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) != 4 else (RESULT_SUCCESS, ok(0))

    async def h_speech_argc5(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) != 5 else (RESULT_SUCCESS, ok(0))

    async def h_speech_recognize(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) < 4 else (RESULT_SUCCESS, ok(0))

    async def h_tdd_mode(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(0)  # no simulated channel is TDD-capable

    async def h_verbose(self, argv: list[str]) -> Handled:
        if len(argv) < 2:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(1)


def parse_callerid(text: str) -> tuple[str | None, str | None]:
    """ast_callerid_parse: ``"Name" <number>``, ``Name <number>`` or a bare number or name."""
    match = re.fullmatch(r'\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<(?P<num>[^>]*)>\s*', text)
    if match:
        num = re.sub(r"[()\-. ]", "", match["num"])
        return (match["name"] or None), (num or None)
    bare = text.strip()
    if re.fullmatch(r"[0-9+*#()\-. ]+", bare):
        return None, re.sub(r"[()\-. ]", "", bare)
    return (bare or None), None
