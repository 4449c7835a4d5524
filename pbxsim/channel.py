"""The Asterisk side of AGI commands for one simulated channel.

`AgiChannel.execute` takes one command line from the controller and returns the reply Asterisk
22's res_agi would write, changing the `SimChannel` the way the real command would and reporting
``AGIExecStart``/``AGIExecEnd``, ``VarSet``, ``DTMFBegin``/``DTMFEnd``, ``Newstate`` and
``HangupRequest`` through the `EventSink`, with the headers of ami-ivr-call.txt.

Media is simulated, not played: a prompt lasts as long as its sound file (`SoundLibrary`, 8 kHz
samples, ``endpos`` counted in 20 ms frames as the file stream reads them), and the caller's key
presses and hang-up come from a `CallerScript`. The rules that decide the bytes are res_agi's:

* DTMF that arrives while no command reads the channel waits in the channel's frame queue and
  is taken by the next command that reads (``GET DATA`` then sees digits typed ahead).
* A command that reads the channel consumes every digit it hears: escape digits end it, the
  rest are dropped (``SAY DIGITS 123 ""`` swallows what the caller types meanwhile).
* A hang-up during a command ends it with ``result=-1``; the unsolicited ``HANGUP`` line is the
  session's business (`pbxsim.fastagi`), sent before the next command is read.
* ``EXEC MixMonitor(file)`` records: when the recording stops (the channel's ``Hangup``, or
  ``StopMixMonitor``) the file is written as Asterisk's ``.wav`` format writes it (RIFF WAVE,
  PCM 16-bit mono 8 kHz) with as much audio as simulated time passed, a quiet two-tone test
  signal standing in for the conversation. As in Asterisk 22 (ami-queue-call.txt), a hang-up
  ends the recording without a ``MixMonitorStop``; only ``StopMixMonitor`` reports one.
* ``EXEC Dial(PJSIP/<seat>,<ring>,gU(sub^args))`` rings a simulated softphone (the queue half's
  `Operator` for that interface) and sets DIALSTATUS/DIALEDTIME/ANSWEREDTIME, with
  ``DialBegin``/``DialEnd``; at answer ``U()`` runs the subroutine the way the hotline's
  dialplan does: a second FastAGI session, from the operator's channel, to the controller
  named by HOTLINE_CONTROLLER (the dialplan global; a channel variable here).
* After the hang-up only the commands res_agi marks as safe on a dead channel run (``EXEC``,
  ``GET``/``SET VARIABLE``, ``GET FULL VARIABLE``, ``VERBOSE``, ``NOOP``, ``DATABASE``...); the
  others answer ``511``.

Time goes through a `hotline.clock.CallClock`: `InstantCallClock` (``time_scale`` 0) jumps
straight to the next thing that happens, `ScaledCallClock` sleeps ``time_scale`` real seconds
per simulated second.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import re
import wave
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from hotline.agi.protocol import DEAD_CHANNEL_TEXT, AgiReply, parse_command
from hotline.clock import CallClock
from pbxsim.callers import TONE_SECONDS, CallerScript, DtmfPress
from pbxsim.model import ChannelState, EventSink, NullSink, QueueService, SimChannel
from pbxsim.queues import Operator

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # one 20 ms frame at 8 kHz: the unit a file stream reads in

# res_agi's handler results (include/asterisk/agi.h) and its "asyncagi break" code.
RESULT_SUCCESS: Final = 0
RESULT_SHOWUSAGE: Final = 1
RESULT_FAILURE: Final = 2
ASYNC_AGI_BREAK: Final = 3

# Not handler results: how the dispatcher marks a line no handler ran for.
_UNKNOWN: Final = -510
_NOT_PERMITTED: Final = -511

INVALID_TEXT: Final = "Invalid or unknown command"
USAGE_HEAD: Final = "Invalid command syntax.  Proper usage follows:"
NO_USAGE_TEXT: Final = "Invalid command syntax.  Proper usage not available."
CAUSE_NORMAL: Final = 16
MONITOR_DIR: Final = "/var/spool/asterisk/monitor"

log = logging.getLogger(__name__)


# --- MixMonitor ----------------------------------------------------------------------------


def _test_signal() -> bytes:
    """One second of the recorded "conversation": 400 Hz + 1 kHz at about -26 dBFS, 16-bit
    little-endian. Both periods divide 8000 samples, so the second loops without a click."""
    samples = (
        round(800 * math.sin(2 * math.pi * 400 * n / SAMPLE_RATE))
        + round(800 * math.sin(2 * math.pi * 1000 * n / SAMPLE_RATE))
        for n in range(SAMPLE_RATE)
    )
    return b"".join(sample.to_bytes(2, "little", signed=True) for sample in samples)


_SIGNAL_SECOND: Final = _test_signal()


def write_recording(path: Path, seconds: float) -> None:
    """Write `seconds` of the test signal as Asterisk's wav format would (whole 20 ms frames).

    Missing directories are created, as MixMonitor does; an unwritable path raises OSError.
    """
    frames = max(0, int(seconds * SAMPLE_RATE)) // FRAME_SAMPLES * FRAME_SAMPLES
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(SAMPLE_RATE)
        whole, rest = divmod(frames, SAMPLE_RATE)
        for _ in range(whole):
            audio.writeframes(_SIGNAL_SECOND)
        audio.writeframes(_SIGNAL_SECOND[: rest * 2])


@dataclass
class _MixMonitor:
    """One running MixMonitor: its file and the simulated second it started."""

    path: Path
    started: float


class _HangupTap:
    """The channel's event sink, seeing its ``Hangup`` first: MixMonitor closes its files as
    the channel goes away, so the files are complete when anyone hears of the hang-up."""

    def __init__(self, sink: EventSink, channel: AgiChannel) -> None:
        self.inner = sink
        self.channel = channel

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        if event == "Hangup" and ("Uniqueid", self.channel.channel.uniqueid) in headers:
            self.channel.stop_recordings()
        self.inner.emit(event, headers)


# --- sounds ------------------------------------------------------------------------------

_SAY_FILE_SAMPLES: Final = 3704  # one Russian digit: SAY DIGITS 123 took 1.389 s
# Lengths in samples. beep, the digits and digits/20 are measured from the transcript
# (endpos=3404; SAY DIGITS 123 and SAY NUMBER 21 durations); the demo prompts are estimates.
DEFAULT_SOUNDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "beep": 3404,
        "demo-congrats": 20 * SAMPLE_RATE,
        "demo-enterkeywords": 28000,
        "digits/20": 7024,
        **{f"digits/{n}": _SAY_FILE_SAMPLES for n in range(10)},
    }
)


@dataclass(frozen=True)
class SoundLibrary:
    """How long each sound file plays; files in `missing` do not exist (``result=-1``)."""

    samples: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SOUNDS)
    default_samples: int = 2 * SAMPLE_RATE
    missing: frozenset[str] = frozenset()

    def length(self, name: str) -> int | None:
        """Samples in `name`, or None if the file does not exist."""
        if name in self.missing:
            return None
        if name in self.samples:
            return self.samples[name]
        if name.startswith(("digits/", "letters/", "phonetic/")):
            return _SAY_FILE_SAMPLES
        return self.default_samples


def played_samples(elapsed: float, offset: int, length: int) -> int:
    """``endpos`` for a stream stopped after `elapsed` seconds: the frames read so far."""
    samples = int(round(elapsed * SAMPLE_RATE, 6))
    return min(length, offset + (samples // FRAME_SAMPLES + 1) * FRAME_SAMPLES)


# --- the caller's timeline ---------------------------------------------------------------


class _Kind(Enum):
    TONE_BEGIN = 1
    TONE_END = 2
    HANGUP = 3


@dataclass(frozen=True, order=True)
class _Event:
    at: float
    seq: int
    kind: _Kind = field(compare=False)
    digit: str = field(compare=False, default="")
    press: int = field(compare=False, default=-1)
    cause: int = field(compare=False, default=CAUSE_NORMAL)
    by_caller: bool = field(compare=False, default=True)


class _Timeline:
    """Pending caller events in time order; hang-ups can be added as the call goes."""

    def __init__(self, script: CallerScript) -> None:
        self._heap: list[_Event] = []
        self._seq = 0
        for n, press in enumerate(script.presses):
            self.add(press.begin, _Kind.TONE_BEGIN, digit=press.digit, press=n)
            self.add(press.end, _Kind.TONE_END, digit=press.digit, press=n)
        if script.hangup_at is not None:
            self.add(script.hangup_at, _Kind.HANGUP)

    def add(
        self,
        at: float,
        kind: _Kind,
        *,
        digit: str = "",
        press: int = -1,
        cause: int = CAUSE_NORMAL,
        by_caller: bool = True,
    ) -> _Event:
        self._seq += 1  # ties keep the order things were scheduled in
        event = _Event(at, self._seq, kind, digit, press, cause, by_caller)
        heapq.heappush(self._heap, event)
        return event

    def remove(self, event: _Event) -> None:
        if event in self._heap:
            self._heap.remove(event)
            heapq.heapify(self._heap)

    def peek(self) -> float | None:
        return self._heap[0].at if self._heap else None

    def next_hangup(self) -> float | None:
        return min((e.at for e in self._heap if e.kind is _Kind.HANGUP), default=None)

    def pop_until(self, when: float) -> list[_Event]:
        due = []
        while self._heap and self._heap[0].at <= when:
            due.append(heapq.heappop(self._heap))
        return due

    def clear(self) -> None:
        self._heap.clear()


@dataclass(frozen=True)
class _Wake:
    kind: Literal["digit", "timeout", "hangup"]
    at: float
    digit: str = ""

    @property
    def code(self) -> int:
        """What ast_waitstream/ast_waitfordigit return: the digit, 0, or -1."""
        return ord(self.digit) if self.kind == "digit" else (0 if self.kind == "timeout" else -1)


def _any_digit(_digit: str) -> bool:
    return True


def _no_digit(_digit: str) -> bool:
    return False


def _escape(digits: str) -> Callable[[str], bool]:
    return lambda digit: digit in digits


# --- results -----------------------------------------------------------------------------

Handled = tuple[int, AgiReply | None]  # a handler's res_agi result and its reply line


@dataclass(frozen=True)
class Execution:
    """One command as the session sees it: the reply to write and whether res_agi counted
    it as RESULT_FAILURE (which decides AGISTATUS)."""

    reply: AgiReply
    failed: bool = False


@dataclass
class CallStats:
    """What the call did, for the run report."""

    commands: int = 0
    prompts: list[str] = field(default_factory=list)
    digits_received: list[str] = field(default_factory=list)
    digits_discarded: list[str] = field(default_factory=list)


def ok(result: int | str, data: str | None = None, endpos: int | None = None) -> AgiReply:
    """A ``200`` reply."""
    return AgiReply(code=200, result=str(result), data=data, endpos=endpos)


def c_int(text: str) -> int | None:
    """The number sscanf("%d") reads from the start of `text`, or None."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match[1]) if match else None


