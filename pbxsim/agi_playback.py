"""AGI commands that play to the caller: STREAM FILE, CONTROL STREAM FILE, GET OPTION, the
SAY family and RECORD FILE.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Final

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
from pbxsim.sounds import (
    SAMPLE_RATE,
    alpha_files,
    digit_files,
    number_files,
)
from pbxsim.timeline import (
    escape_digits,
)

# The formats ast_writefile finds a writer for in a stock Asterisk 22 build (format_*.so).
RECORD_FORMATS: Final = frozenset(
    {"wav", "WAV", "wav16", "gsm", "ulaw", "alaw", "sln", "sln16", "g722", "g729", "ilbc"}
)


def open_recording(path: str, fmt: str, *, append: bool) -> bool:
    """What ast_writefile does before RECORD FILE records: open ``<path>.<fmt>`` with
    O_CREAT|O_WRONLY in an existing directory (it creates none) and, for wav, write the
    header. The simulated caller sends no audio, so the file keeps no samples. False when
    Asterisk would fail: an unknown format, a missing or unwritable directory."""
    if fmt not in RECORD_FORMATS:
        return False
    target = Path(f"{path}.{fmt}")
    try:
        if fmt.lower() == "wav" and not append:
            with target.open("wb") as file, wave.open(file, "wb") as audio:
                audio.setnchannels(1)
                audio.setsampwidth(2)
                audio.setframerate(SAMPLE_RATE)
        else:
            target.touch(mode=0o664)
    except OSError:
        return False
    return True


class PlaybackCommands(ChannelCore):
    """The commands that play sound files to the caller."""

    async def h_stream_file(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5:
            return RESULT_SHOWUSAGE, None
        offset = c_int(argv[4]) if len(argv) > 4 else 0
        if offset is None:
            return RESULT_SHOWUSAGE, None
        played = await self._play(argv[2], escape_digits(argv[3]), offset)
        if played is None:
            return RESULT_FAILURE, ok(-1, endpos=offset)
        res, endpos = played
        self.set_variable("PLAYBACKSTATUS", "FAILED" if res else "SUCCESS")
        return status_of(res), ok(res, endpos=endpos)

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
            wake = await self._wait(start + remaining, escape_digits(stop))
            res = wake.code
            # CPLAYBACKOFFSET: where playback stopped in ms, -1 at the end of the file.
            position = -1 if wake.kind == "timeout" else offset_ms + round((wake.at - start) * 1000)
        self._set_cplayback(res, stop, position)
        return status_of(res), ok(res, endpos=position)

    def _set_cplayback(self, res: int, stop: str, position: int) -> None:
        if res > 0 and stop and chr(res) in stop:
            self.set_variable("CPLAYBACKSTATUS", "USERSTOPPED")
            self.set_variable("CPLAYBACKSTOPKEY", chr(res))
        else:
            self.set_variable("CPLAYBACKSTATUS", "ERROR" if res < 0 else "SUCCESS")
        self.set_variable("CPLAYBACKOFFSET", str(position))

    async def h_get_option(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5:
            return RESULT_SHOWUSAGE, None
        escape = argv[3]
        timeout = c_atoi(argv[4]) if len(argv) == 5 else 5000  # the pbx's dtimeoutms
        played = await self._play(argv[2], escape_digits(escape))
        if played is None:
            return RESULT_FAILURE, ok(-1, endpos=0)
        res, endpos = played
        if res == 0:
            res = await self._wait_digit(timeout)
            # res_agi keeps the digit only if it is an escape digit; -1 fails that test too.
            if res != 0 and (res < 0 or chr(res) not in escape):
                res = 0
        return status_of(res), ok(res, endpos=endpos)

    async def h_say_alpha(self, argv: list[str]) -> Handled:
        if not 4 <= len(argv) <= 5 or (len(argv) == 5 and argv[4][:1] not in "aAlLnNuU"):
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(alpha_files(argv[2]), argv[3]))

    async def h_say_digits(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(digit_files(argv[2]), argv[3]))

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

    async def h_say_date(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        files = ["digits/day-0", "digits/mon-0", "digits/1", "digits/2"]
        return self._said(await self._say(files, argv[3]))

    async def h_say_time(self, argv: list[str]) -> Handled:
        if len(argv) != 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        return self._said(await self._say(["digits/1", "digits/2", "digits/a-m"], argv[3]))

    async def h_say_datetime(self, argv: list[str]) -> Handled:
        if len(argv) < 4 or c_int(argv[2]) is None:
            return RESULT_SHOWUSAGE, None
        files = ["digits/day-0", "digits/mon-0", "digits/1", "digits/2", "digits/at", "digits/1"]
        return self._said(await self._say(files, argv[3]))

    def _said(self, res: int) -> Handled:
        return status_of(res), ok(res)

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
            played = await self._play("beep", escape_digits(escape))
            res = played[0] if played else -1
            if res:
                return RESULT_SUCCESS, ok(res, "randomerror", endpos)
        if not open_recording(argv[2], argv[3], append=bool(offset)):
            # ast_writefile failed (no such directory, not writable, unknown format): no
            # endpos in this reply, and the handler's RESULT_FAILURE shows as AGIExecEnd's
            # "Failure"
            return RESULT_FAILURE, ok(-1, "writefile")
        if limit_ms == 0:  # the record loop does not run at all
            return RESULT_SUCCESS, ok(0, "timeout", endpos)
        deadline = None if limit_ms < 0 else self.clock.now() + limit_ms / 1000
        # The simulated caller sends no audio, so nothing is written and silence detection
        # never fires; like the Local channel of the transcript, endpos stays where it began.
        wake = await self._wait(deadline, escape_digits(escape))
        if wake.kind == "digit":
            return RESULT_SUCCESS, ok(wake.code, "dtmf", endpos)
        if wake.kind == "hangup":
            return RESULT_FAILURE, ok(-1, "hangup", endpos)
        return RESULT_SUCCESS, ok(0, "timeout", endpos)
