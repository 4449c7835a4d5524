"""MixMonitor's recordings: the file Asterisk's ``.wav`` format would write, and the tap
that closes the files when the channel hangs up.

When a recording stops (the channel's ``Hangup``, or ``StopMixMonitor``) the file is written as
RIFF WAVE, PCM 16-bit mono 8 kHz, with as much audio as simulated time passed, a quiet two-tone
test signal standing in for the conversation.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from pbxsim.model import EventSink, SimChannel
from pbxsim.sounds import FRAME_SAMPLES, SAMPLE_RATE

MONITOR_DIR: Final = "/var/spool/asterisk/monitor"


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
class MixMonitorRun:
    """One running MixMonitor: its file and the simulated second it started."""

    path: Path
    started: float


class RecordingChannel(Protocol):
    """The channel a `HangupTap` watches: its identity, and how to close its recordings."""

    channel: SimChannel

    def stop_recordings(self) -> None: ...


class HangupTap:
    """The channel's event sink, seeing its ``Hangup`` first: MixMonitor closes its files as
    the channel goes away, so the files are complete when anyone hears of the hang-up."""

    def __init__(self, sink: EventSink, channel: RecordingChannel) -> None:
        self.inner = sink
        self.channel = channel

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        if event == "Hangup" and ("Uniqueid", self.channel.channel.uniqueid) in headers:
            self.channel.stop_recordings()
        self.inner.emit(event, headers)
