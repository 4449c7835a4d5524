"""The call facts' writer journals on local disk what it cannot keep in memory while the
database is away (`reporting.fact_journal`): a peak during an outage stays bounded in memory,
a stop during an outage loses nothing, and what comes back from disk is each write once, in
the order noted.

The writes are 40 calls: their facts, then each call's wrap-up (news of the fact: written
before its fact, it would be dropped), then an operator's minute per call. So the table says
at a glance whether every write arrived, in order, once: 40 facts, each with 10 s of wrap-up
(0 or 20 s: out of order or twice), and 2,400 s of the operator's busy time.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import shutil
import stat
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from databases import DATABASE_KINDS, empty_database, migrated_engine
from fact_kit import CuttableRelay, logged, scraped, until
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.fact_journal import FactJournal
from reporting.fact_marks import WriteMark
from reporting.fact_store import (
    Fact,
    FactStore,
    FactWrite,
    NewFact,
    OperatorStay,
    WrapUpAdded,
    call_facts,
    operator_time,
)
from reporting.fact_writer import FactWriter

DAY = date(2026, 12, 1)
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CALLS = 40
ALL_OF_THEM = (CALLS, {10.0: CALLS}, CALLS * 60.0)  # facts, wrap-ups by seconds, busy seconds
NOTHING = (0, {}, 0.0)
MEMORY = 10  # writes kept in memory while the database is away, besides the batch in hand


def calls(count: int = CALLS, prefix: str = "c") -> list[FactWrite]:
    facts: list[FactWrite] = [
        NewFact(Fact(f"{prefix}{i:02d}", "88001000001", START + timedelta(minutes=i), DAY, 12))
        for i in range(count)
    ]
    wrap_ups: list[FactWrite] = [WrapUpAdded(f"{prefix}{i:02d}", 10.0) for i in range(count)]
    stays: list[FactWrite] = [
        OperatorStay("op1", "talking", ((DAY, 12, 60.0),)) for _ in range(count)
    ]
    return facts + wrap_ups + stays


async def stored(engine: AsyncEngine) -> tuple[int, dict[float | None, int], float]:
    """How many facts, how many of them have each wrap-up, the operator's busy seconds."""
    async with engine.connect() as connection:
        wraps = (await connection.execute(select(call_facts.c.wrap_seconds))).scalars().all()
        busy = await connection.scalar(select(func.sum(operator_time.c.busy_seconds)))
    return len(wraps), dict(Counter(wraps)), float(busy or 0.0)


def writer_on(engine: AsyncEngine, directory: Path, **options: Any) -> FactWriter:
    """A writer journaling into `directory`, quick to retry and to give up at stop."""
    max_bytes = options.pop("max_bytes", 1 << 20)
    store = options.pop("store", None) or FactStore(engine)
    settings = {
        "batch_size": 20,
        "batch_seconds": 0.01,
        "retry_seconds": (0.05,),
        "stop_seconds": 0.3,
        "memory_writes": MEMORY,
    }
    return FactWriter(store, journal=FactJournal(directory, max_bytes), **settings | options)


async def replayed(engine: AsyncEngine, journal: Path) -> FactWriter:
    """A new writer on `journal` (a new start of the controller), once it has written what it
    found there."""
    writer = writer_on(engine, journal)
    writer.start()
    await asyncio.wait_for(writer.idle(), 20)
    return writer


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def gauge(name: str) -> float:
    gc.collect()  # the gauges sum the live writers: earlier tests' are gone
    return scraped(name)


