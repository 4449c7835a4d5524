"""Quality sampling: N random recordings per operator per period, and clips for training.

The sample is reproducible: the same period, seed and set of recordings always give the same
picks, so an auditor can show how a sample was drawn. Each operator's picks come from their
own generator seeded with (seed, operator), so adding an operator does not reshuffle the others.
Drawing a sample is audited (one entry naming the period, seed and every pick); each clip
export is audited by `RecordingAccess` like any other access.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hotline.audit import AuditLog
from hotline.auth import Actor
from recorder.models import RecordedCall, State
from recorder.settings import FORMATS

__all__ = [
    "ClipError",
    "Period",
    "Sample",
    "choose_sample",
    "draw_sample",
    "export_clip",
    "parse_period",
]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval [start, end) with the name it was given."""

    name: str
    start: datetime
    end: datetime


def parse_period(text: str) -> Period:
    """`2026-11` (a month), `2026-W48` (an ISO week) or `2026-11-27` (a day), in UTC."""
    value = text.strip()
    try:
        if match := _MONTH.match(value):
            year, month = int(match[1]), int(match[2])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        elif match := _WEEK.match(value):
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
            start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
            end = start + timedelta(days=7)
        elif match := _DAY.match(value):
            start = datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            raise ValueError("format")
    except ValueError:
        raise ValueError(
            f"period {text!r} must be a month (2026-11), an ISO week (2026-W48) or a day "
            "(2026-11-27)"
        ) from None
    return Period(value, start, end)


def choose_sample(
    candidates: Mapping[str, list[str]], per_operator: int, seed: str
) -> dict[str, list[str]]:
    """operator -> up to `per_operator` recording ids, chosen reproducibly from `candidates`."""
    if per_operator < 1:
        raise ValueError("per_operator must be at least 1")
    chosen = {}
    for operator in sorted(candidates):
        pool = sorted(set(candidates[operator]))
        picker = random.Random(f"{seed}|{operator}")
        chosen[operator] = sorted(picker.sample(pool, min(per_operator, len(pool))))
    return chosen


@dataclass(frozen=True)
class Sample:
    period: Period
    seed: str
    per_operator: int
    picks: dict[str, list[str]]


async def draw_sample(
    engine: AsyncEngine,
    audit: AuditLog,
    actor: Actor,
    *,
    period: Period,
    per_operator: int,
    seed: str | None = None,
    source: str,
) -> Sample:
    """Sample playable recordings (verified, not purged, with an operator) started in `period`.

    The seed defaults to the period's name, so "the sample for 2026-11" is one well-defined
    thing; pass another seed to draw a second, different sample for the same period.
    """
    seed = seed if seed is not None else period.name
    stmt = select(RecordedCall.operator, RecordedCall.call_id).where(
        RecordedCall.state == State.VERIFIED.value,
        RecordedCall.wrapped_key.is_not(None),
        RecordedCall.operator.is_not(None),
        RecordedCall.started_at >= period.start,
        RecordedCall.started_at < period.end,
    )
    candidates: dict[str, list[str]] = {}
    async with engine.connect() as connection:
        for operator, call_id in await connection.execute(stmt):
            candidates.setdefault(str(operator), []).append(call_id)
    picks = choose_sample(candidates, per_operator, seed)
    await audit.record(
        actor,
        "sample",
        recording_id=None,
        source=source,
        outcome="ok",
        detail={
            "period": period.name,
            "seed": seed,
            "per_operator": per_operator,
            "picks": picks,
        },
    )
    return Sample(period, seed, per_operator, picks)


# --- clips ------------------------------------------------------------------------------


class ClipError(Exception):
    """ffmpeg could not cut the clip (bad audio or a range outside it)."""


async def export_clip(
    audio: AsyncIterator[bytes], audio_format: str, start: float, end: float
) -> bytes:
    """Cut [start, end) seconds out of `audio` (decrypted, in `audio_format`) and re-encode it in
    the same format. ffmpeg reads the audio from a pipe and stops once it is past `end`."""
    if not 0 <= start < end:
        raise ValueError("clip needs 0 <= from < to")
    encoding = FORMATS.get(audio_format, FORMATS["opus"])
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", "pipe:0"]
    command += ["-ss", f"{start:.3f}", "-to", f"{end:.3f}", "-vn"]
    command += [*encoding.ffmpeg_args(), "-f", encoding.container, "pipe:1"]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    feeder = asyncio.create_task(_feed(process, audio))
    try:
        output, errors = await asyncio.gather(_read(process.stdout), _read(process.stderr))
        await process.wait()
        await feeder
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    if process.returncode != 0 or not output:
        detail = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ClipError(f"ffmpeg could not cut the clip: {detail[0]}")
    return output


async def _feed(process: asyncio.subprocess.Process, audio: AsyncIterator[bytes]) -> None:
    """Write the audio to ffmpeg; it may close its end early once past the clip: that is fine."""
    assert process.stdin is not None
    try:
        async for chunk in audio:
            process.stdin.write(chunk)
            await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        closer = getattr(audio, "aclose", None)
        if closer is not None:
            await closer()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.close()


async def _read(stream: asyncio.StreamReader | None) -> bytes:
    return b"" if stream is None else await stream.read()
