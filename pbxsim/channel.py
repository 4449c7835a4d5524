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
  ``DialBegin``/``DialEnd``; ``b()`` and, at answer, ``U()`` run their dialplan subroutine on
  the operator's channel (the channel's `CalleeDialplan`: `pbxsim.call_dialplan` runs
  extensions.conf, whose answer hook makes a second FastAGI session to the controller).
* After the hang-up only the commands res_agi marks as safe on a dead channel run (``EXEC``,
  ``GET``/``SET VARIABLE``, ``GET FULL VARIABLE``, ``VERBOSE``, ``NOOP``, ``DATABASE``...); the
  others answer ``511``.

How the work is shared: `pbxsim.agi_core` holds the channel's state, its timeline and the
primitives that read and play; the commands are grouped by job in `agi_playback`,
`agi_input`, `agi_variables`, `agi_control`, `agi_apps` (what ``EXEC`` runs) and `agi_dial`
(``Queue``/``Dial``); `AgiChannel` composes them and dispatches each line by res_agi's
table. Sounds are `pbxsim.sounds`, recordings `pbxsim.mixmonitor`, usage texts
`pbxsim.agi_usage`.

Time goes through a `hotline.clock.CallClock`: `InstantCallClock` (``time_scale`` 0) jumps
straight to the next thing that happens, `ScaledCallClock` sleeps ``time_scale`` real seconds
per simulated second.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from hotline.agi.protocol import DEAD_CHANNEL_TEXT, AgiReply, parse_command
from pbxsim.agi_control import ChannelControlCommands
from pbxsim.agi_dial import QueueAndDial
from pbxsim.agi_input import InputCommands
from pbxsim.agi_playback import PlaybackCommands
from pbxsim.agi_results import (
    INVALID_TEXT,
    NOT_PERMITTED,
    RESULT_FAILURE,
    RESULT_SHOWUSAGE,
    UNKNOWN_COMMAND,
    Execution,
    Handled,
    exec_end,
    is_true,
    ok,
    usage_reply,
)
from pbxsim.agi_variables import VariableCommands


class AgiChannel(
    PlaybackCommands, InputCommands, VariableCommands, ChannelControlCommands, QueueAndDial
):
    """One simulated channel answering AGI commands.

    `execute` runs one command line. Between commands the session calls `poll` (or waits for
    `next_event_time`) so the caller's key presses and hang-up happen at their time, and
    `notify_hangup` once it has written the ``HANGUP`` line; from then on the channel is dead.
    """

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
        code, text = exec_end(status)
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
            return UNKNOWN_COMMAND, AgiReply(code=510, text=INVALID_TEXT)
        if self.dead and not command.dead_ok:
            return NOT_PERMITTED, AgiReply(code=511, text=DEAD_CHANNEL_TEXT)
        status, reply = await command.handler(self, argv)
        if status == RESULT_SHOWUSAGE or reply is None:
            return RESULT_SHOWUSAGE, usage_reply(command.words)
        return status, reply

    async def run_application(self, app: str, data: str) -> int | None:
        """Run dialplan application `app` as ``EXEC`` does: its result (0 go on, -1 the
        channel hung up), None for an application the simulator does not know."""
        run = APPS.get(app.lower())
        return None if run is None else await run(self, data)

    async def h_exec(self, argv: list[str]) -> Handled:
        if len(argv) < 2:
            return RESULT_SHOWUSAGE, None
        data = argv[2] if len(argv) >= 3 else ""
        if is_true(self.variable("AGIEXECFULL")):
            data = self.substitute(data)
        app = APPS.get(argv[1].lower())
        res = -2 if app is None else await app(self, data)
        # handle_exec returns the application's result itself: 0 reads as Success, -1 and -2
        # as "Unknown Result" in AGIExecEnd.
        return res, ok(res)


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


APPS: Final[Mapping[str, App]] = MappingProxyType(
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


def find_command(argv: Sequence[str]) -> Command | None:
    """res_agi's find_command: the first entry whose words start the line, any case."""
    for command in COMMANDS:
        size = len(command.words)
        if len(argv) >= size and all(
            argv[n].lower() == word for n, word in enumerate(command.words)
        ):
            return command
    return None
