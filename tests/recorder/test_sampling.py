"""Quality sampling (reproducible, per operator, audited) and clip export for training."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stored_recordings import duration_of, make_tone, store_encrypted

from controller.settings import Settings
from hotline.audit import AuditLog
from hotline.auth import Actor
from hotline.settings import StoreSettings
from recorder import keys
from recorder.models import RecordingStore, State
from recorder.recordings_cli import cmd_clip, cmd_sample
from recorder.retention import Purger, RetentionPolicy
from recorder.sampling import (
    ClipError,
    choose_sample,
    draw_sample,
    export_clip,
    parse_period,
)
from recorder.storage import LocalStorage

AUDITOR = Actor("ivanova", "quality_auditor")


@pytest.fixture(scope="session")
def tone(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tone(tmp_path_factory.mktemp("audio") / "tone.ogg", 8)


async def store_recording(
    store: RecordingStore,
    storage: LocalStorage,
    key_ring: keys.KeyRing,
    call_id: str,
    *,
    operator: str | None,
    started_at: datetime,
    audio: bytes = b"audio",
    state: State = State.VERIFIED,
) -> None:
    """What the pipeline leaves behind: an encrypted object and a row in `state`."""
    await store.register(call_id, format="opus", started_at=started_at, operator=operator)
    await store_encrypted(
        store, storage, key_ring, call_id, audio, state=state.value, duration_seconds=8.0
    )


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    async with LocalStorage(tmp_path / "var" / "recorder" / "store") as store:
        yield store


# --- periods and the draw -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-11", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)),
    ],
)
def test_parse_period(text: str, start: datetime, end: datetime) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.name) == (start, end, text)


@pytest.mark.parametrize("text", ["2026-13", "2026-W54", "2026-02-30", "ноябрь", "", "2026"])
def test_bad_periods_are_explained(text: str) -> None:
    with pytest.raises(ValueError, match="must be a month"):
        parse_period(text)


def test_choose_sample_is_reproducible_and_per_operator() -> None:
    pool = {"op-1": [f"a{i}" for i in range(50)], "op-2": [f"b{i}" for i in range(3)]}

    first = choose_sample(pool, 5, "2026-11")

    assert first == choose_sample({k: list(reversed(v)) for k, v in pool.items()}, 5, "2026-11")
    assert len(first["op-1"]) == 5 and set(first["op-1"]) <= set(pool["op-1"])
    assert first["op-2"] == ["b0", "b1", "b2"]  # fewer than N: all of them
    assert choose_sample(pool, 5, "another seed")["op-1"] != first["op-1"]
    # adding an operator does not reshuffle the others' picks
    assert choose_sample({**pool, "op-3": ["c"]}, 5, "2026-11")["op-1"] == first["op-1"]
    with pytest.raises(ValueError):
        choose_sample(pool, 0, "s")


async def test_draw_sample_takes_playable_recordings_of_the_period_and_is_audited(
    recording_store: RecordingStore, key_ring: keys.KeyRing, storage: LocalStorage
) -> None:
    november = datetime(2026, 11, 10, tzinfo=UTC)
    for operator, count in (("op-1", 12), ("op-2", 2)):
        for index in range(count):
            await store_recording(
                recording_store, storage, key_ring, f"{operator}.{index}",
                operator=operator, started_at=november + timedelta(hours=index),
            )  # fmt: skip
    await store_recording(recording_store, storage, key_ring, "october", operator="op-1",
                          started_at=datetime(2026, 10, 31, 23, tzinfo=UTC))  # fmt: skip
    await store_recording(recording_store, storage, key_ring, "busy", operator="op-1",
                          started_at=november, state=State.STORED)  # fmt: skip
    await store_recording(recording_store, storage, key_ring, "menu-only", operator=None,
                          started_at=november)  # fmt: skip
    audit = AuditLog(recording_store.engine)

    sample = await draw_sample(
        recording_store.engine, audit, AUDITOR, period=parse_period("2026-11"), per_operator=4,
        source="10.0.0.5",
    )  # fmt: skip
    again = await draw_sample(
        recording_store.engine, audit, AUDITOR, period=parse_period("2026-11"), per_operator=4,
        source="10.0.0.5",
    )  # fmt: skip

    assert set(sample.picks) == {"op-1", "op-2"}
    assert len(sample.picks["op-1"]) == 4 and all(
        p.startswith("op-1.") for p in sample.picks["op-1"]
    )
    assert sample.picks["op-2"] == ["op-2.0", "op-2.1"]
    assert again.picks == sample.picks and sample.seed == "2026-11"
    entry = (await audit.entries())[-1]
    assert (entry.action, entry.user_id, entry.recording_id) == ("sample", "ivanova", None)
    assert entry.detail_data == {
        "period": "2026-11",
        "seed": "2026-11",
        "per_operator": 4,
        "picks": sample.picks,
    }


# --- clips --------------------------------------------------------------------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def test_export_clip_cuts_the_range(tone: bytes, tmp_path: Path) -> None:
    clip = await export_clip(_chunks(tone), "opus", 1.5, 3.5)
    (tmp_path / "clip.ogg").write_bytes(clip)
    assert duration_of(tmp_path / "clip.ogg") == pytest.approx(2.0, abs=0.1)


async def test_export_clip_of_garbage_is_a_clip_error() -> None:
    with pytest.raises(ClipError, match="ffmpeg"):
        await export_clip(_chunks(b"not audio at all" * 100), "opus", 0, 1)


async def test_export_clip_refuses_inverted_bounds(tone: bytes) -> None:
    with pytest.raises(ValueError):
        await export_clip(_chunks(tone), "opus", 3, 2)


# --- the commands ------------------------------------------------------------------------


def _settings(store: RecordingStore) -> Settings:
    url = store.engine.url.render_as_string(False)
    return dataclasses.replace(Settings(), store=StoreSettings(database_url=url))


async def test_clip_command_writes_the_clip_and_audits_it(
    recording_store: RecordingStore,
    storage: LocalStorage,
    tone: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # default [recorder] settings: keys in ./var/keys, storage in ./var/recorder/store
    monkeypatch.chdir(tmp_path)
    ring = keys.KeyRing(keys.MasterKeyStore(tmp_path / "var" / "keys"), "recorder")
    ring.store.generate("recorder")
    await store_recording(recording_store, storage, ring, "train.1", operator="op-1",
                          started_at=datetime(2026, 11, 3, tzinfo=UTC), audio=tone)  # fmt: skip
    output = tmp_path / "out" / "clip.ogg"
    output.parent.mkdir()

    args = argparse.Namespace(recording_id="train.1", start=2.0, end=5.0, output=output)
    assert await cmd_clip(args, _settings(recording_store)) == 0

    assert duration_of(output) == pytest.approx(3.0, abs=0.1)
    assert "train.1" in capsys.readouterr().out
    entry = (await AuditLog(recording_store.engine).entries())[-1]
    assert (entry.action, entry.recording_id, entry.outcome, entry.role) == (
        "clip",
        "train.1",
        "ok",
        "system",
    )
    assert entry.detail_data["from"] == 2.0 and entry.detail_data["to"] == 5.0

    # once purged, the clip is refused with the Russian reason, and that is audited too
    purger = Purger(recording_store.engine, storage, AuditLog(recording_store.engine),
                    RetentionPolicy(1))  # fmt: skip
    assert (await purger.run()).purged == ["train.1"]
    output.unlink()
    assert await cmd_clip(args, _settings(recording_store)) == 1
    assert "удалена" in capsys.readouterr().err and not output.exists()
    assert (await AuditLog(recording_store.engine).entries())[-1].outcome == "purged"


async def test_sample_command_prints_the_picks(
    recording_store: RecordingStore,
    storage: LocalStorage,
    key_ring: keys.KeyRing,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for index in range(3):
        await store_recording(recording_store, storage, key_ring, f"s.{index}", operator="op-9",
                              started_at=datetime(2026, 11, 27, 9 + index, tzinfo=UTC))  # fmt: skip
    args = argparse.Namespace(period="2026-11-27", per_operator=2, seed="fixed")

    assert await cmd_sample(args, _settings(recording_store)) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["seed"] == "fixed" and len(printed["picks"]["op-9"]) == 2
    bad = argparse.Namespace(period="last week", per_operator=2, seed=None)
    assert await cmd_sample(bad, _settings(recording_store)) == 2
