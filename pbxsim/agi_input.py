"""AGI commands that read the caller: GET DATA, WAIT FOR DIGIT, RECEIVE CHAR/TEXT."""

from __future__ import annotations

from pbxsim.agi_core import ChannelCore
from pbxsim.agi_results import (
    RESULT_FAILURE,
    RESULT_SHOWUSAGE,
    RESULT_SUCCESS,
    Handled,
    c_atoi,
    c_int,
    ok,
    status_of,
)
from pbxsim.timeline import (
    any_digit,
    no_digit,
)


class InputCommands(ChannelCore):
    """The commands that read the caller's keys and text."""

    async def h_get_data(self, argv: list[str]) -> Handled:
        if len(argv) < 3:
            return RESULT_SHOWUSAGE, None
        timeout = c_atoi(argv[3]) if len(argv) >= 4 else 0
        most = c_atoi(argv[4]) if len(argv) >= 5 else 1024
        res, digits = await self._get_data(argv[2], timeout, min(most, 1024))
        if res < 0:
            return RESULT_SUCCESS, ok(-1)
        return RESULT_SUCCESS, ok(digits, "timeout" if res == 1 else None)

    async def _get_data(self, prompt: str, timeout_ms: int, most: int) -> tuple[int, str]:
        """ast_app_getdata_full + ast_readstring_full: (0 done | 1 timeout | -1, digits)."""
        first, between = (timeout_ms, timeout_ms) if timeout_ms > 0 else (6000, 2000)
        if timeout_ms < 0:
            first = between = 1_000_000_000
        if prompt and self.sounds.length(prompt) is None:
            return -1, ""
        if self.hung_up or most <= 0:
            return -1, ""
        digits = ""
        code = 0
        if prompt:
            played = await self._play(prompt, any_digit)
            code = played[0] if played else 0
        wait_ms = first
        while True:
            if code == 0:
                code = await self._wait_digit(wait_ms)
            if code <= 0:
                return (-1, digits) if code < 0 else (1, digits)
            if chr(code) == "#":
                return 0, digits
            digits += chr(code)
            if len(digits) >= most:
                return 0, digits
            code, wait_ms = 0, between

    async def h_wait_for_digit(self, argv: list[str]) -> Handled:
        timeout = c_int(argv[3]) if len(argv) == 4 else None
        if timeout is None:
            return RESULT_SHOWUSAGE, None
        res = await self._wait_digit(timeout)
        return status_of(res), ok(res)

    async def h_receive_char(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        await self._wait_for_text(c_atoi(argv[2]))
        # ast_recvchar gives -1 for a timeout too: no simulated channel carries text.
        return RESULT_FAILURE, ok(-1, "hangup")

    async def h_receive_text(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        await self._wait_for_text(c_atoi(argv[2]))
        return RESULT_SUCCESS, ok(-1)

    async def _wait_for_text(self, timeout_ms: int) -> None:
        deadline = None if timeout_ms <= 0 else self.clock.now() + timeout_ms / 1000
        await self._wait(deadline, no_digit)
