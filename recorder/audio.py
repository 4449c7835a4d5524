"""Audio files: encoding a spool WAV in process (`encode_file`) and a WAV file's duration.

The encoder is FFmpeg's own libraries (libavformat, libavcodec with libopus and LAME) through
PyAV, inside this process: a process per recording cost about as much CPU as the encoding itself
for a one-minute call. `encode_file` is CPU-bound and blocking; PyAV releases the GIL while the
codec works, so the pipeline runs it in a thread of `encoder_threads` and the event loop keeps
serving calls meanwhile. Used by the pipeline's transcode step (`recorder.pipeline`).
"""

from __future__ import annotations

import os
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import av.error
from av.audio.stream import AudioStream

from hotline.private import open_private
from recorder.settings import FORMATS

__all__ = ["TranscodeFailed", "encode_file", "encode_stream", "encoder_threads", "wav_duration"]


def encoder_threads(count: int) -> ThreadPoolExecutor:
    """The pool the pipeline encodes in: at most `count` encodings at once, in threads of their
    own (named, so a thread dump says what they are), not the event loop's default pool."""
    return ThreadPoolExecutor(count, "recorder-encode")


class TranscodeFailed(Exception):
    """The spool file is not audio the encoder can read (not a WAV, or its header is broken)."""


def encode_file(source: Path, target: Path, format: str, *, durable: bool = True) -> float:
    """Encode the WAV `source` into the new private file `target` as `format` (a key of
    FORMATS); with `durable`, on disk (fsync) before returning, for a row that will say the
    step is done. The pipeline passes durable=False: it encrypts the file at once and only the
    ciphertext must survive a crash. Returns the seconds of audio encoded. Raises
    TranscodeFailed when `source` is not readable audio."""
    open_private(target).close()  # created 0600 first: libavformat then writes into it
    seconds = encode_stream(source, target, format)
    if not durable:
        return seconds
    descriptor = os.open(target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return seconds


def encode_stream(source: Path, target: Path, format: str) -> float:
    """Encode the WAV `source` into the file `target` (truncated, its mode kept); the seconds
    of audio encoded. By path rather than a Python file object: libavformat then writes with
    its own I/O, where a file object costs a call back into Python for every write (8-14 % of
    the encoding's CPU on one-minute calls, measured alone; within the noise of the whole
    pipeline's benchmark)."""
    encoding = FORMATS[format]
    try:
        # libavformat's own packet size (4,096 bytes) measured cheaper than 9,600 or 32,768
        with av.open(str(source), format="wav") as wav:
            if not wav.streams.audio:
                raise TranscodeFailed(f"{source.name} has no audio stream")
            heard = wav.streams.audio[0]
            with av.open(str(target), "w", format=encoding.container) as output:
                stream = output.add_stream(
                    encoding.codec,
                    rate=_output_rate(encoding.codec, heard.rate),
                    layout="mono",
                    options=dict(encoding.options),
                )
                if not isinstance(stream, AudioStream):  # a FORMATS entry with a video codec
                    raise TypeError(f"{encoding.codec} is not an audio encoder")
                if encoding.bit_rate is not None:
                    stream.bit_rate = encoding.bit_rate
                samples = 0
                for frame in wav.decode(heard):
                    samples += frame.samples
                    output.mux(stream.encode(frame))
                output.mux(stream.encode(None))  # the encoder's last buffered frames
    except av.error.FFmpegError as error:
        raise TranscodeFailed(f"{source.name} is not readable audio: {error.strerror}") from error
    return samples / heard.rate


def _output_rate(codec: str, rate: int) -> int:
    """The input's sample rate if the encoder takes it (libopus: 8-48 kHz steps), else the
    encoder's highest: never a rate the call was not recorded at, when avoidable."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    return max(rates)


def wav_duration(path: Path) -> float | None:
    """Duration of a WAV file from its header; from its size if the header was never finished
    (Asterisk writes the sizes at close, so a crash leaves them zero); None if not a WAV."""
    try:
        with wave.open(str(path), "rb") as audio:
            rate, width, channels = audio.getframerate(), audio.getsampwidth(), audio.getnchannels()
            frames = audio.getnframes()
    # RuntimeError: what `wave` raises on a chunk size past the file's end (a broken header)
    except (wave.Error, EOFError, OSError, RuntimeError):
        return None
    if rate <= 0 or width <= 0 or channels <= 0:
        return None
    if frames == 0:
        frames = max(0, path.stat().st_size - 44) // (width * channels)
    return frames / rate
