"""What the FastAGI sessions of one server share, to keep the per-command path short."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter as Tally
from collections.abc import Callable
from typing import Final, Protocol, cast

from prometheus_client import Histogram

from hotline import metrics
from hotline.agi.protocol import AgiReply, Quoted, format_command

__all__ = ["SessionSupport"]

# Bound of `SessionSupport`'s formatted-line cache.
_LINE_CACHE_ENTRIES: Final = 1024


class _CounterValue(Protocol):
    """What a prometheus_client counter keeps its value in (``Counter._value``)."""

    def inc(self, amount: float) -> None: ...


class SessionSupport:
    """What the sessions of one server share, to keep the per-command path short.

    * Command counts and latencies, and how sessions ended, are gathered in plain Python and
      pushed to Prometheus by `flush`, which the server calls on every sweep tick and when it
      stops: `Counter.inc` and
      `Histogram.observe` take a lock and go through several calls each, too much for every
      command of every call. Even the bucket of a latency is found at the flush, for all of
      them in one go. The metrics therefore lag by at most one tick. A session made without a
      server flushes at once.
    * A command answered "ok" (nearly all of them) is noted by `note_ok`, with no Python call
      on a server's support (see `note_ok`).
    * The reply lines known to be such an "ok" reply, with their line break: `ok_replies`.
    * Command lines whose arguments never carry caller data (prompt names, timeouts) are
      formatted once: `line`.
    """

    __slots__ = (
        "_answered",
        "_bounds",
        "_counters",
        "_ended",
        "_ended_counters",
        "_histogram",
        "_immediate",
        "_latencies",
        "_lines",
        "_pending",
        "note_ok",
        "ok_replies",
        "stream_lines",
    )

    def __init__(
        self, *, immediate: bool = True, histogram: Histogram = metrics.AGI_COMMAND_SECONDS
    ) -> None:
        self._immediate = immediate
        self._pending: dict[tuple[str, str], int] = {}
        # The counters' values, added to as `Counter.inc` does, without its checks (a count
        # is never negative) and its three Python calls.
        self._counters: dict[tuple[str, str], _CounterValue] = {}
        self._ended: list[str] = []  # how each session since the flush ended
        self._ended_counters: dict[str, _CounterValue] = {}
        self._lines: dict[tuple[str | int, ...], bytes] = {}
        # `stream_line`'s, by (name, escape digits), both plain str; `AgiSession.stream_file`
        # looks them up itself.
        self.stream_lines: dict[tuple[str, str], bytes] = {}
        self._histogram = histogram
        self._latencies: list[float] = []  # command latencies since the flush
        # Since the flush, for each command answered "ok": its verb, then its latency. Kept
        # for the life of the support (`flush` copies and clears it), as `note_ok` is bound
        # to it and sessions hold that.
        self._answered: list[str | float] = []
        # ``note_ok((verb, seconds))``: a server's support takes the pair in one C call
        # (list.extend), the rest flush it at once.
        self.note_ok: Callable[[tuple[str, float]], object] = (
            self._note_ok_now if immediate else self._answered.extend
        )
        # Whole reply lines (line break included) whose reply is a plain 200 with a result
        # that is not negative: the connection hands these to `AgiSession._deliver_ok`
        # without splitting the read. Filled by the connection from its reply cache, bounded
        # there; the same immutable replies as that cache, so free of caller data too.
        self.ok_replies: dict[bytes, AgiReply] = {}
        # The histogram's bounds (+Inf last): `Histogram.observe` puts a latency in the first
        # bucket whose bound is >= it.
        self._bounds = tuple(histogram._upper_bounds)

    def count(self, verb: str, result: str) -> None:
        key = (verb, result)
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._immediate:
            self.flush()

    def observe(self, seconds: float) -> None:
        """One command's latency for ``hotline_agi_command_seconds``."""
        self._latencies.append(seconds)
        if self._immediate:
            self.flush()

    def answered(self, verb: str, seconds: float) -> None:
        """``count(verb, "ok")`` and `observe` in one call (what `note_ok` does): noted, and
        counted at the flush (no tuple key built and hashed per command)."""
        self.note_ok((verb, seconds))

    def _note_ok_now(self, answered: tuple[str, float]) -> None:
        """`note_ok` of a support with no server: counted at once."""
        self._answered.extend(answered)
        self.flush()

    def session_ended(self, outcome: str) -> None:
        """One session ended so (``completed``, ``hangup``...): ``hotline_agi_sessions_total``."""
        self._ended.append(outcome)  # counted at the flush
        if self._immediate:
            self.flush()

    def flush(self) -> None:
        """Add what was gathered since the last flush to ``hotline_agi_commands_total``,
        ``hotline_agi_command_seconds`` and ``hotline_agi_sessions_total``."""
        if self._ended:
            self._flush_ended()
        pending, self._pending = self._pending, {}
        answered = self._answered
        if answered:
            self._latencies += cast("list[float]", answered[1::2])
            for verb, count in Tally(cast("list[str]", answered[::2])).items():
                key = (verb, "ok")
                pending[key] = pending.get(key, 0) + count
            answered.clear()  # the same list: `note_ok` is bound to it
        for key, count in pending.items():
            value = self._counters.get(key)
            if value is None:
                value = self._counters[key] = metrics.AGI_COMMANDS.labels(*key)._value
            value.inc(count)
        if self._latencies:
            self._flush_latencies()

    def _flush_latencies(self) -> None:
        """Histogram.observe adds to the sum and to one bucket's value; these are the same
        two values, added to in bulk (prometheus_client keeps them per bucket, not cumulated:
        the exposition sums them). Sorted once, the latencies up to each bound are counted by
        one bisection per bound rather than one per latency (a C sort of floats costs a
        tenth of a Python-level call per latency)."""
        latencies, self._latencies = self._latencies, []
        histogram = self._histogram
        histogram._sum.inc(sum(latencies))
        latencies.sort()
        counted, total = 0, len(latencies)
        for bucket, bound in enumerate(self._bounds):
            up_to_bound = bisect_right(latencies, bound, counted)  # those <= bound
            if up_to_bound > counted:
                histogram._buckets[bucket].inc(up_to_bound - counted)
                if up_to_bound == total:
                    break  # all counted: the higher buckets get none
                counted = up_to_bound

    def _flush_ended(self) -> None:
        ended, self._ended = self._ended, []
        for outcome, count in Tally(ended).items():
            value = self._ended_counters.get(outcome)
            if value is None:
                value = self._ended_counters[outcome] = metrics.AGI_SESSIONS.labels(outcome)._value
            value.inc(count)

    def line(self, verb: str, *args: str | int) -> bytes:
        """`format_command` for arguments that are not caller data, remembered (bounded).

        Each call site passes the same types in the same places (``Quoted`` escape digits,
        integer timeouts), so keys that compare equal format equally."""
        key = (verb, *args)
        line = self._lines.get(key)
        if line is None:
            line = format_command(verb, *args)
            if len(self._lines) < _LINE_CACHE_ENTRIES:
                self._lines[key] = line
        return line

    def stream_line(self, name: str, escape_digits: str) -> bytes:
        """``STREAM FILE <name> "<escape_digits>"``, the most frequent command, remembered
        (bounded) by its two plain arguments."""
        if name.__class__ is not str or escape_digits.__class__ is not str:
            return format_command("STREAM FILE", name, Quoted(escape_digits))  # no cache
        key = (name, escape_digits)
        line = self.stream_lines.get(key)
        if line is None:
            line = format_command("STREAM FILE", name, Quoted(escape_digits))
            if len(self.stream_lines) < _LINE_CACHE_ENTRIES:
                self.stream_lines[key] = line
        return line
