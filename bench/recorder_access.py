"""Recordings access and audit benchmark: what the audit chain and streaming playback cost.

Measured in one run, each beside a peer doing the same work without our layer:

1. audit appends/s (hash chain + chain lock + INSERT, one transaction each) beside plain
   INSERTs of the same rows into a table with no chain, one transaction each: SQLite file and
   the real PostgreSQL, 4 concurrent writers;
2. `audit verify` entries/s beside a bare SELECT of the same rows, and beside hashing them
   (sha256 of canonical JSON) with no database at all;
3. streaming decrypted playback (`decrypt_chunks`, async, fed 256 KiB storage reads) in MiB/s
   beside `keys.iter_decrypt` over an in-memory file (the raw AES-GCM limit of the format).

Usage: .venv/bin/python bench/recorder_access.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.throwaway_postgres import throwaway_schema  # noqa: E402
from hotline.audit import AuditLog, entry_hash  # noqa: E402
from hotline.auth import Actor  # noqa: E402
from hotline.store.db import create_engine  # noqa: E402
from hotline.store.migrate import upgrade  # noqa: E402
from recorder import keys  # noqa: E402
from recorder.playback import decrypt_chunks  # noqa: E402

ACTOR = Actor("ivanova", "quality_auditor")


async def _appends(url: str, count: int, writers: int) -> tuple[float, float]:
    """(chained appends/s, plain inserts/s) on the database at `url`."""
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE TABLE plain_log (id INTEGER PRIMARY KEY, at TEXT, user_id TEXT, "
                    "action TEXT, recording_id TEXT, detail TEXT)"
                )
            )
        log = AuditLog(engine)

        async def chained(worker: int) -> None:
            for index in range(count // writers):
                await log.record(
                    ACTOR, "play", recording_id=f"{worker}.{index}", source="10.0.0.1",
                    outcome="ok", detail={"range": "bytes=0-"},
                )  # fmt: skip

        async def plain(worker: int) -> None:
            for index in range(count // writers):
                async with engine.begin() as connection:
                    await connection.execute(
                        text(
                            "INSERT INTO plain_log (id, at, user_id, action, recording_id, "
                            "detail) VALUES (:id, :at, 'ivanova', 'play', :rec, '{}')"
                        ),
                        {"id": worker * count + index, "at": "2026", "rec": f"{worker}.{index}"},
                    )

        results = []
        for job in (chained, plain):
            started = time.perf_counter()
            await asyncio.gather(*(job(worker) for worker in range(writers)))
            results.append(count / (time.perf_counter() - started))
        return results[0], results[1]
    finally:
        await engine.dispose()


async def _verify(url: str) -> tuple[float, float, float, int]:
    """(verify entries/s, bare SELECT rows/s, in-memory hashing entries/s, entries)."""
    engine = create_engine(url)
    try:
        log = AuditLog(engine)
        started = time.perf_counter()
        report = await log.verify()
        verify_rate = report.entries / (time.perf_counter() - started)
        assert report.ok, report.describe()
        started = time.perf_counter()
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM recording_audit"))).all()
        select_rate = len(rows) / (time.perf_counter() - started)
        entries = await log.entries(limit=10**9)
        started = time.perf_counter()
        for entry in entries:
            entry_hash(entry.prev_hash, entry.hashed_fields())
        hash_rate = len(entries) / (time.perf_counter() - started)
        return verify_rate, select_rate, hash_rate, report.entries
    finally:
        await engine.dispose()


async def _playback(megabytes: int) -> tuple[float, float]:
    """(decrypt_chunks MiB/s, iter_decrypt MiB/s) over the same object."""
    data_key = os.urandom(32)
    sink = io.BytesIO()
    keys.encrypt_stream(data_key, io.BytesIO(os.urandom(megabytes << 20)), sink)
    cipher = sink.getvalue()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(cipher), 256 * 1024):  # storage's read size
            yield cipher[start : start + 256 * 1024]

    started = time.perf_counter()
    total = 0
    async for chunk in decrypt_chunks(data_key, pieces()):
        total += len(chunk)
    ours = total / (time.perf_counter() - started) / 2**20
    started = time.perf_counter()
    total = 0
    for chunk in keys.iter_decrypt(data_key, io.BytesIO(cipher)):
        total += len(chunk)
    raw = total / (time.perf_counter() - started) / 2**20
    return ours, raw


async def _audit_report(label: str, url: str, count: int, writers: int) -> None:
    """Print the appends and verify rates on the database at `url`."""
    chained, plain = await _appends(url, count, writers)
    print(f"  {label:<10}: chained {chained:8.0f}/s   plain insert {plain:8.0f}/s   "
          f"ratio {chained / plain:.2f}")  # fmt: skip
    verify, select, hashing, entries = await _verify(url)
    print(f"  {label:<10}: verify {verify:9.0f} entries/s ({entries}); bare SELECT "
          f"{select:9.0f} rows/s (ratio {verify / select:.2f}); hashing alone "
          f"{hashing:9.0f}/s")  # fmt: skip


async def main(quick: bool) -> None:
    count, writers, megabytes = (400, 4, 32) if quick else (2000, 4, 256)
    print(f"audit appends: {count} entries, {writers} concurrent writers, one transaction each")
    with tempfile.TemporaryDirectory() as directory:
        await _audit_report(
            "sqlite", f"sqlite+aiosqlite:///{directory}/bench.sqlite3", count, writers
        )
    async with throwaway_schema() as url:
        await _audit_report("postgresql", url, count, writers)
    ours, raw = await _playback(megabytes)
    print(f"playback decrypt, {megabytes} MiB: streaming {ours:7.0f} MiB/s   raw iter_decrypt "
          f"{raw:7.0f} MiB/s   ratio {ours / raw:.2f}")  # fmt: skip
    # 16 kbit/s Opus is 2 kB/s of audio: how many calls' worth one core streams in real time
    print(f"  = {ours * 2**20 / 2000:,.0f} simultaneous real-time listeners per core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (about 10 s)")
    asyncio.run(main(parser.parse_args().quick))
