"""`FactJournal`: the call facts' writes kept on local disk while the database is away or
slower than the calls.

`reporting.fact_writer.FactWriter` keeps a bounded number of writes in memory; past it, and
for what still waits at stop, it appends them here, and replays them in order through its
batches once the database is back (or at the next start).

On disk: a private directory (`hotline.private`, 0700; files 0600: the facts hold callers'
numbers) of segments `facts-<seq>.journal`, replayed in `seq` order. A segment begins with
the line `HEADER`; each record is one line, ``<crc32 of the JSON, 8 hex digits> <JSON>``
(`reporting.fact_codec`). New writes go to the last segment (a new one past a sixteenth of
the bound); what waits at stop goes into a new first one (it is older than what was
appended). A segment being replayed is frozen (the next append opens a new one) and its
progress, the byte offset of the records committed, is kept beside it in `facts-<seq>.done`
after each commit: a replay cut by the database going away or by a stop starts again at the
first write not committed. Each record keeps its write's mark (`reporting.fact_marks`), so a
batch committed and then read again (a crash between its commit and that note, a transaction
a stop gave up on that committed after all) is not written twice.
A segment is removed once all its writes are committed. Each write reaches the OS as it is
appended (a crash of the controller keeps it) and the disk soon after, in a group: the writer
asks for `unsynced` at most once a `journal_sync_seconds` (1 s) while it appends and runs the
`JournalSync` it gets off the event loop (fsync of the segment, and of the directory once a
segment was made), so a crash of the machine loses at most the last second of appends, and
the calls never wait on the disk. A segment is also flushed when it is frozen or closed. A
flush the disk refuses is logged and counted (`hotline_call_facts_journal_sync_failures_total`):
the records may not survive a crash of the machine, and an admin must look at the disk.

A record that fails its checksum or cannot be read (the torn last line of a crash, a broken
disk) is skipped, logged, and counted lost (`journal_corrupt`); a file that does not begin
with `HEADER` is not a journal: it is renamed `*.unreadable`, logged, and left for an admin,
so a start never fails on it twice. The directory is bounded (`max_bytes`): once a write
would pass it, writes are lost until a replayed segment frees room (so the journal never has
a hole), counted (`journal_full`) and logged, as is one the disk refuses (`journal_error`).
One process at a time: the directory is locked (`flock`) while a writer uses it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from hotline.private import PRIVATE_FILE, open_private, private_dir, tighten
from hotline.yamldoc import write_atomically
from reporting.fact_codec import RecordError, decode_write, encode_write
from reporting.fact_marks import WriteMark
from reporting.fact_store import FactWrite
from reporting.metrics import CALL_FACTS_JOURNAL_SYNC_FAILURES

__all__ = ["HEADER", "FactJournal", "JournalBatch", "JournalBusyError", "JournalSync"]

log = logging.getLogger(__name__)

HEADER: Final = b"hotline call-facts journal 1\n"
_FIRST_SEQ: Final = 10**9  # what waits at stop goes before the first: room below to count down
_SUFFIX: Final = ".journal"
# A segment's room is freed only once all of it is replayed: the journal is cut into parts of
# a sixteenth of its bound (1 MB at least), so a full one has room again soon after the
# database is back.
_SEGMENTS_IN_FULL: Final = 16
_SEGMENT_MIN_BYTES: Final = 1 << 20

LostCallback = Callable[[str, int], None]  # (reason, writes)


class JournalBusyError(RuntimeError):
    """Another process holds the journal's directory."""


@dataclass
class JournalBatch:
    """Writes read from one segment, each with its mark and the offset just after its
    record."""

    seq: int
    writes: list[FactWrite] = field(default_factory=list)
    marks: list[WriteMark | None] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    end: int = 0  # after the last line read (skipped ones included)
    exhausted: bool = False  # nothing follows in its segment
    done: int = 0  # writes of it committed (or refused) so far


class JournalSync:
    """What the journal had not flushed to disk when it was asked (`FactJournal.unsynced`):
    its own handles on the files, so that calling it in another thread is safe while the
    journal goes on appending, or closes the segment meanwhile. Call it once."""

    def __init__(self, handles: list[int]) -> None:
        self.handles = handles  # duplicated descriptors: the segment, the directory

    def __call__(self) -> bool:
        """Flush to disk; False (logged, counted) when the disk refuses."""
        synced = True
        for handle in self.handles:
            try:
                synced = _flushed_to_disk(handle) and synced
            finally:
                os.close(handle)
        return synced


