"""`FactWriter`: the call facts' writes gathered into batches, one transaction a batch.

A hotline peak ends hundreds of calls at once; one transaction per fact (and two rollup
upserts each) let the writer fall behind the calls. Writes are kept in the order noted and
written when `BATCH_SIZE` are waiting or the oldest has waited `BATCH_SECONDS`, on
`idle` and on `stop` (`reporting.fact_store.FactStore.write`: one transaction, each write
seeing the ones before it, the rollups' differences summed per slice).

Nothing is lost to a database that goes away: a batch that fails for that (connection
refused or dropped, a locked or unreadable SQLite file, a transaction PostgreSQL rolled back
for another node's: the rows each batch upserts are taken in key order, so two nodes'
batches should not deadlock, but a serialization failure may) is kept, in order, and tried again
with growing pauses, each failure logged with how many writes wait. A batch the database
refuses for what it holds (a bug, a constraint) is written one write at a time, so only the
write it refuses is lost (logged, counted in `lost`). Memory holds at most `memory_writes`
besides the batch in hand: past that (the database away, or slower than the calls) writes go
to the journal on local disk (`reporting.fact_journal`) and come back from it in order. `stop`
writes everything still waiting; what a database still away after `stop_seconds` keeps out
goes to the journal too, once the transaction running then has ended (cancelled with its
COMMIT on the wire, it could be committed and yet journaled). Each write is numbered as it is
noted, and the number goes with it to the database (`reporting.fact_marks`): a batch committed
twice (that one, or a replayed one whose commit a crash kept the journal from noting) is
written once. Without a journal, what waits is lost, logged with the count.
Logs name no call's data (the formatter masks what an exception's text holds).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from reporting.fact_journal import FactJournal, JournalBatch, JournalBusyError
from reporting.fact_marks import WriteMark
from reporting.fact_store import FactStore, FactWrite
from reporting.metrics import CALL_FACTS_LOST, watch_fact_writer

__all__ = ["BATCH_SECONDS", "BATCH_SIZE", "JOURNAL_SYNC_SECONDS", "MEMORY_WRITES", "FactWriter"]

log = logging.getLogger(__name__)

# A burst's writes are mostly operators' stays and facts of the same hours and groups: the
# bigger the batch, the more of them sum into one row (bench/fact_writer.py here: batches of
# 500 wrote 5-6,000 facts/s, of 5000 about 10,000); 5000 writes commit in under a second.
BATCH_SIZE: Final = 5000
BATCH_SECONDS: Final = 0.2  # reports read facts at most this late; calls never wait on it
RETRY_SECONDS: Final = (0.2, 0.5, 1.0, 2.0, 5.0)  # then every 5 s while the database is away
STOP_SECONDS: Final = 15.0
# Writes kept in memory besides the batch in hand (a write is about 1-2 KB in memory: some
# 20 MB), before the journal takes them: the database away, or slower than the calls.
MEMORY_WRITES: Final = 10_000
# The journal's appends reach the disk in one flush at most this long after the first of them:
# what a crash of the machine (not only of the controller) may lose.
JOURNAL_SYNC_SECONDS: Final = 1.0

Progress = Callable[[int], None]  # how many leading writes of a batch are done


class NotedWrites:
    """Writes in the order noted, each with its mark (`reporting.fact_marks`; None for a
    journal's record from before marks)."""

    __slots__ = ("marks", "writes")

    def __init__(
        self, writes: list[FactWrite] | None = None, marks: list[WriteMark | None] | None = None
    ) -> None:
        self.writes = [] if writes is None else writes
        self.marks: list[WriteMark | None] = [] if marks is None else marks

    def __len__(self) -> int:
        return len(self.writes)

    def add(self, write: FactWrite, mark: WriteMark) -> None:
        self.writes.append(write)
        self.marks.append(mark)

    def take(self, count: int) -> NotedWrites:
        """The first `count`, taken out."""
        head = NotedWrites(self.writes[:count], self.marks[:count])
        del self.writes[:count], self.marks[:count]
        return head

    def tail(self, start: int) -> NotedWrites:
        """A copy of those from `start` on."""
        return NotedWrites(self.writes[start:], self.marks[start:])


def database_away(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or rolled the transaction back
    for another's (a deadlock between nodes, a serialization failure: SQLSTATE class 40):
    worth trying again later, not a refusal of what was written."""
    if isinstance(error, (OSError, TimeoutError, OperationalError, InterfaceError)):
        return True
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return error.connection_invalidated or sqlstate.startswith("40")


class FactWriter:
    """One worker task writing the noted writes in batches, in order."""

    def __init__(
        self,
        store: FactStore,
        batch_size: int = BATCH_SIZE,
        batch_seconds: float = BATCH_SECONDS,
        retry_seconds: Sequence[float] = RETRY_SECONDS,
        stop_seconds: float = STOP_SECONDS,
        journal: FactJournal | None = None,
        memory_writes: int = MEMORY_WRITES,
        journal_sync_seconds: float = JOURNAL_SYNC_SECONDS,
    ) -> None:
        self.store = store
        self.journal = journal
        self._memory = memory_writes
        self._sync_seconds = journal_sync_seconds
        self._sync_timer: asyncio.TimerHandle | None = None  # armed by the first append
        self._sync: asyncio.Task[bool] | None = None  # the flush running in a thread
        self._size = batch_size
        self._seconds = batch_seconds
        self._retry = tuple(retry_seconds)
        self._stop_seconds = stop_seconds
        # Names this writer's writes in the database's marks: a new one each time a process
        # builds one, numbered from 1 in the order noted.
        self.name = uuid.uuid4().hex
        self._last_seq = 0
        self._waiting = NotedWrites()
        self._writing = NotedWrites()  # the batch in hand
        self._written = 0  # of it, written or refused already (written one by one)
        self._replaying: JournalBatch | None = None  # the batch in hand is the journal's
        self._noted = asyncio.Event()  # something waits
        self._hurry = asyncio.Event()  # write now: a full batch, `idle` or `stop`
        self._done = asyncio.Event()  # nothing waits, nothing is being written
        self._done.set()
        self._flushes = 0
        self._first_at = 0.0  # when the oldest waiting write was noted (the loop's clock)
        self._worker: asyncio.Task[None] | None = None
        # Set while no transaction runs; `stop` lets a running one end (`_commit`).
        self._between_transactions = asyncio.Event()
        self._between_transactions.set()
        self._stopping = False  # no transaction begins any more
        self.lost = 0  # writes the database refused, or the journal could not keep
        # True while the batch in hand is kept until the database is back (`/metrics`)
        self.waiting_for_database = False
        watch_fact_writer(self)
        self.batches = 0  # transactions committed

    @property
    def waiting(self) -> int:
        """Writes noted and not yet committed (journaled ones included)."""
        return len(self._waiting) + len(self._writing) - self._written + self.journaled

    @property
    def journaled(self) -> int:
        """Writes in the journal on disk, not yet committed."""
        return 0 if self.journal is None else self.journal.records

    @property
    def journal_bytes(self) -> int:
        return 0 if self.journal is None else self.journal.size

    @property
    def journal_limit_bytes(self) -> int:
        """The journal's bound while it is in use (a stopped writer's counts for nothing)."""
        return self.journal.max_bytes if self.journal is not None and self.journal.opened else 0

    def start(self) -> None:
        """Start the worker; with a journal, open it and write what it holds."""
        if self._worker is not None:
            return
        if self.journal is not None:
            self._open_journal(self.journal)
        self._stopping = False
        self._worker = asyncio.create_task(self._run(), name="call-facts-writer")

    def _open_journal(self, journal: FactJournal) -> None:
        """Open `journal`; one that cannot be opened (another process holds it, a directory
        this user cannot write) is logged and done without: the calls must go on."""
        journal.on_lost = self._lose
        try:
            journal.open()
        except (JournalBusyError, OSError) as error:
            journal.close()
            self.journal = None
            log.error(
                "call facts: no journal (%s); a stop while the database is away will lose "
                "what waits",
                error,
            )
            return
        if journal.records:
            self._done.clear()
            self._noted.set()

    def note(self, write: FactWrite) -> None:
        """Keep `write` for the next batch (never blocks: listeners call this)."""
        if self._worker is None:
            self.start()
        self._last_seq += 1
        mark = WriteMark(self.name, self._last_seq)
        if self._to_journal():
            if self.journal is not None and self.journal.append(write, mark):
                self._done.clear()
                self._noted.set()
                self._flush_journal_soon()
            return
        if not self._waiting:
            self._first_at = asyncio.get_running_loop().time()
        self._waiting.add(write, mark)
        self._done.clear()
        self._noted.set()
        if len(self._waiting) >= self._size:
            self._hurry.set()

    def _to_journal(self) -> bool:
        """Whether a new write goes to the journal: once it holds any (they are older), or
        when memory is full: the database away, or there but slower than the calls."""
        if self.journal is None:
            return False
        if self.journal.records or self._replaying is not None:
            return True
        return len(self._waiting) >= self._memory

    def _flush_journal_soon(self) -> None:
        """Have the journal's appends flushed to disk `journal_sync_seconds` after the first:
        one fsync for all of them, in a thread (the calls never wait on the disk)."""
        if self._sync_timer is None:
            loop = asyncio.get_running_loop()
            self._sync_timer = loop.call_later(self._sync_seconds, self._flush_journal)

    def _flush_journal(self) -> None:
        self._sync_timer = None
        if self._sync is not None:  # a slow disk: one flush at a time, the next after it
            self._flush_journal_soon()
            return
        unsynced = self.journal.unsynced() if self.journal is not None else None
        if unsynced is not None:
            self._sync = asyncio.create_task(asyncio.to_thread(unsynced))
            self._sync.add_done_callback(self._flushed)

    def _flushed(self, flush: asyncio.Task[bool]) -> None:
        self._sync = None
        if not flush.cancelled() and (error := flush.exception()) is not None:
            log.error("call facts: the journal's flush failed", exc_info=error)

    async def _stop_flushing(self) -> None:
        """No flush is due any more, the one running has ended (the journal's close flushes
        the rest)."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self._sync is not None:
            await asyncio.gather(self._sync, return_exceptions=True)

    def _lose(self, reason: str, count: int) -> None:
        self.lost += count
        CALL_FACTS_LOST.labels(reason).inc(count)

    async def idle(self) -> None:
        """Return once every write noted so far is committed (written now, not in
        `batch_seconds`)."""
        self._flushes += 1
        self._hurry.set()
        try:
            await self._done.wait()
        finally:
            self._flushes -= 1

    async def stop(self) -> None:
        """Write everything waiting, then end the worker; a database away for `stop_seconds`
        leaves what still waits in the journal (without one: lost, logged with the count)."""
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(self.idle(), self._stop_seconds)
        except TimeoutError:
            await self._let_transaction_end()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
        await self._stop_flushing()
        self._keep_at_stop()
        self._waiting = NotedWrites()
        self._writing = NotedWrites()
        self._written = 0
        self.waiting_for_database = False  # what it kept is journaled, or lost and counted
        self._done.set()

    async def _let_transaction_end(self) -> None:
        """No transaction begins any more, and the one running (if any) is given
        `stop_seconds` more to end, so that the worker is cancelled between two."""
        self._stopping = True
        if self._between_transactions.is_set():
            return
        log.warning("call facts: stopping once the transaction running now ends")
        try:
            await asyncio.wait_for(self._between_transactions.wait(), self._stop_seconds)
        except TimeoutError:
            log.error(
                "call facts: a transaction still runs at stop and is cancelled; its writes are "
                "journaled, and written at the next start unless it committed after all"
            )

    async def _commit(self, writes: NotedWrites) -> None:
        """One transaction. Cancelled while its COMMIT is on the wire, it could be committed
        unnoted, and what `stop` keeps in the journal read again (its marks keep it from being
        written twice): so at stop none begins, and the one running is let end
        (`_let_transaction_end`)."""
        if self._stopping:
            await asyncio.Event().wait()  # parked: `stop` cancels the worker here
        self._between_transactions.clear()
        try:
            await self.store.write(writes.writes, writes.marks)
        finally:
            self._between_transactions.set()

    def _keep_at_stop(self) -> None:
        """What still waits into the journal, before what it holds; without one, lost."""
        left = self._waiting
        if self._replaying is None:
            left = self._writing.tail(self._written)
            left.writes += self._waiting.writes
            left.marks += self._waiting.marks
        if self.journal is None:
            if left:
                self._lose("away_at_stop", len(left))
                log.error(
                    "call facts: the database is still away at stop, %d writes lost", len(left)
                )
            return
        if self._replaying is not None:
            self.journal.uncommitted(self._replaying)
            self._replaying = None
        kept = self.journal.prepend(left.writes, left.marks) if left else 0
        if self.journal.records:
            log.warning(
                "call facts: the database is still away at stop; %d writes (%d of them kept "
                "now) wait in the journal for the next start",
                self.journal.records,
                kept,
            )
        self.journal.close()

    async def _run(self) -> None:
        while True:
            await self._noted.wait()
            if self._waiting:  # memory first: older than anything journaled
                await self._write_from_memory()
            elif self.journaled:
                await self._replay()
            if not self._waiting and not self.journaled:
                self._noted.clear()
                self._done.set()

    async def _write_from_memory(self) -> None:
        delay = self._first_at + self._seconds - asyncio.get_running_loop().time()
        if delay > 0 and not self._hurry.is_set():
            try:  # gather for a while: one transaction for the whole burst
                await asyncio.wait_for(self._hurry.wait(), delay)
            except TimeoutError:
                pass
        self._writing = self._waiting.take(self._size)
        self._written = 0
        if len(self._waiting) < self._size and not self._flushes:
            self._hurry.clear()
        await self._write(self._writing, self._note_written)
        self._writing = NotedWrites()
        self._written = 0

    def _note_written(self, done: int) -> None:
        self._written = done

    async def _replay(self) -> None:
        """The journal's next batch, through the same path; its records are dropped only
        once committed."""
        assert self.journal is not None
        try:
            batch = self.journal.read(self._size)
        except Exception:  # a broken disk: the worker must live on, and say so
            log.exception("call facts: cannot read the journal")
            await asyncio.sleep(self._retry[-1])
            return
        if batch is None:
            return
        self._replaying, self._written = batch, 0
        self._writing = NotedWrites(batch.writes, batch.marks)
        journal = self.journal

        def committed(done: int) -> None:
            self._written = done
            journal.committed(batch, done)

        await self._write(self._writing, committed)
        committed(len(batch.writes))
        self._replaying, self._writing, self._written = None, NotedWrites(), 0

    async def _write(self, batch: NotedWrites, progress: Progress) -> None:
        """Commit `batch`, trying again while the database is away; `progress` hears how
        many of its writes are done when it is written one by one."""
        failures = 0
        while True:
            try:
                await self._commit(batch)
                self.batches += 1
                self.waiting_for_database = False
                if failures:
                    log.warning(
                        "call facts: the database is back, %d kept writes written", len(batch)
                    )
                return
            except Exception as error:  # a refused batch is split, not lost
                if not database_away(error):
                    await self._write_each(batch, progress)
                    return
                pause = self._retry[min(failures, len(self._retry) - 1)]
                failures += 1
                self.waiting_for_database = True
                log.warning(
                    "call facts: database away or busy (%s), %d writes kept (%d more waiting), "
                    "trying again in %.1f s",
                    type(error).__name__,
                    len(batch),
                    len(self._waiting),
                    pause,
                )
                await asyncio.sleep(pause)

    async def _write_each(self, batch: NotedWrites, progress: Progress) -> None:
        """A refused batch one write at a time: only what the database refuses is lost."""
        for index, write in enumerate(batch.writes):
            try:
                await self._commit(NotedWrites([write], [batch.marks[index]]))
                self.batches += 1
            except Exception as error:
                if database_away(error):  # gone meanwhile: keep the rest, in order
                    await self._write(
                        batch.tail(index), functools.partial(_shifted, progress, index)
                    )
                    return
                self._lose("refused", 1)
                log.exception("call facts: the database refused a %s", type(write).__name__)
            progress(index + 1)


def _shifted(progress: Progress, before: int, done: int) -> None:
    """`progress` of a batch's tail, told as of the whole batch."""
    progress(before + done)
