"""Dialplan applications ``EXEC`` runs on the channel: Answer, Hangup, Playback, Wait, Set,
Music on hold, and MixMonitor/StopMixMonitor (recordings written by `pbxsim.mixmonitor`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pbxsim.agi_core import ChannelCore
from pbxsim.agi_results import (
    c_float,
    c_int,
)
from pbxsim.mixmonitor import MONITOR_DIR, HangupTap, MixMonitorRun, write_recording
from pbxsim.model import ChannelState
from pbxsim.timeline import (
    CAUSE_NORMAL,
    no_digit,
)

log = logging.getLogger(__name__)


class DialplanApplications(ChannelCore):
    """The dialplan applications ``EXEC`` runs that stay on this channel."""

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
            played = await self._play(name, no_digit)
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
        wake = await self._wait(self.clock.now() + max(0.0, seconds), no_digit)
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
            if not isinstance(self.sink, HangupTap):
                self.sink = HangupTap(self.sink, self)
            self._recordings.append(MixMonitorRun(Path(filename), self.clock.now()))
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