def _flushed_to_disk(handle: int) -> bool:
    """fsync `handle`; False, logged and counted, when it cannot be done."""
    try:
        os.fsync(handle)
    except OSError as error:
        _refused_flush(error)
        return False
    return True


def _refused_flush(error: OSError) -> None:
    CALL_FACTS_JOURNAL_SYNC_FAILURES.inc()
    log.error(
        "call facts: cannot flush the journal to disk (%s); what it holds may not survive a "
        "crash of the machine",
        error.strerror,
    )


class FactJournal:
    """The append-only journal in `directory`, at most `max_bytes` on disk."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.records = 0  # writes journaled and not yet committed
        self.size = 0  # bytes of the segments on disk
        self.on_lost: LostCallback = lambda reason, count: None
        self._segments: list[int] = []  # seq, in replay order
        self._tail: BinaryIO | None = None  # the segment appends go to (the last)
        self._tail_size = 0
        self._segment_bytes = segment_bytes or max(
            _SEGMENT_MIN_BYTES, max_bytes // _SEGMENTS_IN_FULL
        )
        self._reader: BinaryIO | None = None  # the first segment, being replayed
        self._read_at = 0
        self._lock: BinaryIO | None = None
        self._full_losses = 0  # writes lost since the journal was last found full
        # What `unsynced` must flush: appends since it was last asked, a segment made since.
        self._tail_unsynced = False
        self._directory_unsynced = False

    # --- opening and closing -----------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether a writer holds it (between `open` and `close`)."""
        return self._lock is not None

    def open(self) -> None:
        """Lock the directory, set aside what is not a journal and count what waits."""
        private_dir(self.directory)
        self._lock = open_private(self.directory / "journal.lock")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise JournalBusyError(
                f"call facts: another process uses the journal in {self.directory}"
            ) from None
        for seq in sorted(self._found()):
            self._adopt(seq)
        if self.records:
            log.warning(
                "call facts: %d journaled writes from before this start will be written",
                self.records,
            )

    def close(self) -> None:
        """Flush to disk and unlock (what is journaled stays for the next start)."""
        self._close_tail()
        if self._directory_unsynced and self._lock is not None:
            self._directory_unsynced = False
            try:
                JournalSync([os.open(self.directory, os.O_RDONLY)])()
            except OSError as error:  # no descriptor left, say
                _refused_flush(error)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        # what is on disk is counted again by the next `open`
        self._segments, self.records, self.size = [], 0, 0
        if self._full_losses:
            log.error("call facts: %d writes were lost as the journal was full", self._full_losses)
            self._full_losses = 0

    def _found(self) -> list[int]:
        seqs = []
        for path in self.directory.glob(f"facts-*{_SUFFIX}"):
            try:
                seqs.append(int(path.name.removeprefix("facts-").removesuffix(_SUFFIX)))
            except ValueError:
                continue  # not one of ours: left alone
        return seqs

    def _adopt(self, seq: int) -> None:
        """Count segment `seq`'s records after its progress, or set it aside if it is not a
        journal."""
        path = self._path(seq)
        tighten(path, PRIVATE_FILE)
        with path.open("rb") as segment:
            if segment.read(len(HEADER)) != HEADER:
                self._set_aside(seq, segment)
                return
            segment.seek(self._progress(seq))
            self.records += _lines(segment)
        self.size += path.stat().st_size
        self._segments.append(seq)

    def _set_aside(self, seq: int, segment: BinaryIO) -> None:
        segment.seek(0)
        lines = max(1, _lines(segment))
        path = self._path(seq)
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        self._progress_path(seq).unlink(missing_ok=True)
        log.error(
            "call facts: %s is not a call-facts journal (no header); set aside as %s, its "
            "content is not written (about %d lines)",
            path,
            aside.name,
            lines,
        )
        self.on_lost("journal_corrupt", lines)

    # --- appending ---------------------------------------------------------------------------

    def append(self, write: FactWrite, mark: WriteMark | None = None) -> bool:
        """Journal `write` (with its mark) after the others; False when it is lost (counted
        and logged)."""
        line = self._line(write, mark)
        if line is None:
            return False
        if self._full_losses or self.size + len(line) + len(HEADER) > self.max_bytes:
            self._lose_full(1)  # full until a replayed segment frees room: no holes
            return False
        if self._tail_size >= self._segment_bytes:
            self._close_tail()  # the next part
        try:
            if self._tail is None:
                self._tail = self._create(self._next_seq())
                self._tail_size = len(HEADER)
            _write_all(self._tail, line)  # to the OS: a crash of the controller keeps it
        except OSError as error:
            self._lose_error(error, 1)
            return False
        self._tail_size += len(line)
        self._tail_unsynced = True
        self._noted(1, len(line))
        return True

    def unsynced(self) -> JournalSync | None:
        """What was appended since the last call and is not yet on disk, to flush off the
        event loop (fsync waits on the disk); None when there is nothing."""
        handles: list[int] = []
        try:
            if self._tail_unsynced and self._tail is not None:
                handles.append(os.dup(self._tail.fileno()))
            if self._directory_unsynced and self._lock is not None:
                handles.append(os.open(self.directory, os.O_RDONLY))
        except OSError as error:  # no descriptor left, say: asked again at the next append
            for handle in handles:
                os.close(handle)
            _refused_flush(error)
            return None
        self._tail_unsynced = self._directory_unsynced = False
        return JournalSync(handles) if handles else None

    def prepend(self, writes: Sequence[FactWrite], marks: Sequence[WriteMark | None]) -> int:
        """Journal `writes` (each with its mark) before everything journaled (they are older:
        what waited in memory at stop), in one new first segment; returns how many were
        kept."""
        lines = [line for line in map(self._line, writes, marks) if line is not None]
        room = self.max_bytes - self.size - len(HEADER)
        kept: list[bytes] = []
        for line in lines:
            if len(line) > room:
                break
            kept.append(line)
            room -= len(line)
        if len(kept) < len(lines):
            self._lose_full(len(lines) - len(kept))
        if not kept:
            return 0
        seq = self._segments[0] - 1 if self._segments else _FIRST_SEQ
        try:
            with self._create(seq, first=True) as segment:
                _write_all(segment, b"".join(kept))
                os.fsync(segment.fileno())
        except OSError as error:
            self._lose_error(error, len(kept))
            return 0
        self._noted(len(kept), sum(map(len, kept)))
        return len(kept)

    def _line(self, write: FactWrite, mark: WriteMark | None) -> bytes | None:
        try:
            payload = encode_write(write, mark)
        except (TypeError, ValueError) as error:
            log.error("call facts: a %s cannot be journaled (%s)", type(write).__name__, error)
            self.on_lost("journal_error", 1)
            return None
        return b"%08x %s\n" % (zlib.crc32(payload), payload)

    def _create(self, seq: int, *, first: bool = False) -> BinaryIO:
        segment = open_private(self._path(seq), exclusive=True)
        self._directory_unsynced = True  # its name is on disk once the directory is
        _write_all(segment, HEADER)
        self.size += len(HEADER)
        if first:
            self._segments.insert(0, seq)
        else:
            self._segments.append(seq)
        return segment

    def _next_seq(self) -> int:
        return self._segments[-1] + 1 if self._segments else _FIRST_SEQ

    def _noted(self, count: int, size: int) -> None:
        self.records += count
        self.size += size

    def _lose_full(self, count: int) -> None:
        if not self._full_losses:
            log.error(
                "call facts: the journal in %s is full (%d of %d bytes): call-fact writes "
                "are being LOST until the database is back",
                self.directory,
                self.size,
                self.max_bytes,
            )
        self._full_losses += count
        self.on_lost("journal_full", count)

    def _lose_error(self, error: OSError, count: int) -> None:
        log.error(
            "call facts: cannot write the journal in %s (%s), %d writes lost",
            self.directory,
            error.strerror or type(error).__name__,
            count,
        )
        self._close_tail()  # the next append starts a new segment
        self.on_lost("journal_error", count)

    # --- replaying ---------------------------------------------------------------------------

    def read(self, count: int) -> JournalBatch | None:
        """Up to `count` writes from the first segment, after the ones committed; None when
        nothing is journaled. Bad records are skipped (logged, counted)."""
        while self._segments:
            seq = self._segments[0]
            if self._reader is None:
                if self._tail is not None and len(self._segments) == 1:
                    self._close_tail()  # freeze it: what is noted now goes after it
                self._reader = self._path(seq).open("rb")
                self._read_at = self._progress(seq)
            batch = self._read_batch(seq, count)
            if batch.writes or not batch.exhausted:
                return batch
            self._remove_first()
        self.records = 0  # whatever the count said, nothing is left to read
        return None

    def _read_batch(self, seq: int, count: int) -> JournalBatch:
        assert self._reader is not None
        batch = JournalBatch(seq)
        self._reader.seek(self._read_at)
        while len(batch.writes) < count:
            line = self._reader.readline()
            if not line:
                batch.exhausted = True
                break
            self._read_at += len(line)
            record = self._record(seq, line)
            if record is not None:
                batch.writes.append(record[0])
                batch.marks.append(record[1])
                batch.ends.append(self._read_at)
        batch.end = self._read_at
        if not batch.exhausted and not self._reader.read(1):
            batch.exhausted = True
        return batch

    def _record(self, seq: int, line: bytes) -> tuple[FactWrite, WriteMark | None] | None:
        where = f"{self._path(seq).name} at byte {self._read_at - len(line)}"
        if not line.endswith(b"\n"):  # the segment is frozen: nothing will complete it
            log.error("call facts: a torn last record in the journal (%s), skipped", where)
            self.on_lost("journal_corrupt", 1)
            return None
        self.records -= 1
        checksum, _, payload = line[:-1].partition(b" ")
        try:
            if int(checksum, 16) != zlib.crc32(payload) or len(checksum) != 8:
                raise RecordError("checksum mismatch")
            return decode_write(payload)
        except (RecordError, ValueError) as error:
            log.error("call facts: a bad record in the journal (%s: %s), skipped", where, error)
            self.on_lost("journal_corrupt", 1)
            return None

    def committed(self, batch: JournalBatch, done: int) -> None:
        """The first `done` writes of `batch` are committed (or refused: lost, counted): note
        it on disk; remove the segment once all of it is."""
        if done <= batch.done:
            return
        batch.done = done
        offset = batch.end if done == len(batch.writes) else batch.ends[done - 1]
        if done == len(batch.writes) and batch.exhausted:
            self._remove_first()
            return
        write_atomically(self._progress_path(batch.seq), b"%d\n" % offset, mode=PRIVATE_FILE)

    def uncommitted(self, batch: JournalBatch) -> None:
        """`batch` was not written (the writer stopped): read it again next time."""
        self.records += len(batch.writes) - batch.done
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _remove_first(self) -> None:
        seq = self._segments.pop(0)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        path = self._path(seq)
        self.size -= path.stat().st_size
        path.unlink()
        self._progress_path(seq).unlink(missing_ok=True)
        if self._full_losses:
            log.error(
                "call facts: the journal has room again; %d writes were lost while it was full",
                self._full_losses,
            )
            self._full_losses = 0

    # --- files -------------------------------------------------------------------------------

    def _path(self, seq: int) -> Path:
        return self.directory / f"facts-{seq:010d}{_SUFFIX}"

    def _progress_path(self, seq: int) -> Path:
        return self.directory / f"facts-{seq:010d}.done"

    def _progress(self, seq: int) -> int:
        try:
            return max(len(HEADER), int(self._progress_path(seq).read_text()))
        except (FileNotFoundError, ValueError):
            return len(HEADER)

    def _close_tail(self) -> None:
        if self._tail is not None:
            _flushed_to_disk(self._tail.fileno())  # (here: the segment is not closed meanwhile)
            self._tail.close()  # nothing buffered: every write went straight to the OS
            self._tail = None
            self._tail_size = 0
            self._tail_unsynced = False


def _write_all(segment: BinaryIO, data: bytes) -> None:
    """`data` to the OS at once (no buffer left behind to flush when the disk is full)."""
    view = memoryview(data)
    while view:
        view = view[os.write(segment.fileno(), view) :]


def _lines(segment: BinaryIO) -> int:
    """Complete lines from the position on (a torn last line is not one)."""
    return sum(chunk.count(b"\n") for chunk in iter(lambda: segment.read(1 << 20), b""))
