"""A channel with no PBX behind it, for ``hotline menus try``: prompts are only named, keys come
from a script (``--digits 1,,12345678901``) or from the terminal.

Each entry of the script answers one request for input, in order: a menu's key, a whole
number for a ``collect``, a rating. An empty entry is a caller who presses nothing (the
request times out); past the end of the script the caller presses nothing at all. Prompts
play to their end (no barge-in), as for a caller who listens.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from hotline.agi.session import CallerHungUp, Digits, Playback, Recording

Ask = Callable[[str], str | None]


def terminal_keypad(prompt: str) -> str | None:
    """Read one entry from stdin; None (the caller hangs up) at end of input."""
    print(f"  ? {prompt}: ", end="", flush=True)
    line = sys.stdin.readline()
    return None if not line else line.strip()


class ScriptedKeypad:
    """Entries given up front; nothing pressed once they run out."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._entries = deque(entries)

    def __call__(self, prompt: str) -> str | None:
        return self._entries.popleft() if self._entries else ""


class ConsoleChannel:
    """Satisfies `ivr.menu.model.Channel`; records what the menu asked Asterisk to do."""

    def __init__(
        self,
        keypad: Ask,
        *,
        call_id: str = "console.1",
        env: Mapping[str, str] | None = None,
        queue_status: str | None = None,
        dial_status: str = "ANSWER",
    ) -> None:
        self.call_id = call_id
        self.env: Mapping[str, str] = env or {}
        self.keypad = keypad
        self.variables: dict[str, str] = {}
        self.applications: list[tuple[str, tuple[str, ...]]] = []
        self.played: list[str] = []
        self.hung_up = False
        self._queue_status = queue_status
        self._dial_status = dial_status

    async def _entry(self, prompt: str) -> str:
        await asyncio.sleep(0)  # a real channel yields on every command; so does this one
        self._alive()
        entry = self.keypad(prompt)
        if entry is None:
            self.hung_up = True
            raise CallerHungUp("the caller hung up (end of input)")
        return entry

    def _alive(self) -> None:
        if self.hung_up:
            raise CallerHungUp("the call is over")

    async def answer(self) -> int:
        self._alive()
        return 0

    async def hangup(self) -> int:
        self._alive()
        self.hung_up = True
        return 1

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback:
        self._alive()
        self.played.append(name)
        return Playback(None, 8000)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> Digits:
        self.played.append(prompt)
        entry = "".join(c for c in await self._entry("digits, then Enter") if c in "0123456789*#")
        digits = entry.split("#")[0][:max_digits]
        return Digits(digits, timed_out=not digits)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        entry = await self._entry("one key")
        return entry[0] if entry else None

    async def set_variable(self, name: str, value: str) -> None:
        self._alive()
        self.variables[name] = value

    async def get_variable(self, name: str) -> str | None:
        if name == "QUEUESTATUS":
            return self._queue_status
        if name == "DIALSTATUS":
            return self._dial_status
        return self.variables.get(name)

    async def exec(self, application: str, *options: str) -> int:
        self._alive()
        self.applications.append((application, options))
        return 0

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        beep: bool = False,
        silence_s: int | None = None,
        offset_samples: int = 0,
    ) -> Recording:
        self._alive()
        return Recording(None, 0, "timeout")  # what Asterisk says when silence ends it
