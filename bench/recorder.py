"""Recorder pipeline benchmark: the whole pipeline beside raw ffmpeg and raw AES-GCM.

The same generated calls (8 kHz mono 16-bit WAV, as MixMonitor writes them: Russian speech
from espeak-ng followed by tones up to the call length) go through:

1. raw ffmpeg: the pipeline's exact transcoding command, one process per file, sequentially;
2. raw AES-256-GCM: each transcoded file encrypted in one call, in process;
3. the pipeline (`Recorder.run_until_idle`, one worker, SQLite, local storage): transcode,
   encrypt in frames, upload, verify by read-back, database rows, spool cleanup.

CPU is measured as user+system time of this process and its children (ffmpeg), so the figures
are core-seconds whatever the machine's load. audio-hours per core-hour = audio seconds / CPU
seconds. The target: the pipeline costs < 15 % more CPU than raw ffmpeg, and keeps up with
1,000 concurrent recorded calls (1,000 audio-hours per hour) on 2 cores.

Usage: .venv/bin/python bench/recorder.py [--calls 20] [--seconds 180] [--format opus]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from hotline.store.db import create_engine  # noqa: E402
from hotline.store.migrate import upgrade  # noqa: E402
from recorder.audio import transcode  # noqa: E402
from recorder.keys import KeyRing, MasterKeyStore  # noqa: E402
from recorder.models import RecordingStore, State  # noqa: E402
from recorder.pipeline import Recorder  # noqa: E402
from recorder.settings import FORMATS, RecorderSettings  # noqa: E402
from recorder.storage import LocalStorage  # noqa: E402

SPEECH = (
    "Здравствуйте. Вы позвонили на горячую линию государственных услуг. "
    "Оператор ответит вам через несколько минут. Назовите, пожалуйста, номер обращения."
)


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float  # core-seconds: this process and its children

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self.wall - other.wall, self.cpu - other.cpu)


def now() -> Cost:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() + children.ru_utime + children.ru_stime  # microsecond clocks
    return Cost(time.perf_counter(), cpu)


def make_calls(directory: Path, calls: int, seconds: float) -> list[Path]:
    """`calls` WAV files of `seconds` each: speech, then a tone (varied per call)."""
    speech = directory / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(speech), SPEECH], check=True)
    paths = []
    for n in range(calls):
        path = directory / f"1795563{n:03d}.{n}.wav"
        subprocess.run(
            [
                "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(speech),
                "-f", "lavfi", "-i", f"sine=frequency={300 + 37 * n}:sample_rate=8000",
                "-filter_complex", "[0:a]aresample=8000[s];[s][1:a]concat=n=2:v=0:a=1",
                "-t", str(seconds), "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", str(path),
            ],
            check=True,
        )  # fmt: skip
        paths.append(path)
    speech.unlink()
    return paths


async def raw_ffmpeg(
    calls: list[Path], out_dir: Path, audio_format: str
) -> tuple[Cost, list[Path]]:
    os.makedirs(out_dir)
    outputs = [out_dir / (call.stem + FORMATS[audio_format][0]) for call in calls]
    start = now()
    for call, output in zip(calls, outputs, strict=True):
        await transcode(call, output, audio_format)
    return now() - start, outputs


def raw_aes_gcm(files: list[Path]) -> tuple[Cost, int]:
    """Each file read and sealed in one AES-GCM call under a fresh key; (cost, bytes)."""
    start = now()
    total = 0
    for path in files:
        data = path.read_bytes()
        AESGCM(secrets.token_bytes(32)).encrypt(secrets.token_bytes(12), data, None)
        total += len(data)
    return now() - start, total


async def pipeline(calls: list[Path], work: Path, audio_format: str) -> Cost:
    settings = RecorderSettings(
        spool_dir=work / "spool", work_dir=work / "work", keys_dir=work / "keys",
        local_dir=work / "store", format=audio_format, workers=1, idle_seconds=0.001,
        spool_alarm_free_bytes=0, spool_alarm_free_percent=0,
    )  # fmt: skip
    MasterKeyStore(settings.keys_dir).generate(settings.master_key_id)
    ring = KeyRing(MasterKeyStore(settings.keys_dir), settings.master_key_id)
    url = f"sqlite+aiosqlite:///{work / 'bench.sqlite3'}"
    await upgrade(url)
    engine = create_engine(url)
    settings.spool_dir.mkdir(parents=True)
    for call in calls:
        shutil.copy(call, settings.spool_dir / call.name)
        os.utime(settings.spool_dir / call.name, (time.time() - 60, time.time() - 60))
    try:
        async with LocalStorage(settings.local_dir) as storage:
            store = RecordingStore(engine)
            recorder = Recorder(replace(settings), store, storage, ring)
            start = now()
            await recorder.run_until_idle()
            cost = now() - start
            done = await store.in_states([State.VERIFIED], limit=len(calls) + 1)
            if len(done) != len(calls):
                raise SystemExit(f"pipeline verified {len(done)} of {len(calls)} recordings")
            return cost
    finally:
        await engine.dispose()


def line(name: str, cost: Cost, calls: int, audio_seconds: float) -> str:
    per_core_hour = audio_seconds / cost.cpu if cost.cpu else float("inf")
    return (
        f"{name:<14} {calls / cost.wall:8.1f} rec/s  {cost.wall:7.2f} s wall  "
        f"{cost.cpu:7.2f} s CPU  {per_core_hour:8.0f} audio-h/core-h"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180.0, help="length of each call")
    parser.add_argument("--format", default="opus", choices=sorted(FORMATS))
    parser.add_argument("--concurrent", type=int, default=1000, help="calls to keep up with")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-recorder-") as tmp:
        work = Path(tmp)
        (work / "calls").mkdir()
        calls = make_calls(work / "calls", args.calls, args.seconds)
        audio_seconds = args.calls * args.seconds
        ffmpeg_cost, outputs = await raw_ffmpeg(calls, work / "raw", args.format)
        aes_cost, aes_bytes = raw_aes_gcm(outputs)
        pipe_cost = await pipeline(calls, work / "pipeline", args.format)

    print(f"{args.calls} calls x {args.seconds:.0f} s of 8 kHz audio -> {args.format}")
    print(line("raw ffmpeg", ffmpeg_cost, args.calls, audio_seconds))
    print(
        line("raw AES-GCM", aes_cost, args.calls, audio_seconds)
        + f"  ({aes_bytes / max(aes_cost.cpu, 1e-9) / 2**20:.0f} MiB/s)"
    )
    print(line("pipeline", pipe_cost, args.calls, audio_seconds))
    overhead = pipe_cost.cpu / ffmpeg_cost.cpu - 1
    print(
        f"pipeline CPU over raw ffmpeg: {overhead * 100:+.1f} % "
        f"(target < +15 %: {'met' if overhead < 0.15 else 'NOT met'})"
    )
    # 1,000 concurrent calls produce 1,000 audio-hours per hour
    per_core_hour = audio_seconds / pipe_cost.cpu
    cores_needed = args.concurrent / per_core_hour
    print(
        f"{args.concurrent} concurrent calls need {args.concurrent} audio-h/h: "
        f"{cores_needed:.2f} cores at {per_core_hour:.0f} audio-h/core-h "
        f"({'keeps up' if cores_needed <= args.cores else 'does NOT keep up'} on "
        f"{args.cores} cores, {100 * cores_needed / args.cores:.0f} % of them)"
    )


if __name__ == "__main__":
    asyncio.run(main())