def c_atoi(text: str) -> int:
    """atoi(): the leading number, 0 when there is none."""
    value = c_int(text)
    return 0 if value is None else value


def c_float(text: str) -> float | None:
    """The number sscanf("%lf") reads from the start of `text`, or None."""
    match = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", text)
    return float(match[1]) if match else None


# --- the channel -------------------------------------------------------------------------


class AgiChannel:
    """One simulated channel answering AGI commands.

    `execute` runs one command line. Between commands the session calls `poll` (or waits for
    `next_event_time`) so the caller's key presses and hang-up happen at their time, and
    `notify_hangup` once it has written the ``HANGUP`` line; from then on the channel is dead.
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
        self._timeline = _Timeline(script)
        self._digits: deque[str] = deque()
        self._unheard: set[int] = set()  # presses that began before the call was answered
        self._presses: list[DtmfPress] = list(script.presses)  # and the menu keys pressed
        self._menu_keys: deque[str] = deque(script.menu_keys)
        self._menu_key_heard_at = 0.0  # when the last menu key's tone ends
        self._media_seen = 0
        self._autohangup: _Event | None = None
        self._hangup_cause = 0
        self._recordings: list[_MixMonitor] = []
        self._music_on_hold = False  # StartMusicOnHold ran and no StopMusicOnHold since
        self._dials = 0
        # What Dial's U(name^args) runs on the operator's channel; the hotline dialplan's one
        # subroutine makes a FastAGI call (asterisk-conf/extensions.conf).
        self.dial_subroutines: dict[str, DialSubroutine] = {
            "hotline-acd-answered": agi_subroutine("acd-answered", "call")
        }
        self.caller_num = caller_num
        self.caller_name = caller_name
        self._sync_caller_id()
        if script.hangup_after_commands == 0:
            self._schedule_hangup(0.0)

    # -- what the session needs -----------------------------------------------------------

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

    async def execute(self, line: str) -> Execution:
        """Run one command line exactly as res_agi's agi_handle_command would."""
        command_id = str(self._rng.randrange(2**31))
        self._emit("AGIExecStart", ("CommandId", command_id), ("Command", line))
        self.stats.commands += 1
        if self.stats.commands == self._script.hangup_during_command or self._hangs_up_during(line):
            self._schedule_hangup(self.clock.now() + self._mid_command_delay)
        argv = parse_command(line)
        self._press_when_asked(argv)
        status, reply = await self._dispatch(argv)
        code, text = _exec_end(status)
        self._emit(
            "AGIExecEnd",
            ("CommandId", command_id),
            ("Command", line),
            ("ResultCode", str(code)),
            ("Result", text),
        )
        if self.stats.commands == self._script.hangup_after_commands:
            self._schedule_hangup(self.clock.now())
        return Execution(reply, failed=status == RESULT_FAILURE)

    async def _dispatch(self, argv: list[str]) -> tuple[int, AgiReply]:
        command = find_command(argv)
        if command is None:
            return _UNKNOWN, AgiReply(code=510, text=INVALID_TEXT)
        if self.dead and not command.dead_ok:
            return _NOT_PERMITTED, AgiReply(code=511, text=DEAD_CHANNEL_TEXT)
        status, reply = await command.handler(self, argv)
        if status == RESULT_SHOWUSAGE or reply is None:
            return RESULT_SHOWUSAGE, _usage_reply(command.words)
        return status, reply

    # -- events -------------------------------------------------------------------------

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

    def _set_state(self, state: ChannelState) -> None:
        if self.channel.state != state:
            self.channel.state = state
            self._emit("Newstate")

    def _sync_caller_id(self) -> None:
        self.channel.caller_id_num = self.caller_num or "<unknown>"
        self.channel.caller_id_name = self.caller_name or "<unknown>"
        self.channel.connected_num = self.channel.caller_id_num
        self.channel.connected_name = self.channel.caller_id_name

    # -- the caller's timeline ----------------------------------------------------------

    def _schedule_hangup(
        self, at: float, *, by_caller: bool = True, cause: int = CAUSE_NORMAL
    ) -> _Event:
        return self._timeline.add(at, _Kind.HANGUP, cause=cause, by_caller=by_caller)

    def _fire_until(self, when: float) -> None:
        for event in self._timeline.pop_until(when):
            if self.hung_up:
                return
            self._fire(event)

    def _fire(self, event: _Event) -> None:
        if event.kind is _Kind.HANGUP:
            self._hang_up(event)
        elif event.kind is _Kind.TONE_BEGIN:
            self._tone_begin(event)
        elif event.press not in self._unheard:
            self._emit(
                "DTMFEnd",
                ("Digit", event.digit),
                ("DurationMs", str(self._tone_ms(event))),
                ("Direction", "Received"),
            )
            self._digits.append(event.digit)

    def _tone_begin(self, event: _Event) -> None:
        # No media path before the answer: what the caller types then never reaches Asterisk.
        if self.channel.state != ChannelState.UP:
            self._unheard.add(event.press)
            return
        self._media_seen += 1
        self._emit("DTMFBegin", ("Digit", event.digit), ("Direction", "Received"))

    def _press_when_asked(self, argv: list[str]) -> None:
        """The listening caller (`CallerScript.menu_keys`) presses their next key."""
        if not self._menu_keys or self.clock.now() < self._menu_key_heard_at:
            return
        accepted = _keys_read_by(argv)
        if accepted is None or (accepted and self._menu_keys[0] not in accepted):
            return
        begin = self.clock.now() + self._script.reaction
        press = DtmfPress(self._menu_keys.popleft(), begin, begin + TONE_SECONDS)
        self._presses.append(press)
        n = len(self._presses) - 1
        self._timeline.add(press.begin, _Kind.TONE_BEGIN, digit=press.digit, press=n)
        self._timeline.add(press.end, _Kind.TONE_END, digit=press.digit, press=n)
        self._menu_key_heard_at = press.end

    def _tone_ms(self, event: _Event) -> int:
        press = self._presses[event.press]
        return round((press.end - press.begin) * 1000)

    def _hang_up(self, event: _Event) -> None:
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

    # -- reading the channel ------------------------------------------------------------

    async def _wait(self, deadline: float | None, wants: Callable[[str], bool]) -> _Wake:
        """Read the channel until a wanted digit, `deadline` (None: forever) or hang-up.
        Digits heard and not wanted are consumed, as ast_waitstream/ast_waitfordigit do."""
        while True:
            if self.hung_up:
                return _Wake("hangup", self.clock.now())
            wake = self._take_digit(wants)
            if wake is not None:
                return wake
            upcoming = self._timeline.peek()
            if deadline is not None and (upcoming is None or deadline < upcoming):
                await self.clock.sleep_until(deadline)
                return _Wake("timeout", deadline)
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

    def _take_digit(self, wants: Callable[[str], bool]) -> _Wake | None:
        while self._digits:
            digit = self._digits.popleft()
            if wants(digit):
                self.stats.digits_received.append(digit)
                return _Wake("digit", self.clock.now(), digit)
            self.stats.digits_discarded.append(digit)
        return None

    async def _wait_digit(self, timeout_ms: int) -> int:
        """ast_waitfordigit_full: the digit's code, 0 on timeout, -1 on hang-up."""
        if timeout_ms == 0:
            return 0
        deadline = None if timeout_ms < 0 else self.clock.now() + timeout_ms / 1000
        return (await self._wait(deadline, _any_digit)).code

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
            played = await self._play_quietly(name, _escape(escape))
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

    # -- AGI commands -------------------------------------------------------------------

    async def h_answer(self, argv: list[str]) -> Handled:
        res = await self._answer()
        return _status(res), ok(res)

    async def h_asyncagi_break(self, argv: list[str]) -> Handled:
        return ASYNC_AGI_BREAK, ok(0)

    async def h_channel_status(self, argv: list[str]) -> Handled:
        if len(argv) == 2:
            return RESULT_SUCCESS, ok(int(self.channel.state))
        if len(argv) == 3:
            found = argv[2] == self.channel.name
            return RESULT_SUCCESS, ok(int(self.channel.state) if found else -1)
        return RESULT_SHOWUSAGE, None

    async def h_control_stream_file(self, argv: list[str]) -> Handled:
        if not 5 <= len(argv) <= 10 or (len(argv) > 5 and c_int(argv[5]) is None):
            return RESULT_SHOWUSAGE, None
        offset_ms = c_int(argv[9]) if len(argv) > 9 else 0
        if offset_ms is None:
            return RESULT_SHOWUSAGE, None
        stop = argv[4]
        length = self.sounds.length(argv[3])
        if length is None:
            res, position = -1, offset_ms
        else:
            self.stats.prompts.append(argv[3])
            start = self.clock.now()
            remaining = max(0.0, length / SAMPLE_RATE - offset_ms / 1000)
            wake = await self._wait(start + remaining, _escape(stop))
            res = wake.code
            # CPLAYBACKOFFSET: where playback stopped in ms, -1 at the end of the file.
            position = -1 if wake.kind == "timeout" else offset_ms + round((wake.at - start) * 1000)
        self._set_cplayback(res, stop, position)
        return _status(res), ok(res, endpos=position)

    def _set_cplayback(self, res: int, stop: str, position: int) -> None:
        if res > 0 and stop and chr(res) in stop:
            self.set_variable("CPLAYBACKSTATUS", "USERSTOPPED")
            self.set_variable("CPLAYBACKSTOPKEY", chr(res))
        else:
            self.set_variable("CPLAYBACKSTATUS", "ERROR" if res < 0 else "SUCCESS")
        self.set_variable("CPLAYBACKOFFSET", str(position))

    async def h_database_del(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        found = self._astdb.pop((argv[2], argv[3]), None) is not None
        return RESULT_SUCCESS, ok(1 if found else 0)

    async def h_database_deltree(self, argv: list[str]) -> Handled:
        if not 3 <= len(argv) <= 4:
            return RESULT_SHOWUSAGE, None
        prefix = argv[3] if len(argv) == 4 else ""
        doomed = [k for k in self._astdb if k[0] == argv[2] and k[1].startswith(prefix)]
        for key in doomed:
            del self._astdb[key]
        # res_agi answers 0 when it deleted something and 1 when not; kept as Asterisk has it.
        return RESULT_SUCCESS, ok(0 if doomed else 1)

    async def h_database_get(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        value = self._astdb.get((argv[2], argv[3]))
        return RESULT_SUCCESS, ok(0) if value is None else ok(1, value)

    async def h_database_put(self, argv: list[str]) -> Handled:
        if len(argv) != 5:
            return RESULT_SHOWUSAGE, None
        self._astdb[(argv[2], argv[3])] = argv[4]
        return RESULT_SUCCESS, ok(1)

    async def h_exec(self, argv: list[str]) -> Handled:
        if len(argv) < 2:
            return RESULT_SHOWUSAGE, None
        data = argv[2] if len(argv) >= 3 else ""
        if _is_true(self.variable("AGIEXECFULL")):
            data = self.substitute(data)
        app = _APPS.get(argv[1].lower())
        res = -2 if app is None else await app(self, data)
        # handle_exec returns the application's result itself: 0 reads as Success, -1 and -2
        # as "Unknown Result" in AGIExecEnd.
        return res, ok(res)

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
            played = await self._play(prompt, _any_digit)
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

    async def h_get_full_variable(self, argv: list[str]) -> Handled:
        if len(argv) not in (4, 5):
            return RESULT_SHOWUSAGE, None
        if len(argv) == 5 and argv[4] != self.channel.name:
            return RESULT_SUCCESS, ok(0)
        return RESULT_SUCCESS, ok(1, self.substitute(argv[3]))

    async def h_get_option(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5:
            return RESULT_SHOWUSAGE, None
        escape = argv[3]
        timeout = c_atoi(argv[4]) if len(argv) == 5 else 5000  # the pbx's dtimeoutms
        played = await self._play(argv[2], _escape(escape))
        if played is None:
            return RESULT_FAILURE, ok(-1, endpos=0)
        res, endpos = played
        if res == 0:
            res = await self._wait_digit(timeout)
            # res_agi keeps the digit only if it is an escape digit; -1 fails that test too.
            if res != 0 and (res < 0 or chr(res) not in escape):
                res = 0
        return _status(res), ok(res, endpos=endpos)

    async def h_get_variable(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        name = argv[2]
        value = self._read_function(name) if name.endswith(")") else self._lookup(name)
        return RESULT_SUCCESS, ok(0) if value is None else ok(1, value)

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
        await self._wait(deadline, _no_digit)

    async def h_record_file(self, argv: list[str]) -> Handled:
        if len(argv) < 6 or c_int(argv[5]) is None:
            return RESULT_SHOWUSAGE, None
        limit_ms = c_int(argv[5]) or 0
        escape = argv[4]
        offset = c_int(argv[6]) if len(argv) > 6 else None
        beep = (len(argv) > 6 and offset is None and not argv[6].startswith("s=")) or (
            len(argv) > 7 and not argv[7].startswith("s=")
        )
        endpos = offset or 0
        if beep:
            played = await self._play("beep", _escape(escape))
            res = played[0] if played else -1
            if res:
                return RESULT_SUCCESS, ok(res, "randomerror", endpos)
        if limit_ms == 0:  # the record loop does not run at all
            return RESULT_SUCCESS, ok(0, "timeout", endpos)
        deadline = None if limit_ms < 0 else self.clock.now() + limit_ms / 1000
        # The simulated caller sends no audio, so nothing is written and silence detection
        # never fires; like the Local channel of the transcript, endpos stays where it began.
        wake = await self._wait(deadline, _escape(escape))
        if wake.kind == "digit":
            return RESULT_SUCCESS, ok(wake.code, "dtmf", endpos)
        if wake.kind == "hangup":
            return RESULT_FAILURE, ok(-1, "hangup", endpos)
        return RESULT_SUCCESS, ok(0, "timeout", endpos)

    async def h_say_alpha(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5 or (len(argv) == 5 and argv[4][:1] not in "aAlLnNuU"):
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(_alpha_files(argv[2]), argv[3]))

    async def h_say_date(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        files = ["digits/day-0", "digits/mon-0", "digits/1", "digits/2"]
        return self._said(await self._say(files, argv[3]))

    async def h_say_datetime(self, argv: list[str]) -> Handled:
        if len(argv) < 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        files = ["digits/day-0", "digits/mon-0", "digits/1", "digits/2", "digits/at", "digits/1"]
        return self._said(await self._say(files, argv[3]))

    async def h_say_digits(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(_digit_files(argv[2]), argv[3]))

    async def h_say_number(self, argv: list[str]) -> Handled:
        number = c_int(argv[2]) if len(argv) > 2 else None
        if not 4 <= len(argv) <= 5 or number is None:
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(number_files(number), argv[3]))

    async def h_say_phonetic(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        files = [f"phonetic/{c.lower()}_p" for c in argv[2] if c.isalnum()]
        return self._said(await self._say(files, argv[3]))

    async def h_say_time(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(["digits/1", "digits/2", "digits/a-m"], argv[3]))

    def _said(self, res: int) -> Handled:
        return _status(res), ok(res)

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
            name, num = _parse_callerid(argv[2])
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

    async def h_set_variable(self, argv: list[str]) -> Handled:
        if len(argv) != 4:
            return RESULT_SHOWUSAGE, None
        self.set_variable(argv[2], argv[3])
        return RESULT_SUCCESS, ok(1)

    async def h_speech_create(self, argv: list[str]) -> Handled:
        return RESULT_SUCCESS, ok(0)  # no speech engine is loaded

    async def h_speech_argc4(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) != 4 else (RESULT_SUCCESS, ok(0))

    async def h_speech_argc5(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) != 5 else (RESULT_SUCCESS, ok(0))

    async def h_speech_recognize(self, argv: list[str]) -> Handled:
        return (RESULT_SHOWUSAGE, None) if len(argv) < 4 else (RESULT_SUCCESS, ok(0))

    async def h_stream_file(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5:
            return RESULT_SHOWUSAGE, None
        offset = c_int(argv[4]) if len(argv) > 4 else 0
        if offset is None:
            return RESULT_SHOWUSAGE, None
        played = await self._play(argv[2], _escape(argv[3]), offset)
        if played is None:
            return RESULT_FAILURE, ok(-1, endpos=offset)
        res, endpos = played
        self.set_variable("PLAYBACKSTATUS", "FAILED" if res else "SUCCESS")
        return _status(res), ok(res, endpos=endpos)

    async def h_tdd_mode(self, argv: list[str]) -> Handled:
        if len(argv) != 3:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(0)  # no simulated channel is TDD-capable

    async def h_verbose(self, argv: list[str]) -> Handled:
        if len(argv) < 2:
            return RESULT_SHOWUSAGE, None
        return RESULT_SUCCESS, ok(1)

    async def h_wait_for_digit(self, argv: list[str]) -> Handled:
        timeout = c_int(argv[3]) if len(argv) == 4 else None
        if timeout is None:
            return RESULT_SHOWUSAGE, None
        res = await self._wait_digit(timeout)
        return _status(res), ok(res)

    # -- dialplan applications (EXEC) ---------------------------------------------------

    async def app_answer(self, data: str) -> int:
        return await self._answer()

    async def app_hangup(self, data: str) -> int:
        if not self.hung_up:
            cause = c_int(data) or CAUSE_NORMAL
            self._schedule_hangup(self.clock.now(), by_caller=False, cause=cause)
            self.poll()
        return -1

    async def app_playback(self, data: str) -> int:
        files, _, options = data.partition(",")
        if self.channel.state != ChannelState.UP and "noanswer" not in options:
            if await self._answer() < 0:
                return -1
        failed = False
        for name in filter(None, files.split("&")):
            played = await self._play(name, _no_digit)
            if played is None:
                failed = True
                continue
            if played[0] < 0:
                self.set_variable("PLAYBACKSTATUS", "FAILED")
                return -1
        self.set_variable("PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
        return 0

    async def app_wait(self, data: str) -> int:
        seconds = c_float(data) or 0.0
        wake = await self._wait(self.clock.now() + max(0.0, seconds), _no_digit)
        return -1 if wake.kind == "hangup" else 0

    async def app_set(self, data: str) -> int:
        name, sep, value = data.partition("=")
        if sep and name:
            self.set_variable(name, value)
        return 0

    async def app_nothing(self, data: str) -> int:
        return 0

    async def app_start_music_on_hold(self, data: str) -> int:
        """res_musiconhold: MusicOnHoldStart (channel block + Class) as ami-queue-call.txt
        shows it; the class is the argument, else the channel's, else "default"."""
        music_class = data.split(",")[0] or self.channel.variables.get("MUSICCLASS") or "default"
        self._music_on_hold = True
        self._emit("MusicOnHoldStart", ("Class", music_class))
        return 0

    async def app_stop_music_on_hold(self, data: str) -> int:
        if self._music_on_hold:  # nothing to stop, nothing reported
            self._music_on_hold = False
            self._emit("MusicOnHoldStop")
        return 0

    async def app_mixmonitor(self, data: str) -> int:
        filename = data.split(",")[0]
        if filename and not filename.startswith("/"):
            filename = f"{MONITOR_DIR}/{filename}"
        self.set_variable("MIXMONITOR_FILENAME", filename)
        if filename:
            if not isinstance(self.sink, _HangupTap):
                self.sink = _HangupTap(self.sink, self)
            self._recordings.append(_MixMonitor(Path(filename), self.clock.now()))
        self._emit("MixMonitorStart")
        return 0

    async def app_stopmixmonitor(self, data: str) -> int:
        self.stop_recordings()
        self._emit("MixMonitorStop")
        return 0

    def stop_recordings(self) -> None:
        """Close every running MixMonitor: write its file with the audio of the time it ran."""
        now = self.clock.now()
        for recording in self._recordings:
            try:
                write_recording(recording.path, now - recording.started)
            except OSError as error:  # Asterisk logs it and the call goes on unrecorded
                log.warning("simulated MixMonitor cannot write %s: %s", recording.path, error)
        self._recordings.clear()

    async def app_queue(self, data: str) -> int:
        """Queue(name,options,URL,announce,timeout,...) through the queue half."""
        args = data.split(",")
        if self.hung_up or self.queues is None:
            return -1 if self.hung_up else self._queue_status("UNKNOWN")
        timeout = c_float(args[4]) if len(args) > 4 and args[4] else None
        status: str | None
        if self.clock.instant:
            status = await self._queue_in_virtual_time(args, timeout)
        else:
            status = await self._queue_in_real_time(args, timeout)
        self.poll()
        if status is None or self.hung_up:
            return -1  # the caller gave up: app_queue leaves QUEUESTATUS unset
        if status == "ANSWERED":  # the operator hung up; without option c so does the call
            return await self.app_hangup("")
        return self._queue_status(status)

    async def _queue_in_real_time(self, args: list[str], limit: float | None) -> str | None:
        """Wait in the queue while the caller's timeline runs; their hang-up cancels the
        wait, which the queue half reports as an abandoned call."""
        assert self.queues is not None
        waiting = asyncio.ensure_future(
            self.queues.enter(self.channel, args[0], _arg(args, 1), limit)
        )
        try:
            while not waiting.done():
                upcoming = self._timeline.peek()
                wait = None if upcoming is None else self.clock.real_wait(upcoming)
                await asyncio.wait({waiting}, timeout=wait)
                self.poll()
                if self.hung_up:
                    return None
            return waiting.result()
        finally:
            if not waiting.done():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

    async def _queue_in_virtual_time(self, args: list[str], limit: float | None) -> str:
        """Simulated time cannot race the queue half's own clock, so the caller's patience
        goes in as the wait limit: a TIMEOUT it caused is the caller hanging up."""
        assert self.queues is not None
        max_wait = _smaller(limit, self._patience_left())
        start = self.clock.now()
        status = await self.queues.enter(self.channel, args[0], _arg(args, 1), max_wait)
        if status == "TIMEOUT" and max_wait is not None:
            await self.clock.sleep_until(start + max_wait)
        return status

    async def app_dial(self, data: str) -> int:
        """Dial(device,timeout,options) to a simulated softphone (the queue half's `Operator`
        for that interface: ring delay, answers or not, talk time). Sets DIALSTATUS (ANSWER,
        NOANSWER, BUSY, CHANUNAVAIL, CANCEL), ANSWEREDTIME and DIALEDTIME, and prints
        DialBegin/DialEnd. Option ``U(sub^args)`` runs the subroutine on the operator's channel
        at answer; `dial_subroutines` says what it does (`agi_subroutine`: a FastAGI call, as
        the hotline's dialplan makes). Option ``g``: the call goes on after the operator hangs
        up; without it the caller is hung up too, as Asterisk does."""
        if self.hung_up:
            return -1
        args = data.split(",")
        device, options = args[0], _arg(args, 2)
        timeout = c_float(_arg(args, 1)) or None
        refused = self._device_refusal(device)
        if refused is not None:
            self.set_variable("DIALSTATUS", refused)
            return 0
        callee = self._callee_channel(device)
        started = self.clock.now()
        self._emit_dial("DialBegin", callee, ("DialString", device.partition("/")[2] or device))
        operator = self._operator(device)
        ring = operator.ring_delay if operator.answers else None
        if ring is None or (timeout is not None and ring >= timeout):
            wake = await self._wait(None if timeout is None else started + timeout, _no_digit)
            status = "CANCEL" if wake.kind == "hangup" else "NOANSWER"
            return self._dial_over(callee, status, started, None)
        wake = await self._wait(started + ring, _no_digit)
        if wake.kind == "hangup":
            return self._dial_over(callee, "CANCEL", started, None)
        callee.state = ChannelState.UP
        self.sink.emit("Newstate", callee.headers())
        await self._run_answer_hook(callee, options)
        answered = self.clock.now()
        self._emit_dial("DialEnd", callee, ("DialStatus", "ANSWER"))
        self._busy_device(device, True)
        try:
            await self._wait(answered + operator.next_talk_time(), _no_digit)
        finally:
            self._busy_device(device, False)
        return self._dial_over(callee, "ANSWER", started, answered, go_on="g" in _flags(options))

    def _device_refusal(self, device: str) -> str | None:
        from pbxsim.queues import DeviceState

        devices = getattr(self.queues, "devices", None)
        state = devices.get(device) if devices is not None else None
        if state in (DeviceState.UNAVAILABLE, DeviceState.INVALID):
            return "CHANUNAVAIL"
        if state in (DeviceState.INUSE, DeviceState.BUSY):
            return "BUSY"
        return None

    def _busy_device(self, device: str, busy: bool) -> None:
        from pbxsim.queues import DeviceState

        devices = getattr(self.queues, "devices", None)
        if devices is None:
            return
        if devices.get(device) in (DeviceState.UNAVAILABLE, DeviceState.INVALID):
            return  # unregistered during the call: hanging up does not register it again
        devices.update(device, DeviceState.INUSE if busy else DeviceState.NOT_INUSE)

    def _operator(self, device: str) -> Operator:
        operators: Mapping[str, Operator] = getattr(self.queues, "operators", {})
        default: Operator = getattr(self.queues, "default_operator", None) or Operator()
        return operators.get(device, default)

    def _callee_channel(self, device: str) -> SimChannel:
        ids = getattr(self.queues, "ids", None)
        self._dials += 1
        if ids is not None:
            uniqueid, sequence = ids.uniqueid(), ids.local_sequence()
        else:
            uniqueid, sequence = f"{self.channel.uniqueid}{self._dials}", f"{self._dials:08x}"
        callee = SimChannel(
            name=f"{device}-{sequence}",
            uniqueid=uniqueid,
            linkedid=self.channel.linkedid,
            context="default",
            exten="s",
            state=ChannelState.RINGING,
            language=self.channel.language,
            connected_num=self.channel.caller_id_num,
            connected_name=self.channel.caller_id_name,
        )
        self.sink.emit("Newchannel", callee.headers())
        return callee

    def _emit_dial(self, event: str, callee: SimChannel, extra: tuple[str, str]) -> None:
        self.sink.emit(event, [*self.channel.headers(), *callee.headers("Dest"), extra])

    async def _run_answer_hook(self, callee: SimChannel, options: str) -> None:
        hook = re.search(r"U\(([^)]*)\)", options)
        if hook is None:
            return
        name, _, raw_args = hook[1].partition("^")
        subroutine = self.dial_subroutines.get(name)
        if subroutine is None:
            log.warning("simulated Dial: no subroutine %r; U() skipped", name)
            return
        await subroutine(self, callee, raw_args.split("^") if raw_args else [])

    def _dial_over(
        self,
        callee: SimChannel,
        status: str,
        started: float,
        answered: float | None,
        *,
        go_on: bool = True,
    ) -> int:
        now = self.clock.now()
        if answered is None:
            self._emit_dial("DialEnd", callee, ("DialStatus", status))
        self.sink.emit(
            "Hangup", [*callee.headers(), ("Cause", "16"), ("Cause-txt", "Normal Clearing")]
        )
        self.set_variable("DIALSTATUS", status)
        self.set_variable("DIALEDTIME", str(int(now - started)))
        self.set_variable("ANSWEREDTIME", str(int(now - answered)) if answered else "")
        self.poll()
        if self.hung_up:
            return -1
        if answered is not None and not go_on:
            return -1  # Dial without g: the bridge's end ends the call
        return 0

    def _queue_status(self, status: str) -> int:
        self.set_variable("QUEUESTATUS", status)
        return 0

    def _patience_left(self) -> float | None:
        hangup = self._timeline.next_hangup()
        return None if hangup is None else max(0.0, hangup - self.clock.now())

    # -- variables and functions --------------------------------------------------------

    def _lookup(self, name: str) -> str | None:
        """pbx_retrieve_variable: a few builtins, then the channel's variables."""
        builtin = {
            "EXTEN": self.channel.exten,
            "CONTEXT": self.channel.context,
            "PRIORITY": str(self.channel.priority),
            "CHANNEL": self.channel.name,
            "UNIQUEID": self.channel.uniqueid,
            "EPOCH": str(self._epoch + int(self.clock.now())),
            "HANGUPCAUSE": str(self._hangup_cause),
        }.get(name)
        return builtin if builtin is not None else self.channel.variables.get(name)

    def _read_function(self, expression: str) -> str | None:
        """ast_func_read for the functions a hotline controller uses; None if unknown."""
        match = re.fullmatch(r"([A-Z_]+)\((.*)\)", expression.strip())
        if match is None:
            return None
        func, arg = match[1], match[2].strip().lower()
        if func == "CALLERID":
            return self._callerid_field(arg)
        if func == "CONNECTEDLINE":
            return self._callerid_field(arg)
        if func == "LEN":
            return str(len(match[2]))
        if func == "CHANNEL":
            return {
                "name": self.channel.name,
                "language": self.channel.language,
                "uniqueid": self.channel.uniqueid,
                "linkedid": self.channel.linkedid,
                "state": self.channel.state.desc,
            }.get(arg)
        return None

    def _callerid_field(self, arg: str) -> str | None:
        name, num = self.caller_name or "", self.caller_num or ""
        if arg == "name":
            return name
        if arg in ("num", "number"):
            return num
        if arg == "all":
            return f'"{name}" <{num}>' if name else num
        return None

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

    def substitute(self, text: str) -> str:
        """ast_str_substitute_variables for ``${...}``: variables and functions, nested."""
        out: list[str] = []
        pos = 0
        while (start := text.find("${", pos)) >= 0:
            end = _closing_brace(text, start + 2)
            if end < 0:
                break
            out.append(text[pos:start])
            inner = self.substitute(text[start + 2 : end])
            value = self._read_function(inner) if inner.endswith(")") else self._lookup(inner)
            out.append(value or "")
            pos = end + 1
        out.append(text[pos:])
        return "".join(out)


# --- the command table -------------------------------------------------------------------

Handler = Callable[[AgiChannel, list[str]], Awaitable[Handled]]
App = Callable[[AgiChannel, str], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    """One res_agi command: its words, its handler and whether it runs on a dead channel."""

    words: tuple[str, ...]
    handler: Handler
    dead_ok: bool


def _command(words: str, handler: Handler, dead_ok: bool = False) -> Command:
    return Command(tuple(words.split()), handler, dead_ok)


# res_agi's table, in its order, with its "dead" column.
COMMANDS: Final[tuple[Command, ...]] = (
    _command("answer", AgiChannel.h_answer),
    _command("asyncagi break", AgiChannel.h_asyncagi_break, True),
    _command("channel status", AgiChannel.h_channel_status),
    _command("database del", AgiChannel.h_database_del, True),
    _command("database deltree", AgiChannel.h_database_deltree, True),
    _command("database get", AgiChannel.h_database_get, True),
    _command("database put", AgiChannel.h_database_put, True),
    _command("exec", AgiChannel.h_exec, True),
    _command("get data", AgiChannel.h_get_data),
    _command("get full variable", AgiChannel.h_get_full_variable, True),
    _command("get option", AgiChannel.h_get_option),
    _command("get variable", AgiChannel.h_get_variable, True),
    _command("hangup", AgiChannel.h_hangup),
    _command("noop", AgiChannel.h_noop, True),
    _command("receive char", AgiChannel.h_receive_char),
    _command("receive text", AgiChannel.h_receive_text),
    _command("record file", AgiChannel.h_record_file),
    _command("say alpha", AgiChannel.h_say_alpha),
    _command("say digits", AgiChannel.h_say_digits),
    _command("say number", AgiChannel.h_say_number),
    _command("say phonetic", AgiChannel.h_say_phonetic),
    _command("say date", AgiChannel.h_say_date),
    _command("say time", AgiChannel.h_say_time),
    _command("say datetime", AgiChannel.h_say_datetime),
    _command("send image", AgiChannel.h_send_image),
    _command("send text", AgiChannel.h_send_text),
    _command("set autohangup", AgiChannel.h_set_autohangup),
    _command("set callerid", AgiChannel.h_set_callerid),
    _command("set context", AgiChannel.h_set_context),
    _command("set extension", AgiChannel.h_set_extension),
    _command("set music", AgiChannel.h_set_music),
    _command("set priority", AgiChannel.h_set_priority),
    _command("set variable", AgiChannel.h_set_variable, True),
    _command("stream file", AgiChannel.h_stream_file),
    _command("control stream file", AgiChannel.h_control_stream_file),
    _command("tdd mode", AgiChannel.h_tdd_mode),
    _command("verbose", AgiChannel.h_verbose, True),
    _command("wait for digit", AgiChannel.h_wait_for_digit),
    _command("speech create", AgiChannel.h_speech_create),
    _command("speech set", AgiChannel.h_speech_argc4),
    _command("speech destroy", AgiChannel.h_speech_create, True),
    _command("speech load grammar", AgiChannel.h_speech_argc5),
    _command("speech unload grammar", AgiChannel.h_speech_argc4, True),
    _command("speech activate grammar", AgiChannel.h_speech_argc4),
    _command("speech deactivate grammar", AgiChannel.h_speech_argc4),
    _command("speech recognize", AgiChannel.h_speech_recognize),
)

_APPS: Final[Mapping[str, App]] = MappingProxyType(
    {
        "answer": AgiChannel.app_answer,
        "hangup": AgiChannel.app_hangup,
        "playback": AgiChannel.app_playback,
        "wait": AgiChannel.app_wait,
        "queue": AgiChannel.app_queue,
        "dial": AgiChannel.app_dial,
        "mixmonitor": AgiChannel.app_mixmonitor,
        "stopmixmonitor": AgiChannel.app_stopmixmonitor,
        "set": AgiChannel.app_set,
        "startmusiconhold": AgiChannel.app_start_music_on_hold,
        "stopmusiconhold": AgiChannel.app_stop_music_on_hold,
        **{
            name: AgiChannel.app_nothing
            for name in (
                "noop",
                "verbose",
                "log",
                "progress",
                "ringing",
            )
        },
    }
)


def _keys_read_by(argv: Sequence[str]) -> str | None:
    """The keys a command listens for: its escape digits, "" for any key, None for none."""
    words = [word.lower() for word in argv[:3]]
    if words[:2] == ["stream", "file"] or words[:2] == ["get", "option"]:
        return (argv[3] if len(argv) > 3 else "") or None
    if words == ["control", "stream", "file"]:
        return (argv[4] if len(argv) > 4 else "") or None
    if words[:2] == ["get", "data"] or words == ["wait", "for", "digit"]:
        return ""
    return None


def find_command(argv: Sequence[str]) -> Command | None:
    """res_agi's find_command: the first entry whose words start the line, any case."""
    for command in COMMANDS:
        size = len(command.words)
        if len(argv) >= size and all(
            argv[n].lower() == word for n, word in enumerate(command.words)
        ):
            return command
    return None


def _exec_end(status: int) -> tuple[int, str]:
    """AGIExecEnd's ResultCode and Result for a handler's status."""
    if status == _UNKNOWN:
        return 510, INVALID_TEXT
    if status == _NOT_PERMITTED:
        return 511, DEAD_CHANNEL_TEXT
    if status == RESULT_SHOWUSAGE:
        return 520, "Usage"
    if status == RESULT_FAILURE:
        return -1, "Failure"
    if status in (RESULT_SUCCESS, ASYNC_AGI_BREAK):
        return 200, "Success"
    return 200, "Unknown Result"


def _status(res: int) -> int:
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


def _usage_reply(words: tuple[str, ...]) -> AgiReply:
    usage = USAGE.get(" ".join(words), "")
    if not usage:
        return AgiReply(code=520, text=NO_USAGE_TEXT)
    return AgiReply(code=520, text=f"{USAGE_HEAD}\n{usage}")


def _smaller(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None


def _arg(args: Sequence[str], n: int) -> str:
    return args[n] if len(args) > n else ""


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _closing_brace(text: str, pos: int) -> int:
    depth = 1
    while pos < len(text):
        if text.startswith("${", pos):
            depth += 1
            pos += 2
            continue
        if text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    return -1


def _parse_callerid(text: str) -> tuple[str | None, str | None]:
    """ast_callerid_parse: ``"Name" <number>``, ``Name <number>`` or a bare number or name."""
    match = re.fullmatch(r'\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<(?P<num>[^>]*)>\s*', text)
    if match:
        num = re.sub(r"[()\-. ]", "", match["num"])
        return (match["name"] or None), (num or None)
    bare = text.strip()
    if re.fullmatch(r"[0-9+*#()\-. ]+", bare):
        return None, re.sub(r"[()\-. ]", "", bare)
    return (bare or None), None


def _digit_files(text: str) -> list[str]:
    names = {"*": "digits/star", "#": "digits/pound", "-": "digits/minus"}
    return [f"digits/{c}" if c.isdigit() else names[c] for c in text if c.isdigit() or c in names]


def _alpha_files(text: str) -> list[str]:
    return [f"digits/{c}" if c.isdigit() else f"letters/{c.lower()}" for c in text if c.isalnum()]


def number_files(number: int) -> list[str]:
    """The sound files ast_say_number plays, in the digits/ naming every language shares."""
    if number < 0:
        return ["digits/minus", *number_files(-number)]
    if number <= 20:
        return [f"digits/{number}"]
    for size, word in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if number >= size:
            head, rest = divmod(number, size)
            return [*number_files(head), f"digits/{word}", *(number_files(rest) if rest else [])]
    tens, units = divmod(number, 10)
    return [f"digits/{tens * 10}", *([f"digits/{units}"] if units else [])]


# --- usage texts -------------------------------------------------------------------------

_RETURNS_DIGIT = (
    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
    "ASCII numerical value of the digit if one was pressed or <literal>-1</literal> on "
    "error/hangup."
)
_SEE_DB = "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."

# What res_agi prints between "520-Invalid command syntax.  Proper usage follows:" and
# "520 End of proper usage.": the command's XML <description> as the xmldoc builder renders it
# (each <para> on one line, whitespace collapsed, inline tags kept). SAY DIGITS is verbatim
# from agi-ivr-session.txt; the rest is rendered the same way from Asterisk 22's res_agi.c,
# and the lists (STREAM FILE, CHANNEL STATUS, CONTROL STREAM FILE) and the EXEC note follow
# xmldoc.c's list layout, which no transcript confirms.
USAGE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "answer": "Answers channel if not already in answer state. Returns <literal>-1</literal>"
        " on channel failure, or <literal>0</literal> if successful.",
        "channel status": "\n".join(
            [
                "Returns the status of the specified <replaceable>channelname</replaceable>. "
                "If no channel name is given then returns the status of the current channel.",
                "Return values:",
                *(
                    f"    <enum>{n}</enum>:  - {text}"
                    for n, text in enumerate(
                        (
                            "Channel is down and available.",
                            "Channel is down, but reserved.",
                            "Channel is off hook.",
                            "Digits (or equivalent) have been dialed.",
                            "Line is ringing.",
                            "Remote end is ringing.",
                            "Line is up.",
                            "Line is busy.",
                        )
                    )
                ),
            ]
        ),
        "control stream file": "\n".join(
            [
                "Send the given file, allowing playback to be controlled by the given digits, "
                "if any. Use double quotes for the digits if you wish none to be permitted. If "
                "offsetms is provided then the audio will seek to offsetms before play starts. "
                "Returns <literal>0</literal> if playback completes without a digit being "
                "pressed, or the ASCII numerical value of the digit if one was pressed, or "
                "<literal>-1</literal> on error or if the channel was disconnected. Returns the "
                "position where playback was terminated as endpos.",
                "It sets the following channel variables upon completion:",
                "<variable>CPLAYBACKSTATUS</variable>: Contains the status of the attempt as a "
                "text string",
                "    <value>SUCCESS</value>",
                "    <value>USERSTOPPED</value>",
                "    <value>REMOTESTOPPED</value>",
                "    <value>ERROR</value>",
                "<variable>CPLAYBACKOFFSET</variable>: Contains the offset in ms into the file "
                "where playback was at when it stopped. <literal>-1</literal> is end of file.",
                "<variable>CPLAYBACKSTOPKEY</variable>: If the playback is stopped by the user "
                "this variable contains the key that was pressed.",
            ]
        ),
        "database del": "Deletes an entry in the Asterisk database for a given "
        "<replaceable>family</replaceable> and <replaceable>key</replaceable>.\n" + _SEE_DB,
        "database deltree": "Deletes a <replaceable>family</replaceable> or specific "
        "<replaceable>keytree</replaceable> within a <replaceable>family</replaceable> in the "
        "Asterisk database.\n" + _SEE_DB,
        "database get": "Retrieves an entry in the Asterisk database for a given "
        "<replaceable>family</replaceable> and <replaceable>key</replaceable>.\n"
        "Returns <literal>0</literal> if <replaceable>key</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>key</replaceable> is set and returns the "
        "variable in parenthesis.\nExample return code: 200 result=1 (testvariable)",
        "database put": "Adds or updates an entry in the Asterisk database for a given "
        "<replaceable>family</replaceable>, <replaceable>key</replaceable>, and "
        "<replaceable>value</replaceable>.\n" + _SEE_DB,
        "exec": "Executes <replaceable>application</replaceable> with given "
        "<replaceable>options</replaceable>.\nReturns whatever the "
        "<replaceable>application</replaceable> returns, or <literal>-2</literal> on failure "
        "to find <replaceable>application</replaceable>.\n<note>NOTE:</note> exec does not "
        "evaluate dialplan functions and variables unless it is explicitly enabled by setting "
        "the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>.",
        "get data": "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end.",
        "get full variable": "Evaluates the given <replaceable>expression</replaceable> "
        "against the channel specified by <replaceable>channelname</replaceable>, or the "
        "current channel if <replaceable>channelname</replaceable> is not provided.\n"
        "Unlike GET VARIABLE, the <replaceable>expression</replaceable> is processed in a "
        "manner similar to dialplan evaluation, allowing complex and built-in variables to be "
        "accessed, e.g. <literal>The time is ${EPOCH}</literal>\n"
        "Returns <literal>0</literal> if no channel matching "
        "<replaceable>channelname</replaceable> exists, <literal>1</literal> otherwise.\n"
        "Example return code: 200 result=1 (The time is 1578493800)",
        "get option": "Behaves similar to STREAM FILE but used with a timeout option.",
        "get variable": "Returns <literal>0</literal> if <replaceable>variablename</replaceable>"
        " is not set. Returns <literal>1</literal> if <replaceable>variablename</replaceable> "
        "is set and returns the variable in parentheses.\n"
        "Example return code: 200 result=1 (testvariable)",
        "hangup": "Hangs up the specified channel. If no channel name is given, hangs up the "
        "current channel",
        "receive char": "Receives a character of text on a channel. Most channels do not "
        "support the reception of text. Returns the decimal value of the character if one is "
        "received, or <literal>0</literal> if the channel does not support text reception. "
        "Returns <literal>-1</literal> only on error/hangup.",
        "receive text": "Receives a string of text on a channel. Most channels do not support "
        "the reception of text. Returns <literal>-1</literal> for failure or "
        "<literal>1</literal> for success, and the string in parenthesis.",
        "record file": "Record to a file until a given dtmf digit in the sequence is received. "
        "Returns <literal>-1</literal> on hangup or error.  The format will specify what kind "
        "of file will be recorded. The <replaceable>timeout</replaceable> is the maximum record "
        "time in milliseconds, or <literal>-1</literal> for no "
        "<replaceable>timeout</replaceable>. <replaceable>offset samples</replaceable> is "
        "optional, and, if provided, will seek to the offset without exceeding the end of the "
        "file. <replaceable>beep</replaceable> can take any value, and causes Asterisk to play "
        "a beep to the channel that is about to be recorded. <replaceable>silence</replaceable>"
        " is the number of seconds of silence allowed before the function returns despite the "
        "lack of dtmf digits or reaching <replaceable>timeout</replaceable>. "
        "<replaceable>silence</replaceable> value must be preceded by <literal>s=</literal> "
        "and is also optional.",
        "say alpha": "Say a given character string, returning early if any of the given DTMF "
        "digits are received on the channel. " + _RETURNS_DIGIT,
        "say digits": "Say a given digit string, returning early if any of the given DTMF "
        "digits are received on the channel. " + _RETURNS_DIGIT,
        "say number": "Say a given number, returning early if any of the given DTMF digits are "
        "received on the channel.  " + _RETURNS_DIGIT,
        "say phonetic": "Say a given character string with phonetics, returning early if any "
        "of the given DTMF digits are received on the channel. Returns <literal>0</literal> if "
        "playback completes without a digit pressed, the ASCII numerical value of the digit if "
        "one was pressed, or <literal>-1</literal> on error/hangup.",
        "say date": "Say a given date, returning early if any of the given DTMF digits are "
        "received on the channel. " + _RETURNS_DIGIT,
        "say time": "Say a given time, returning early if any of the given DTMF digits are "
        "received on the channel. " + _RETURNS_DIGIT,
        "say datetime": "Say a given time, returning early if any of the given DTMF digits are "
        "received on the channel. " + _RETURNS_DIGIT,
        "send image": "Sends the given image on a channel. Most channels do not support the "
        "transmission of images. Returns <literal>0</literal> if image is sent, or if the "
        "channel does not support image transmission.  Returns <literal>-1</literal> only on "
        "error/hangup. Image names should not include extensions.",
        "send text": "Sends the given text on a channel. Most channels do not support the "
        "transmission of text. Returns <literal>0</literal> if text is sent, or if the channel "
        "does not support text transmission. Returns <literal>-1</literal> only on "
        "error/hangup.",
        "set autohangup": "Cause the channel to automatically hangup at "
        "<replaceable>time</replaceable> seconds in the future. Of course it can be hungup "
        "before then as well. Setting to <literal>0</literal> will cause the autohangup "
        "feature to be disabled on this channel.",
        "set context": "Sets the context for continuation upon exiting the application.",
        "set extension": "Changes the extension for continuation upon exiting the application.",
        "set music": "Enables/Disables the music on hold generator. If "
        "<replaceable>class</replaceable> is not specified, then the <literal>default</literal>"
        " music on hold class will be used. This generator will be stopped automatically when "
        "playing a file.\nAlways returns <literal>0</literal>.",
        "set priority": "Changes the priority for continuation upon exiting the application. "
        "The priority must be a valid priority or label.",
        "set variable": "Sets a variable to the current channel.",
        "stream file": "\n".join(
            [
                "Send the given file, allowing playback to be interrupted by the given digits, "
                "if any. Returns <literal>0</literal> if playback completes without a digit "
                "being pressed, or the ASCII numerical value of the digit if one was pressed, "
                "or <literal>-1</literal> on error or if the channel was disconnected. If "
                "musiconhold is playing before calling stream file it will be automatically "
                "stopped and will not be restarted after completion.",
                "It sets the following channel variables upon completion:",
                "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a "
                "text string.",
                "    <value>SUCCESS</value>",
                "    <value>FAILED</value>",
            ]
        ),
        "tdd mode": "Enable/Disable TDD transmission/reception on a channel. Returns "
        "<literal>1</literal> if successful, or <literal>0</literal> if channel is not "
        "TDD-capable.",
        "verbose": "Sends <replaceable>message</replaceable> to the console via verbose message"
        " system. <replaceable>level</replaceable> is the verbose level (1-4). Always returns "
        "<literal>1</literal>",
        "wait for digit": "Waits up to <replaceable>timeout</replaceable> milliseconds for "
        "channel to receive a DTMF digit. Returns <literal>-1</literal> on channel failure, "
        "<literal>0</literal> if no digit is received in the timeout, or the numerical value "
        "of the ascii of the digit if one is received. Use <literal>-1</literal> for the "
        "<replaceable>timeout</replaceable> value if you desire the call to block "
        "indefinitely.",
        "speech set": "Set an engine-specific setting.",
        "speech load grammar": "Loads the specified grammar as the specified name.",
        "speech unload grammar": "Unloads the specified grammar.",
        "speech activate grammar": "Activates the specified grammar on the speech object.",
        "speech deactivate grammar": "Deactivates the specified grammar on the speech object.",
        "speech recognize": "Plays back given <replaceable>prompt</replaceable> while listening"
        " for speech and dtmf.",
    }
)


DialSubroutine = Callable[["AgiChannel", SimChannel, list[str]], Awaitable[None]]
DEFAULT_CONTROLLER: Final = "127.0.0.1:4573"  # extensions.conf's [globals] HOTLINE_CONTROLLER


def agi_subroutine(script: str, param: str) -> DialSubroutine:
    """A Dial ``U()`` subroutine that runs ``AGI(agi://${HOTLINE_CONTROLLER}/<script>?<param>=
    ${ARG1})`` on the operator's channel, then returns: a second FastAGI session, as Asterisk
    opens it. HOTLINE_CONTROLLER is read like the dialplan global (a caller channel variable
    of that name stands in for it; default 127.0.0.1:4573)."""

    async def run(caller: AgiChannel, callee: SimChannel, args: list[str]) -> None:
        from urllib.parse import quote

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


def _flags(options: str) -> str:
    """Dial's single-letter options, without the arguments in parentheses."""
    return re.sub(r"\([^)]*\)", "", options)
