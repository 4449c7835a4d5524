"""Audio files: transcoding with ffmpeg (`transcode`) and a WAV file's duration.

Used by the pipeline's transcode step (`recorder.pipeline`) and by `bench/recorder.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from pathlib import Path

from recorder.settings import FORMATS

__all__ = ["TranscodeFailed", "transcode", "wav_duration"]


class TranscodeFailed(Exception):
    """ffmpeg could not read or convert the input."""


async def transcode(source: Path, target: Path, format: str) -> None:
    """Convert `source` to `format` (a key of FORMATS) with one single-threaded ffmpeg.

    ffmpeg runs as an asyncio subprocess (no thread, no blocking of the event loop); pydub
    would shell out to the same ffmpeg after loading the whole call into memory.
    """
    _, container, codec, extra = FORMATS[format]
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source), "-map_metadata", "-1", "-ac", "1", "-threads", "1",
        "-c:a", codec, *extra, "-f", container, str(target),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip()[-500:]
        raise TranscodeFailed(f"ffmpeg exit {process.returncode}: {detail}")


def wav_duration(path: Path) -> float | None:
    """Duration of a WAV file from its header; from its size if the header was never finished
    (Asterisk writes the sizes at close, so a crash leaves them zero); None if not a WAV."""
    try:
        with wave.open(str(path), "rb") as audio:
            rate, width, channels = audio.getframerate(), audio.getsampwidth(), audio.getnchannels()
            frames = audio.getnframes()
    except (wave.Error, EOFError, OSError):
        return None
    if rate <= 0 or width <= 0 or channels <= 0:
        return None
    if frames == 0:
        frames = max(0, path.stat().st_size - 44) // (width * channels)
    return frames / rate
