"""Prompt build benchmark: `build_prompts` beside the raw tools it drives, in the same run.

1. full build, one job: ms per prompt through build_prompts (espeak-ng + pydub/ffmpeg, atomic
   writes, manifest) vs the raw floor: `espeak-ng -w` then `ffmpeg -ar 8000 -ac 1` per prompt,
   run sequentially from a shell loop's equivalent (subprocess, nothing else);
2. full build with one job per core: wall time and the speed-up over one job;
3. a rebuild with nothing changed: ms for the whole prompt set (hashing and the manifest only).

Usage: .venv/bin/python bench/prompts.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.prompts import build_prompts, load_prompt_texts  # noqa: E402


def raw_build(texts: dict[str, str], out: Path) -> None:
    for prompt_id, text in texts.items():
        raw = out / f"{prompt_id}.raw.wav"
        subprocess.run(["espeak-ng", "-v", "ru", "-w", str(raw), text], check=True)
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(raw),
                "-ar",
                "8000",
                "-ac",
                "1",
                "-acodec",
                "pcm_s16le",
                str(out / f"{prompt_id}.wav"),
            ],
            check=True,
        )
        raw.unlink()


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 prompts instead of all")
    args = parser.parse_args()
    texts = load_prompt_texts(ROOT / "prompts")
    if args.quick:
        texts = dict(list(texts.items())[:12])
    count = len(texts)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        for name in ("raw", "one", "all"):
            (base / name).mkdir()
        raw = timed(lambda: raw_build(texts, base / "raw"))
        one = timed(lambda: asyncio.run(build_prompts(texts, base / "one", jobs=1)))
        every = timed(lambda: asyncio.run(build_prompts(texts, base / "all", jobs=cores)))
        again = timed(lambda: asyncio.run(build_prompts(texts, base / "all", jobs=cores)))
    print(f"prompts: {count}, cores: {cores}")
    print(f"raw espeak-ng + ffmpeg, sequential: {raw / count * 1000:7.1f} ms/prompt")
    print(
        f"build_prompts, 1 job:               {one / count * 1000:7.1f} ms/prompt"
        f"  (x{one / raw:.2f} of raw)"
    )
    print(
        f"build_prompts, {cores} jobs:              {every / count * 1000:7.1f} ms/prompt"
        f"  (speed-up over 1 job: x{one / every:.2f})"
    )
    print(
        f"rebuild, nothing changed:           {again * 1000:7.1f} ms for all {count}"
        f"  ({again / every * 100:.1f} % of a full build)"
    )


if __name__ == "__main__":
    main()
