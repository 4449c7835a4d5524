"""The state of one simulated channel and the primitives AGI commands are built from: the
caller's timeline firing (DTMF, hang-up), reading the channel, streaming a file, answering,
setting variables and reporting events.

The rules that decide the bytes are res_agi's: DTMF that arrives while no command reads the
channel waits in the channel's frame queue and is taken by the next command that reads; a
command that reads the channel consumes every digit it hears (escape digits end it, the rest are
dropped); a hang-up during a command ends it with ``result=-1``.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from hotline.clock import CallClock
from pbxsim.agi_results import (
    CallStats,
)
from pbxsim.callers import TONE_SECONDS, CallerScript, DtmfPress
from pbxsim.mixmonitor import MixMonitorRun
from pbxsim.model import ChannelState, EventSink, NullSink, QueueService, SimChannel
from pbxsim.sounds import (
    SAMPLE_RATE,
    SoundLibrary,
    played_samples,
)
from pbxsim.timeline import (
    CAUSE_NORMAL,
    CallerEvent,
    CallerEventKind,
    CallerTimeline,
    Wake,
    any_digit,
    escape_digits,
)


class CalleeDialplan(Protocol):
    """Runs the dialplan subroutines Dial's options name on the dialled channel: ``U()`` at
    answer, ``b()`` before it rings (`pbxsim.call_dialplan.DialplanSubroutines`)."""

    async def run_gosub(self, caller: ChannelCore, callee: SimChannel, gosub: str) -> None:
        """Run the Gosub `gosub` on `callee`, dialled by `caller`, until its Return."""
        ...


def keys_read_by(argv: Sequence[str]) -> str | None:
    """The keys a command listens for: its escape digits, "" for any key, None for none."""
    words = [word.lower() for word in argv[:3]]
    if words[:2] == ["stream", "file"] or words[:2] == ["get", "option"]:
        return (argv[3] if len(argv) > 3 else "") or None
    if words == ["control", "stream", "file"]:
        return (argv[4] if len(argv) > 4 else "") or None
    if words[:2] == ["get", "data"] or words == ["wait", "for", "digit"]:
        return ""
    return None


def _entry_length(argv: Sequence[str]) -> int:
    """How many keys a listening caller types for a command: an entry's most digits for
    ``GET DATA`` (Asterisk's default is 1024), one key for anything else."""
    words = [word.lower() for word in argv[:2]]
    if words != ["get", "data"]:
        return 1
    if len(argv) > 4 and argv[4].isascii() and argv[4].isdigit():
        return max(1, int(argv[4]))
    return 1024


class ChannelCore:
    """One simulated channel's state and the primitives every AGI command is built from.

    The session half (`poll`, `next_event_time`, `notify_hangup`) lets the caller's key presses
    and hang-up happen at their time; the reading half (`_wait`, `_play`, `_say`, `_answer`)
    reads the channel the way ast_waitstream/ast_waitfordigit do. The commands themselves live
    in the classes `pbxsim.channel.AgiChannel` is composed of.
    """

    def __init__(
        self,
        channel: SimChannel,
        script: CallerScript,
        *,
        clock: CallClock,
        sink: EventSink | None = None,
        sounds: SoundLibrary | None = None,
        queues: QueueService | None = None,
        rng: random.Random | None = None,
        astdb: dict[tuple[str, str], str] | None = None,
        caller_num: str | None = None,
        caller_name: str | None = None,
        epoch: int = 0,
        mid_command_delay: float = 0.2,
        callee_dialplan: CalleeDialplan | None = None,
    ) -> None:
        self.channel = channel
        self.clock = clock
        self.sink: EventSink = sink or NullSink()
        self.sounds = sounds or SoundLibrary()
        self.queues = queues
        self.stats = CallStats()
        self.dead = False
        self.hung_up = False
        self.caller_hung_up = False  # the caller ended the call, not the PBX
        self._notified = False
        self._rng = rng or random.Random()
        self._astdb = astdb if astdb is not None else {}
        self._epoch = epoch
        self._script = script
        self._mid_command_delay = mid_command_delay
        self._timeline = CallerTimeline(script)
        self._digits: deque[str] = deque()
        self._unheard: set[int] = set()  # presses that began before the call was answered
        self._presses: list[DtmfPress] = list(script.presses)  # and the menu keys pressed
        self._menu_keys: deque[str] = deque(script.menu_keys)
        self._menu_key_heard_at = 0.0  # when the last menu key's tone ends
        self._media_seen = 0
        self._autohangup: CallerEvent | None = None
        self._hangup_cause = 0
        self._recordings: list[MixMonitorRun] = []
        self._music_on_hold = False  # StartMusicOnHold ran and no StopMusicOnHold since
        self._dials = 0
        # What Dial's U()/b() run on the dialled channel: the dialplan's subroutines.
        self.callee_dialplan = callee_dialplan
        self.caller_num = caller_num
        self.caller_name = caller_name
        # The thread of the AGI() running on the channel (agi_threadid), once one started.
        self.threadid: int | None = None
        self._sync_caller_id()
        if script.hangup_after_commands == 0:
            self._schedule_hangup(0.0)

    @property
    def hangup_pending(self) -> bool:
        """The channel hung up and the controller has not been told yet."""
        return self.hung_up and not self._notified

    def notify_hangup(self) -> None:
        """The ``HANGUP`` line went out: from now on only dead-safe commands run."""
        self._notified = True
        self.dead = True

    def mark_dead(self) -> None:
        """The AGI started on a channel already hung up: dead from the start, no notice."""
        self._notified = True
        self.dead = True

    def next_event_time(self) -> float | None:
        """When the caller does something next, or None if nothing more will happen."""
        return None if self.hung_up else self._timeline.peek()

    def poll(self) -> None:
        """Let everything due by now happen (key presses, hang-up)."""
        self._fire_until(self.clock.now())

    def variable(self, name: str) -> str | None:
        return self.channel.variables.get(name)

    def _hangs_up_during(self, line: str) -> bool:
        prefix = self._script.hangup_during_line
        return bool(prefix) and line.lower().startswith(str(prefix).lower())

    def _emit(self, event: str, *extra: tuple[str, str]) -> None:
        self.sink.emit(event, [*self.channel.headers(), *extra])

    def set_variable(self, name: str, value: str) -> None:
        """pbx_builtin_setvar_helper: functions are written, variables stored and reported."""
        if name.endswith(")"):
            self._write_function(name, value)
            return
        # Inheritance prefixes (_VAR, __VAR) are not part of the name variables are read by.
        self.channel.variables[name.removeprefix("_").removeprefix("_")] = value
        self._emit("VarSet", ("Variable", name), ("Value", value))

    def _write_function(self, expression: str, value: str) -> None:
        match = re.fullmatch(r"(CALLERID|CONNECTEDLINE)\((.*)\)", expression.strip())
        if match is None:
            return
        arg = match[2].strip().lower()
        if arg == "name":
            self.caller_name = value
        elif arg in ("num", "number"):
            self.caller_num = value
        self._sync_caller_id()

    def _set_state(self, state: ChannelState) -> None:
        if self.channel.state != state:
            self.channel.state = state
            self._emit("Newstate")

    def _sync_caller_id(self) -> None:
        self.channel.caller_id_num = self.caller_num or "<unknown>"
        self.channel.caller_id_name = self.caller_name or "<unknown>"
        self.channel.connected_num = self.channel.caller_id_num
        self.channel.connected_name = self.channel.caller_id_name

    def _schedule_hangup(
        self, at: float, *, by_caller: bool = True, cause: int = CAUSE_NORMAL
    ) -> CallerEvent:
        return self._timeline.add(at, CallerEventKind.HANGUP, cause=cause, by_caller=by_caller)

    def _fire_until(self, when: float) -> None:
        for event in self._timeline.pop_until(when):
            if self.hung_up:
                return
            self._fire(event)

    def _fire(self, event: CallerEvent) -> None:
        if event.kind is CallerEventKind.HANGUP:
            self._hang_up(event)
        elif event.kind is CallerEventKind.TONE_BEGIN:
            self._tone_begin(event)
        elif event.press not in self._unheard:
            self._emit(
                "DTMFEnd",
                ("Digit", event.digit),
                ("DurationMs", str(self._tone_ms(event))),
                ("Direction", "Received"),
            )
            self._digits.append(event.digit)

    def _tone_begin(self, event: CallerEvent) -> None:
        # No media path before the answer: what the caller types then never reaches Asterisk.
        if self.channel.state != ChannelState.UP:
            self._unheard.add(event.press)
            return
        self._media_seen += 1
        self._emit("DTMFBegin", ("Digit", event.digit), ("Direction", "Received"))

    def _press_when_asked(self, argv: list[str]) -> None:
        """The listening caller (`CallerScript.menu_keys`) presses their next key; asked for
        an entry (``GET DATA``), they type it through: each next key `reaction` seconds after
        the previous one, up to the command's most digits or a `#`, as a person keys in a
        number."""
        if not self._menu_keys or self.clock.now() < self._menu_key_heard_at:
            return
        accepted = keys_read_by(argv)
        if accepted is None or (accepted and self._menu_keys[0] not in accepted):
            return
        begin = self.clock.now()
        for _ in range(_entry_length(argv)):
            digit = self._menu_keys.popleft()
            begin += self._script.reaction
            press = DtmfPress(digit, begin, begin + TONE_SECONDS)
            self._presses.append(press)
            n = len(self._presses) - 1
            self._timeline.add(press.begin, CallerEventKind.TONE_BEGIN, digit=digit, press=n)
            self._timeline.add(press.end, CallerEventKind.TONE_END, digit=digit, press=n)
            self._menu_key_heard_at = begin = press.end
            if digit == "#" or not self._menu_keys:
                break

    def _tone_ms(self, event: CallerEvent) -> int:
        press = self._presses[event.press]
        return round((press.end - press.begin) * 1000)

    def _hang_up(self, event: CallerEvent) -> None:
        self.hung_up = True
        self.caller_hung_up = event.by_caller
        self._hangup_cause = event.cause
        # The caller's side hanging up reaches this channel as a hang-up request; the PBX
        # hanging it up (AGI HANGUP, Hangup(), autohangup) is a soft hang-up request.
        if event.by_caller:
            self._emit("HangupRequest", ("Cause", str(event.cause)))
        else:
            self._emit("SoftHangupRequest", ("Cause", str(event.cause)))
        self._timeline.clear()

    async def _wait(self, deadline: float | None, wants: Callable[[str], bool]) -> Wake:
        """Read the channel until a wanted digit, `deadline` (None: forever) or hang-up.
        Digits heard and not wanted are consumed, as ast_waitstream/ast_waitfordigit do."""
        while True:
            if self.hung_up:
                return Wake("hangup", self.clock.now())
            wake = self._take_digit(wants)
            if wake is not None:
                return wake
            upcoming = self._timeline.peek()
            if deadline is not None and (upcoming is None or deadline < upcoming):
                await self.clock.sleep_until(deadline)
                return Wake("timeout", deadline)
            if upcoming is None:
                await self._wait_forever()
                continue
            await self.clock.sleep_until(upcoming)
            self._fire_until(upcoming)

    async def _wait_forever(self) -> None:
        """A wait nothing will end: Asterisk would block until the channel dies; in virtual
        time that is a deadlock, so it is reported instead (give the caller a hang-up)."""
        if self.clock.instant:
            raise RuntimeError("nothing ends this wait: the caller script never hangs up")
        await asyncio.get_running_loop().create_future()

    def _take_digit(self, wants: Callable[[str], bool]) -> Wake | None:
        while self._digits:
            digit = self._digits.popleft()
            if wants(digit):
                self.stats.digits_received.append(digit)
                return Wake("digit", self.clock.now(), digit)
            self.stats.digits_discarded.append(digit)
        return None

    async def _wait_digit(self, timeout_ms: int) -> int:
        """ast_waitfordigit_full: the digit's code, 0 on timeout, -1 on hang-up."""
        if timeout_ms == 0:
            return 0
        deadline = None if timeout_ms < 0 else self.clock.now() + timeout_ms / 1000
        return (await self._wait(deadline, any_digit)).code

    async def _play(
        self, name: str, wants: Callable[[str], bool], offset: int = 0
    ) -> tuple[int, int] | None:
        """Stream one file as ast_waitstream_full does: (result, endpos), None if missing."""
        length = self.sounds.length(name)
        if length is None:
            return None
        self.stats.prompts.append(name)
        start = self.clock.now()
        duration = max(0, length - offset) / SAMPLE_RATE
        wake = await self._wait(start + duration, wants)
        if wake.kind == "timeout":
            return 0, length
        return wake.code, played_samples(wake.at - start, offset, length)

    async def _say(self, files: Sequence[str], escape: str) -> int:
        """ast_say_*: play the files in turn; a wanted digit or hang-up stops them."""
        for name in files:
            played = await self._play_quietly(name, escape_digits(escape))
            if played != 0:
                return played
        return 0

    async def _play_quietly(self, name: str, wants: Callable[[str], bool]) -> int:
        length = self.sounds.length(name) or 0
        deadline = self.clock.now() + length / SAMPLE_RATE
        return (await self._wait(deadline, wants)).code

    async def _answer(self) -> int:
        """ast_answer on a ringing channel: Up at once, then up to 500 ms waiting for media
        (frames read meanwhile go back on the queue, so typed-ahead digits survive)."""
        if self.hung_up:
            return -1
        if self.channel.state == ChannelState.UP:
            return 0
        self._set_state(ChannelState.UP)
        deadline = self.clock.now() + 0.5
        seen = self._media_seen
        while not self.hung_up and self._media_seen == seen:
            upcoming = self._timeline.peek()
            if upcoming is None or upcoming > deadline:
                await self.clock.sleep_until(deadline)
                break
            await self.clock.sleep_until(upcoming)
            self._fire_until(upcoming)
        return -1 if self.hung_up else 0