@pytest.fixture(params=DATABASE_KINDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with (
        empty_database(request.param, tmp_path / "facts.sqlite3", "journal") as url,
        migrated_engine(url) as engine,
    ):
        yield engine


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, which would make new files 0644 and directories 0755."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


async def note_while_away(writer: FactWriter, writes: list[FactWrite]) -> None:
    """The first write fails (the database is away), then the rest are noted."""
    writer.note(writes[0])
    await until(lambda: writer.waiting_for_database)
    for write in writes[1:]:
        writer.note(write)


@pytest.mark.postgres
async def test_past_the_memory_bound_writes_go_to_the_journal_and_arrive_once_in_order(
    relayed: tuple[CuttableRelay, AsyncEngine], tmp_path: Path
) -> None:
    relay, engine = relayed
    journal = tmp_path / "journal"
    writer = writer_on(engine, journal)
    relay.cut()
    await note_while_away(writer, calls())
    assert writer.waiting == 3 * CALLS
    # in memory: the batch in hand (the first write) and MEMORY more; the rest on disk
    assert writer.journaled == 3 * CALLS - 1 - MEMORY
    assert gauge("hotline_call_facts_journaled") == 3 * CALLS - 1 - MEMORY
    assert gauge("hotline_call_facts_waiting") == 3 * CALLS
    assert len(segments(journal)) == 1
    await relay.open()
    await asyncio.wait_for(writer.idle(), 20)
    assert await stored(engine) == ALL_OF_THEM
    assert (writer.lost, writer.journaled, segments(journal)) == (0, 0, [])
    assert gauge("hotline_call_facts_journaled") == 0
    await writer.stop()


class SlowStore(FactStore):
    """A database that is there but slower than the calls: each batch waits for `gate`."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()  # a batch is in hand

    async def write(
        self, writes: Sequence[FactWrite], marks: Sequence[WriteMark | None] | None = None
    ) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().write(writes, marks)


async def test_a_database_slower_than_the_calls_keeps_memory_bounded_too(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    store = SlowStore(engine)
    writer = writer_on(engine, journal, store=store)
    writes = calls()
    writer.note(writes[0])
    await asyncio.wait_for(store.entered.wait(), 5)  # the first write is the batch in hand
    for write in writes[1:]:
        writer.note(write)

    assert not writer.waiting_for_database  # nothing failed: the database is only slow
    assert writer.waiting == 3 * CALLS
    assert writer.journaled == 3 * CALLS - 1 - MEMORY
    store.gate.set()
    await asyncio.wait_for(writer.idle(), 20)
    assert await stored(engine) == ALL_OF_THEM
    assert (writer.lost, writer.journaled, segments(journal)) == (0, 0, [])
    await writer.stop()


class SlowAnswers(FactStore):
    """A database whose answer to a COMMIT comes late: each batch is committed, then
    `answered` is waited for."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.answered = asyncio.Event()
        self.committed = asyncio.Event()

    async def write(
        self, writes: Sequence[FactWrite], marks: Sequence[WriteMark | None] | None = None
    ) -> None:
        await super().write(writes, marks)
        self.committed.set()
        await self.answered.wait()


async def test_a_stop_lets_a_commit_on_the_wire_end_and_nothing_is_written_twice(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled while its commit's answer was on the way, a batch would be kept in the
    journal as not written, and written again at the next start."""
    journal = tmp_path / "journal"
    store = SlowAnswers(engine)
    first = writer_on(engine, journal, store=store)
    facts_and_wrap_ups, stays = calls()[: 2 * CALLS], calls()[2 * CALLS :]
    for write in stays + facts_and_wrap_ups:  # the first batch adds up: twice, it shows
        first.note(write)
    await asyncio.wait_for(store.committed.wait(), 5)  # the first batch is in, unanswered

    stopping = asyncio.create_task(first.stop())
    await until(lambda: logged(caplog, "stopping once the transaction running now ends"))
    store.answered.set()
    await stopping

    second = await replayed(engine, journal)
    assert await stored(engine) == ALL_OF_THEM
    assert (first.lost, second.lost, segments(journal)) == (0, 0, [])
    await second.stop()


async def test_a_commit_a_stop_gave_up_on_is_not_written_again_from_the_journal(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction still unanswered `stop_seconds` into the stop is cancelled and its writes
    journaled; it had committed after all, and its writes' marks keep them from being written
    again at the next start."""
    journal = tmp_path / "journal"
    store = SlowAnswers(engine)  # its answer never comes
    first = writer_on(engine, journal, store=store)
    facts_and_wrap_ups, stays = calls()[: 2 * CALLS], calls()[2 * CALLS :]
    for write in stays + facts_and_wrap_ups:  # the first batch adds up: twice, it shows
        first.note(write)
    await asyncio.wait_for(store.committed.wait(), 5)
    await first.stop()
    assert logged(caplog, "a transaction still runs at stop and is cancelled")
    assert logged(caplog, f"{3 * CALLS} writes (")  # journaled, the committed batch among them

    second = await replayed(engine, journal)
    assert await stored(engine) == ALL_OF_THEM
    assert (first.lost, second.lost, segments(journal)) == (0, 0, [])
    await second.stop()


async def test_a_replayed_batch_whose_commit_the_journal_did_not_note_is_not_written_again(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """A crash between a replayed batch's commit and the journal's note of it leaves the
    batch in the journal, to be read again at the next start."""
    journal = tmp_path / "journal"
    journal_of(journal, calls(), marked_by="a-stopped-writer")
    as_the_crash_left_it = tmp_path / "as-the-crash-left-it"
    shutil.copytree(journal, as_the_crash_left_it)
    first = await replayed(engine, journal)
    await first.stop()
    assert await stored(engine) == ALL_OF_THEM
    shutil.rmtree(journal)  # every commit went through, and none of the journal's notes
    shutil.copytree(as_the_crash_left_it, journal)

    second = await replayed(engine, journal)
    assert await stored(engine) == ALL_OF_THEM
    assert (first.lost, second.lost, segments(journal)) == (0, 0, [])
    await second.stop()


@pytest.mark.postgres
async def test_a_stop_while_the_database_is_away_keeps_everything_for_the_next_start(
    relayed: tuple[CuttableRelay, AsyncEngine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What waited in memory (the first facts) goes before what was journaled (their
    wrap-ups): written after them, the wrap-ups would find no fact."""
    relay, engine = relayed
    journal = tmp_path / "journal"
    first = writer_on(engine, journal)
    relay.cut()
    await note_while_away(first, calls())
    lost_before = scraped("hotline_call_facts_lost_total", reason="away_at_stop")
    with caplog.at_level(logging.WARNING, logger="reporting.fact_writer"):
        await first.stop()
    assert first.lost == 0
    assert scraped("hotline_call_facts_lost_total", reason="away_at_stop") == lost_before
    assert logged(caplog, f"{3 * CALLS} writes (") == 1  # "... wait in the journal"
    await relay.open()
    assert await stored(engine) == NOTHING
    second = await replayed(engine, journal)
    assert await stored(engine) == ALL_OF_THEM
    assert (second.lost, segments(journal)) == (0, [])
    await second.stop()


@pytest.mark.postgres
async def test_a_replay_cut_short_and_begun_again_writes_nothing_twice(
    relayed: tuple[CuttableRelay, AsyncEngine], tmp_path: Path
) -> None:
    relay, engine = relayed
    journal = tmp_path / "journal"
    first = writer_on(engine, journal)
    relay.cut()
    await note_while_away(first, calls())
    await first.stop()  # all of it journaled
    await relay.open()
    commits = 0

    def counted(*args: Any) -> None:
        nonlocal commits
        commits += 1

    def cut_in_the_fifth_batch(*args: Any) -> None:
        if commits == 4:
            relay.cut()  # four batches committed, the fifth's transaction under way

    event.listen(engine.sync_engine, "commit", counted)
    event.listen(engine.sync_engine, "before_cursor_execute", cut_in_the_fifth_batch)
    second = writer_on(engine, journal)
    second.start()
    await until(lambda: commits == 4 and second.waiting_for_database)
    await second.stop()  # away again: what is not committed stays journaled
    event.remove(engine.sync_engine, "before_cursor_execute", cut_in_the_fifth_batch)
    await relay.open()
    # four batches: the 11 facts that waited in memory at stop, then from the journal in
    # batches of 20 the other 29 facts and the first 31 wrap-ups (c00-c30)
    assert await stored(engine) == (CALLS, {10.0: 31, None: 9}, 0.0)
    third = await replayed(engine, journal)
    assert await stored(engine) == ALL_OF_THEM
    assert (second.lost, third.lost, segments(journal)) == (0, 0, [])
    await third.stop()


def journal_of(directory: Path, writes: list[FactWrite], marked_by: str = "") -> Path:
    """A journal left by a writer that stopped with `writes` in it (numbered in order when
    `marked_by` names the writer); its one segment."""
    journal = FactJournal(directory, 1 << 20)
    journal.open()
    for seq, write in enumerate(writes, 1):
        assert journal.append(write, WriteMark(marked_by, seq) if marked_by else None)
    journal.close()
    [segment] = segments(directory)
    return segment


async def test_a_bad_record_and_a_torn_last_one_are_skipped_and_the_rest_written(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "journal"
    torn = OperatorStay("op1", "talking", ((DAY, 12, 3600.0),))  # the crash cut it in two
    segment = journal_of(directory, [*calls(), torn])
    data = segment.read_bytes()
    wrap_up = b'"kind":"wrap_up","call_id":"c03","seconds":10.0'
    assert data.count(wrap_up) == 1
    data = data.replace(wrap_up, wrap_up.replace(b"10.0", b"99.0"))  # the checksum stays
    segment.write_bytes(data[:-30])
    corrupt_before = scraped("hotline_call_facts_lost_total", reason="journal_corrupt")
    writer = writer_on(engine, directory)
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        writer.start()
        await asyncio.wait_for(writer.idle(), 20)
    assert await stored(engine) == (CALLS, {10.0: CALLS - 1, None: 1}, CALLS * 60.0)
    assert logged(caplog, "a bad record in the journal") == 1
    assert logged(caplog, "a torn last record in the journal") == 1
    assert writer.lost == 2
    assert scraped("hotline_call_facts_lost_total", reason="journal_corrupt") == corrupt_before + 2
    assert segments(directory) == []
    await writer.stop()


async def test_a_file_that_is_no_journal_is_set_aside_once_and_the_writer_goes_on(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    garbage = directory / "facts-0000000007.journal"
    garbage.write_bytes(b"\x00\x17PK garbage\n" + os.urandom(2000))
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        writer = writer_on(engine, directory)
        writer.start()
        for write in calls(3):
            writer.note(write)
        await asyncio.wait_for(writer.idle(), 20)
        await writer.stop()
        again = writer_on(engine, directory)
        again.start()
        await again.stop()
    assert await stored(engine) == (3, {10.0: 3}, 180.0)
    assert logged(caplog, "is not a call-facts journal") == 1  # not at each start
    assert not garbage.exists()
    assert (directory / "facts-0000000007.journal.unreadable").exists()
    assert writer.lost >= 1  # counted (journal_corrupt): the alert fires


@pytest.mark.postgres
async def test_a_full_journal_loses_writes_counted_and_logged_once(
    relayed: tuple[CuttableRelay, AsyncEngine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    relay, engine = relayed
    writer = writer_on(engine, tmp_path / "journal", max_bytes=4000)
    full_before = scraped("hotline_call_facts_lost_total", reason="journal_full")
    relay.cut()
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        await note_while_away(writer, calls())
    kept = writer.journaled
    assert 0 < kept < 3 * CALLS - 1 - MEMORY
    assert writer.lost == 3 * CALLS - 1 - MEMORY - kept
    assert writer.waiting == 1 + MEMORY + kept
    full = scraped("hotline_call_facts_lost_total", reason="journal_full")
    assert full == full_before + writer.lost
    assert logged(caplog, "is full") == 1  # once; the count once it has room again
    assert gauge("hotline_call_facts_journal_bytes") <= 4000
    assert gauge("hotline_call_facts_journal_limit_bytes") == 4000
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        await relay.open()
        await asyncio.wait_for(writer.idle(), 20)
    # the journal holds the writes up to the first lost, none after: all of them facts here
    assert await stored(engine) == (1 + MEMORY + kept, {None: 1 + MEMORY + kept}, 0.0)
    assert logged(caplog, f"room again; {writer.lost} writes were lost") == 1
    await writer.stop()


class FlushedFiles:
    """Every fsync the process makes, by inode, with the file's size at the time (directories:
    -1), then the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, refuse: bool = False) -> None:
        self.flushes: list[tuple[int, int]] = []
        self.refuse = refuse
        self._fsync = os.fsync
        monkeypatch.setattr(os, "fsync", self.fsync)

    def fsync(self, handle: int) -> None:
        info = os.fstat(handle)
        size = info.st_size if stat.S_ISREG(info.st_mode) else -1
        self.flushes.append((info.st_ino, size))
        if self.refuse:
            raise OSError(errno.EIO, "Input/output error")
        self._fsync(handle)

    def of(self, path: Path) -> list[int]:
        """The sizes `path` had at each of its flushes."""
        inode = path.stat().st_ino
        return [size for flushed, size in self.flushes if flushed == inode]


@pytest.mark.postgres
async def test_journaled_writes_reach_the_disk_in_one_flush_soon_after_they_are_noted(
    relayed: tuple[CuttableRelay, AsyncEngine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash of the machine, not only of the controller, loses at most the last interval of
    the journal: its appends are flushed to disk together (one fsync, not one a call), and the
    new segment's name with them."""
    relay, engine = relayed
    directory = tmp_path / "journal"
    flushed = FlushedFiles(monkeypatch)
    writer = writer_on(engine, directory, journal_sync_seconds=0.2)
    relay.cut()
    await note_while_away(writer, calls())
    (segment,) = segments(directory)
    assert writer.journaled == 3 * CALLS - 1 - MEMORY
    assert flushed.of(segment) == []  # the calls noting them did not wait on the disk
    await until(lambda: flushed.of(segment) and flushed.of(directory))  # one flush, in turn
    assert flushed.of(segment) == [segment.stat().st_size]  # every record, in one flush
    assert flushed.of(directory) == [-1]
    more = calls(5, "m")
    for write in more:
        writer.note(write)
    await until(lambda: len(flushed.of(segment)) == 2)
    assert flushed.of(segment)[-1] == segment.stat().st_size
    assert flushed.of(directory) == [-1]  # no new segment: its name was on disk already
    await relay.open()
    await asyncio.wait_for(writer.idle(), 20)
    facts, wraps, busy = await stored(engine)
    assert (facts, wraps, busy) == (CALLS + 5, {10.0: CALLS + 5}, (CALLS + 5) * 60.0)
    await writer.stop()


@pytest.mark.postgres
async def test_a_disk_that_refuses_to_flush_the_journal_is_logged_counted_and_loses_nothing(
    relayed: tuple[CuttableRelay, AsyncEngine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay, engine = relayed
    failures_before = scraped("hotline_call_facts_journal_sync_failures_total")
    flushed = FlushedFiles(monkeypatch, refuse=True)
    writer = writer_on(engine, tmp_path / "journal", journal_sync_seconds=0.1)
    relay.cut()
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        await note_while_away(writer, calls())
        await until(lambda: logged(caplog, "cannot flush the journal to disk") == 2)
    assert len(flushed.flushes) == 2  # the segment and the directory, tried once each
    failures = scraped("hotline_call_facts_journal_sync_failures_total")
    assert failures == failures_before + 2
    assert writer.lost == 0 and writer.journaled == 3 * CALLS - 1 - MEMORY
    flushed.refuse = False
    await relay.open()
    await asyncio.wait_for(writer.idle(), 20)
    assert await stored(engine) == ALL_OF_THEM
    await writer.stop()


@pytest.mark.postgres
async def test_a_flush_with_no_descriptor_left_is_counted_and_the_next_one_flushes_it_all(
    relayed: tuple[CuttableRelay, AsyncEngine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay, engine = relayed
    directory = tmp_path / "journal"
    failures_before = scraped("hotline_call_facts_journal_sync_failures_total")
    flushed = FlushedFiles(monkeypatch)
    real_dup = os.dup

    def no_descriptor_left(handle: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "dup", no_descriptor_left)
    writer = writer_on(engine, directory, journal_sync_seconds=0.1)
    relay.cut()
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        await note_while_away(writer, calls())
        await until(lambda: logged(caplog, "cannot flush the journal to disk") == 1)
    (segment,) = segments(directory)
    assert flushed.of(segment) == [] and flushed.of(directory) == []
    assert scraped("hotline_call_facts_journal_sync_failures_total") == failures_before + 1
    monkeypatch.setattr(os, "dup", real_dup)
    writer.note(calls(1, "m")[0])  # the next append asks again, for all of them
    await until(lambda: flushed.of(segment) and flushed.of(directory))
    assert flushed.of(segment) == [segment.stat().st_size]
    await relay.open()
    await asyncio.wait_for(writer.idle(), 20)
    facts, wraps, busy = await stored(engine)
    assert (facts, wraps, busy) == (CALLS + 1, {10.0: CALLS, None: 1}, CALLS * 60.0)
    await writer.stop()


def test_a_full_journal_has_room_again_once_its_first_part_is_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Room is freed a part at a time, not once the whole journal is replayed: new writes are
    kept again soon after the database is back."""
    journal = FactJournal(tmp_path / "journal", max_bytes=20_000, segment_bytes=4000)
    journal.open()
    writes = calls()
    kept = 0
    with caplog.at_level(logging.ERROR, logger="reporting.fact_journal"):
        while journal.append(writes[kept]):
            kept += 1
        assert 0 < kept < len(writes) and len(segments(tmp_path / "journal")) > 2
        assert not journal.append(writes[-1])  # still full: no hole after the first lost
        batch = journal.read(100)  # the first part
        assert batch is not None and batch.exhausted and len(batch.writes) < kept
        journal.committed(batch, len(batch.writes))
        assert journal.append(writes[-1])
    assert logged(caplog, "room again; 2 writes were lost") == 1
    journal.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_the_journal_is_readable_by_the_service_only(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "journal"
    journal = FactJournal(directory, 1 << 20)
    journal.open()
    for write in calls(3):
        journal.append(write)
    batch = journal.read(2)
    assert batch is not None
    journal.committed(batch, 1)  # a progress note beside the segment
    journal.prepend(calls(1, "p"), [None])  # what waited in memory at stop
    journal.close()
    files = sorted(path.name for path in directory.iterdir())
    assert files == [
        "facts-0999999999.journal",
        "facts-1000000000.done",
        "facts-1000000000.journal",
        "journal.lock",
    ]
    assert {name: mode(directory / name) for name in files} == dict.fromkeys(files, 0o600)
    assert (mode(directory), mode(directory.parent)) == (0o700, 0o700)


async def test_a_second_writer_on_a_journal_in_use_says_so_and_writes_without_it(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = writer_on(engine, tmp_path / "journal")
    first.start()
    second = writer_on(engine, tmp_path / "journal")
    with caplog.at_level(logging.ERROR, logger="reporting.fact_writer"):
        second.start()
    assert logged(caplog, "another process uses the journal") == 1
    assert second.journal is None
    for write in calls(2):
        second.note(write)
    await asyncio.wait_for(second.idle(), 20)
    assert await stored(engine) == (2, {10.0: 2}, 120.0)
    await second.stop()
    await first.stop()
