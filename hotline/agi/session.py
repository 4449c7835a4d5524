"""One FastAGI session: the commands of one call, sent one at a time, with hang-up handled.

`AgiSession` does no socket I/O itself: the server's connection hands it a `write` function
and feeds it what Asterisk sends (`_deliver`, `_hangup_notice`, `_connection_lost`). That keeps
the reply-matching rules in one place, testable without a network:

* A command owns the wire from the moment its line is written until its reply arrives. The
  next command waits for that turn, so Asterisk never has two commands outstanding and every
  reply answers the command before it (concurrent callers are queued, not refused).
* The unsolicited ``HANGUP`` line is never a reply: it sets `hung_up` and completes `gone`.
  panoramisk returns it as the reply to the command in flight and is then one reply late for
  the rest of the call. Asterisk sends it the moment the caller hangs up, also while no command
  runs (a caller held between announcements), and leaves the socket open: a handler waiting
  on something else learns of it only through `gone`.
* A command whose awaiting task is cancelled keeps the turn until its reply arrives and that
  reply is dropped, so the next command gets its own reply and not the orphan's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from time import monotonic
from typing import Final, NamedTuple

from hotline.agi.protocol import (
    AgiProtocolError,
    AgiReply,
    AgiRequest,
    Quoted,
    format_arg,
    format_command,
)
from hotline.agi.support import SessionSupport

__all__ = [
    "NO_SUCH_APPLICATION",
    "AgiCommandError",
    "AgiConnectionLost",
    "AgiError",
    "AgiReplyTimeout",
    "AgiSession",
    "AgiUsageError",
    "CallerHungUp",
    "Digits",
    "Playback",
    "Recording",
    "SessionSupport",
]

log = logging.getLogger(__name__)

NO_SUCH_APPLICATION: Final = -2
"""What `AgiSession.exec` returns when the dialplan application does not exist."""

# The argument-less commands, formatted once.
_ANSWER: Final = format_command("ANSWER")
_HANGUP: Final = format_command("HANGUP")
_NOOP: Final = format_command("NOOP")
_CHANNEL_STATUS: Final = format_command("CHANNEL STATUS")
# The keys of a phone: what GET DATA returns and what a digit code may stand for.
_DTMF: Final = frozenset("0123456789*#ABCD")
_DTMF_RUN: Final = re.compile(r"[0-9*#A-D]*")
# Applications that connect the caller to a person: Asterisk runs them to their end whether or
# not the FastAGI session is still there (res_agi reads no command while EXEC runs).
_BRIDGING: Final = (b"exec dial ", b"exec queue ")


# --- errors ------------------------------------------------------------------------------


class AgiError(Exception):
    """Base of the errors a session raises (besides `AgiProtocolError` for garbage)."""


class CallerHungUp(AgiError):
    """The caller is gone: the call takes no more commands.

    Handlers may simply let it propagate: the server then ends the session with one info line
    and no traceback. Catch it only to record what the caller's leaving means (an abandoned
    call, say).
    """


class AgiConnectionLost(CallerHungUp):
    """Asterisk closed the connection: for the handler this is a hang-up like any other."""


class AgiCommandError(AgiError):
    """Asterisk rejected a command: ``510`` (unknown command) or another non-200 code."""

    def __init__(self, reply: AgiReply) -> None:
        super().__init__(f"{reply.code} {reply.text}")
        self.reply = reply


class AgiUsageError(AgiCommandError):
    """``520``: the command exists but its arguments are wrong; `usage` is Asterisk's text."""

    @property
    def usage(self) -> str:
        return self.reply.text


class AgiReplyTimeout(AgiError, TimeoutError):
    """Asterisk did not answer a command within the reply timeout; the session is closed."""


# --- typed results -----------------------------------------------------------------------


class Playback(NamedTuple):
    """How a prompt ended: the escape digit pressed (None if none) and the sample position.

    A result of -1 (the prompt failed or the channel hung up during it) also gives digit None;
    `AgiSession.last_reply` keeps the raw reply for callers who need to tell them apart.
    """

    digit: str | None
    endpos: int


class Recording(NamedTuple):
    """How RECORD FILE ended: the digit that stopped it, the sample position, and Asterisk's
    reason in parentheses (``timeout``, ``dtmf``, ``hangup``, ``writefile``...) if any.

    Asterisk 22's handle_recordfile (res/res_agi.c) answers ``200`` whatever happened:
    ``result=<digit> (dtmf)``, ``result=<n> (timeout)`` (n is what was left of the last wait
    for audio, not a digit), ``result=-1 (hangup)`` (the file keeps what was said until
    then), and the failures ``result=-1 (writefile)`` (the file could not be opened: a
    missing directory, an unknown format), ``result=-1 (waitfor)``, ``result=<d> (randomerror)``
    (the beep failed, or a key cut it: nothing was recorded) and a bare ``result=-1``.
    """

    digit: str | None
    endpos: int
    reason: str | None

    @property
    def timed_out(self) -> bool:
        return self.reason == "timeout"

    @property
    def saved(self) -> bool:
        """The file holds the caller's message: ended by a key, the time limit or silence,
        or the caller hanging up. False for every failure form above."""
        return self.reason in _SAVED_REASONS


# RECORD FILE's reasons after which the file was written (see `Recording`).
_SAVED_REASONS: Final = frozenset({"dtmf", "timeout", "hangup"})
# RECORD FILE's reasons whose result is a key the caller pressed.
_DIGIT_REASONS: Final = frozenset({"dtmf", "randomerror"})


class Digits(str):
    """Digits a caller typed: a plain `str` (``== "112345"``) that also says whether the entry
    ended on a timeout, which Asterisk marks with ``(timeout)`` (even with no digit at all:
    ``200 result= (timeout)``)."""

    timed_out: bool

    def __new__(cls, digits: str, *, timed_out: bool = False) -> Digits:
        self = super().__new__(cls, digits)
        self.timed_out = timed_out
        return self


# --- the session -------------------------------------------------------------------------


class AgiSession:
    """One call's FastAGI session.

    `env` is the ``agi_*`` environment as Asterisk sent it, `request` the script and its query
    parameters, `call_id` the channel's ``agi_uniqueid``. `hung_up` turns true when the
    ``HANGUP`` notice (or a ``511`` reply) arrives; from then on every command raises
    `CallerHungUp` without being sent. `last_reply` is the raw reply of the latest command.
    """

    __slots__ = (
        "_busy",
        "_failure",
        "_gone",
        "_loop",
        "_note_ok",
        "_on_failure",
        "_on_wire",
        "_queue",
        "_reply_timeout",
        "_sent_at",
        "_support",
        "_verb",
        "_waiter",
        "_write",
        "call_id",
        "env",
        "hung_up",
        "last_reply",
        "request",
    )

    def __init__(
        self,
        env: Mapping[str, str],
        write: Callable[[bytes], None],
        on_failure: Callable[[], None] = lambda: None,
        reply_timeout: float = 300.0,
        support: SessionSupport | None = None,
        request: AgiRequest | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`write` sends bytes to Asterisk; `on_failure` is called once when the session can
        no longer be used (reply timeout, garbage from Asterisk) so the owner closes the
        connection; the owner enforces `reply_timeout` by calling `check_overdue`. `loop`
        defaults to the running loop. (Not keyword-only: the server passes them in order, as
        keyword arguments to a class cost a dict per call, 3k instructions a session.)"""
        self.env: Mapping[str, str] = env
        self.request: AgiRequest = request if request is not None else AgiRequest.from_env(env)
        self.call_id: str = env.get("agi_uniqueid", "")
        self.hung_up: bool = False
        self.last_reply: AgiReply | None = None
        self._write = write
        self._on_failure = on_failure
        self._reply_timeout = reply_timeout
        self._support = support if support is not None else SessionSupport()
        self._note_ok = self._support.note_ok  # a bound C method on a server's support
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        # The turn on the wire: taken before writing a command, passed on when its reply
        # arrives (`_deliver`), so commands go out one at a time; kept once the session is
        # over (hung up, failed), so `_exchange` tests one flag. A flag and a queue rather
        # than an asyncio.Lock: the uncontended case costs no call at all.
        self._busy = False
        self._queue: deque[asyncio.Future[None]] | None = None
        self._waiter: asyncio.Future[AgiReply] | None = None
        self._sent_at = 0.0
        self._verb = ""  # the verb and line of the command holding the turn
        self._on_wire = b""
        self._failure: Exception | None = None
        self._gone: asyncio.Future[None] | None = None  # made on first ask: see `gone`

    def __repr__(self) -> str:
        return f"<AgiSession {self.call_id} script={self.request.script!r}>"

    @property
    def bridging(self) -> bool:
        """True while Asterisk runs ``EXEC Dial`` or ``EXEC Queue`` for this session: the
        caller is with (or waiting for) a person, and stays so if the session ends."""
        return self._waiter is not None and self._on_wire.lower().startswith(_BRIDGING)

    @property
    def failure(self) -> Exception | None:
        """Why the session can no longer be used (connection lost, timeout, garbage), if so."""
        return self._failure

    def gone(self) -> asyncio.Future[None]:
        """A future done the moment the session ends under the handler: the caller hung up
        (the ``HANGUP`` notice or a ``511``), Asterisk closed the connection, or the session
        failed. For a handler that waits on something other than a command (the ACD holding a
        caller on hold music between announcements) and must not learn of it only at its next
        command: ``await asyncio.wait({work, session.gone()}, ...)``. A cancellation (the
        server handing the call back to the dialplan) does not complete it. Never cancel it."""
        if self._gone is None:
            self._gone = self._loop.create_future()
            if self.hung_up or self._failure is not None:
                self._gone.set_result(None)
        return self._gone

    def _mark_gone(self) -> None:
        gone = self._gone
        if gone is not None and not gone.done():
            gone.set_result(None)

    # --- sending -------------------------------------------------------------------------

    async def command(self, verb: str, *args: str | int) -> AgiReply:
        """Send one command and return its ``200`` reply, whatever its result (-1 included).

        Raises `CallerHungUp` after a hang-up or on ``511``, `AgiCommandError` on ``510``,
        `AgiUsageError` on ``520``, `AgiReplyTimeout` when Asterisk stays silent, and
        `AgiProtocolError` when it sends garbage. Concurrent calls are served one at a time.
        """
        return await self._exchange(verb, format_command(verb, *args))

    def _exchange(self, verb: str, line: bytes) -> Awaitable[AgiReply]:
        """Write one command line; await what this returns for its reply. With the wire free
        (`_busy` false; it stays true once the session is over) that is the reply's future
        itself, settled and counted by `_deliver` or `_fail`: no coroutine in between."""
        if self._busy:
            return self._exchange_in_turn(verb, line)
        self._busy = True
        waiter: asyncio.Future[AgiReply] = self._loop.create_future()
        self._waiter = waiter
        self._verb = verb
        self._sent_at = monotonic()  # for the latency, and the sweep: see `check_overdue`
        self._on_wire = line
        self._write(line)
        return waiter

    async def _exchange_in_turn(self, verb: str, line: bytes) -> AgiReply:
        """`_exchange` when the wire is taken or the session over: wait for the turn."""
        if not self.hung_up and self._failure is None:  # else refused at once
            await self._wait_turn()
            if not self.hung_up and self._failure is None:
                self._busy = False  # ours, and nothing awaited since: `_exchange` takes it
                return await self._exchange(verb, line)
            self._pass_turn()  # over while we waited: the next in the queue is refused too
        raise self._refusal(verb)

    async def _wait_turn(self) -> None:
        """Queue behind the command on the wire; return owning the turn."""
        turn: asyncio.Future[None] = self._loop.create_future()
        if self._queue is None:
            self._queue = deque()
        self._queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn()  # handed the turn just as we were cancelled: pass it on
            raise

    def _pass_turn(self) -> None:
        """Hand the wire to the next queued command (cancelled ones are skipped), or free it."""
        queue = self._queue
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._busy = self.hung_up or self._failure is not None  # see `_exchange`

    def _refusal(self, verb: str) -> Exception:
        if self.hung_up:
            self._support.count(verb, "hangup")
            return CallerHungUp(f"caller hung up; {verb} not sent")
        assert self._failure is not None
        return self._failure.with_traceback(None)

    def _rejection(self, verb: str, reply: AgiReply) -> AgiError:
        """The error for a non-200 reply."""
        code = reply.code
        if code == 511:
            self.hung_up = True
            self._mark_gone()
            self._support.count(verb, "dead_channel")
            return CallerHungUp(f"caller hung up; {verb} answered {code} {reply.text}")
        if code == 520:
            self._support.count(verb, "usage")
            return AgiUsageError(reply)
        self._support.count(verb, "invalid")
        return AgiCommandError(reply)

    # --- what the connection feeds in ----------------------------------------------------

    def _deliver(self, reply: AgiReply) -> None:
        """A reply arrived: it answers the command holding the turn."""
        if reply.code == 200 and reply.result[:1] != "-":
            return self._deliver_ok(reply)
        waiter = self._waiter
        if waiter is None:
            raise AgiProtocolError(f"reply with no command waiting for it: {reply.code}")
        self._waiter = None
        if reply.code == 511:
            self.hung_up = True  # so a command queued behind this one is not sent
            self._mark_gone()
        if self._queue:
            self._pass_turn()
        else:
            self._busy = self.hung_up  # over after a HANGUP or 511 (see `_exchange`)
        if waiter.done():  # its task was cancelled: the orphan reply is dropped, uncounted
            return
        self.last_reply = reply
        self._support.observe(monotonic() - self._sent_at)
        if reply.code == 200:  # a negative result: returned, counted apart
            self._support.count(self._verb, "failure")
            waiter.set_result(reply)
        else:
            waiter.set_exception(self._rejection(self._verb, reply))

    def _deliver_ok(self, reply: AgiReply) -> None:
        """`_deliver` of a 200 counted "ok" (`SessionSupport.ok_replies`, for the connection)."""
        waiter = self._waiter
        if waiter is None:
            raise AgiProtocolError("reply with no command waiting for it: 200")
        self._waiter = None
        if self._queue:
            self._pass_turn()
        else:
            self._busy = self.hung_up  # over after a HANGUP or 511 (see `_exchange`)
        try:  # no `done()` test first: a call per command. Its callbacks run later.
            waiter.set_result(reply)
        except asyncio.InvalidStateError:  # its task was cancelled: the orphan reply is
            return  # dropped, uncounted
        self.last_reply = reply
        self._note_ok((self._verb, monotonic() - self._sent_at))

    def _hangup_notice(self) -> None:
        """The ``HANGUP`` line: not a reply, whatever command is in flight."""
        if not self.hung_up:
            self.hung_up = self._busy = True  # `_busy`: see `_exchange`
            log.debug("HANGUP notice from Asterisk")
            self._mark_gone()

    def _connection_lost(self) -> None:
        self._fail(AgiConnectionLost("Asterisk closed the connection"), notify=False)

    def _fail(self, exc: Exception, *, notify: bool = True) -> None:
        """End the session: the command in flight and every later one raise `exc`."""
        if self._failure is not None:
            return
        self._failure = exc
        self._busy = True  # see `_exchange`
        gone = self._gone  # `_mark_gone`, inlined: every call ends here (connection lost)
        if gone is not None and not gone.done():
            gone.set_result(None)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._pass_turn()
            if not waiter.done():
                self._support.count(self._verb, _failure_label(exc))
                waiter.set_exception(exc)
        if notify:
            self._on_failure()

    def check_overdue(self, now: float) -> None:
        """Fail the session if the command on the wire has waited `reply_timeout` seconds by
        `now` (``time.monotonic()``). The owner calls it periodically for all its sessions:
        one sweep per server instead of a timer per command (see `FastAgiServer`)."""
        if self._waiter is not None and now - self._sent_at >= self._reply_timeout:
            self._fail(AgiReplyTimeout(f"no reply from Asterisk within {self._reply_timeout} s"))

    # --- typed commands, byte for byte what Asterisk 22 accepts --------------------------

    async def answer(self) -> int:
        """``ANSWER``: 0 on success, -1 on failure."""
        reply = await self._exchange("ANSWER", _ANSWER)
        return 0 if reply.result == "0" else reply.value  # "0": answered, with no call

    async def hangup(self) -> int:
        """``HANGUP`` this channel: 1 on success. Asterisk then sends the ``HANGUP`` notice."""
        return (await self._exchange("HANGUP", _HANGUP)).value

    async def noop(self) -> None:
        """``NOOP``: a round trip that does nothing (a liveness check)."""
        await self._exchange("NOOP", _NOOP)

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback:
        """``STREAM FILE beep "12#"``: play a prompt, stoppable by one of `escape_digits`."""
        line = self._support.stream_lines.get((name, escape_digits))  # a Python call less
        if line is None or name.__class__ is not str or escape_digits.__class__ is not str:
            line = self._support.stream_line(name, escape_digits)  # (a Quoted name: its own)
        reply = await self._exchange("STREAM FILE", line)
        if reply.result == "0":  # played to its end, no key pressed: the usual reply
            return _played_to_end(reply.endpos or 0)
        return Playback(_digit(reply.value), _endpos(reply))

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> Digits:
        """``GET DATA demo-enterkeywords 4000 6``: play a prompt, collect up to `max_digits`.

        Digits typed ahead of the prompt count. On -1 (hang-up or failure) the digits are
        empty; see `last_reply` to tell that from an empty entry.
        """
        line = self._support.line("GET DATA", prompt, timeout_ms, max_digits)
        reply = await self._exchange("GET DATA", line)
        digits = "" if reply.result.startswith("-") else reply.result
        if not _DTMF_RUN.fullmatch(digits):  # what menus compare and validate: DTMF only
            raise AgiProtocolError(f"GET DATA result is not DTMF digits: {digits[:40]!r}")
        return Digits(digits, timed_out=reply.timed_out)

    async def say_digits(self, digits: str, escape: str = "") -> str | None:
        """``SAY DIGITS 123 ""``: the escape digit pressed, if any."""
        line = format_command("SAY DIGITS", digits, Quoted(escape))
        return _digit((await self._exchange("SAY DIGITS", line)).value)

    async def say_number(self, number: int, escape: str = "", gender: str = "") -> str | None:
        """``SAY NUMBER 21 ""``; `gender` (``f``, ``m``, ``n``, ``c``) picks Russian word forms
        (одна/один); left out when empty."""
        args: list[str | int] = [number, Quoted(escape)]
        if gender:
            args.append(gender)
        line = format_command("SAY NUMBER", *args)
        return _digit((await self._exchange("SAY NUMBER", line)).value)

    async def set_variable(self, name: str, value: str) -> None:
        """``SET VARIABLE HOTLINE_TOPIC "регистрация и вход"``: the value is quoted whenever it
        holds a blank, quote, backslash or line break (``HOTLINE_DID 88001000001`` is not), so
        caller-supplied text always stays one argument on one line."""
        if name.__class__ is str:
            prefix = _remembered_set_variable_prefix(name)
        else:  # a Quoted name: equal to the plain one, it must not share its cache entry
            prefix = _set_variable_prefix(name)
        await self._exchange("SET VARIABLE", prefix + format_arg(value).encode() + b"\n")

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE NAME``: its value, or None when the variable is not set."""
        return _variable(await self.command("GET VARIABLE", name))

    async def get_full_variable(self, expression: str, channel: str = "") -> str | None:
        """``GET FULL VARIABLE ${CALLERID(name)}``: evaluate an expression (functions too)."""
        args = (expression, channel) if channel else (expression,)
        return _variable(await self.command("GET FULL VARIABLE", *args))

    async def channel_status(self) -> int:
        """``CHANNEL STATUS``: Asterisk's channel state number (6 = up)."""
        return (await self._exchange("CHANNEL STATUS", _CHANNEL_STATUS)).value

    async def exec(self, application: str, *options: str) -> int:
        """``EXEC NoSuchApplication "x"``: run a dialplan application, return its result.

        The options are joined with ``,`` (the application's own separator) and always sent
        quoted, as one argument: ``exec("Queue", "general", "t")`` writes
        ``EXEC Queue "general,t"``. A missing application is not raised: Asterisk reports it
        as -2, returned as `NO_SUCH_APPLICATION`, and the caller decides what to do instead.
        """
        if not options:
            return (await self.command("EXEC", application)).value
        return (await self.command("EXEC", application, Quoted(",".join(options)))).value

    async def verbose(self, message: str, level: int = 1) -> None:
        """``VERBOSE "probe message" 1``: a line in Asterisk's own console/log."""
        await self.command("VERBOSE", Quoted(message), level)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """``WAIT FOR DIGIT 3000``: the digit pressed, or None on timeout (or -1 failure)."""
        line = self._support.line("WAIT FOR DIGIT", timeout_ms)
        return _digit((await self._exchange("WAIT FOR DIGIT", line)).value)

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        beep: bool = False,
        silence_s: int | None = None,
        offset_samples: int = 0,
    ) -> Recording:
        """``RECORD FILE /tmp/agi-rec wav "#" 4000 0 s=2``: record until an escape digit, the
        timeout (-1: none), `silence_s` seconds of silence or a hang-up."""
        args: list[str | int] = [path, fmt, Quoted(escape_digits), timeout_ms, offset_samples]
        if beep:
            args.append("BEEP")
        if silence_s is not None:
            args.append(f"s={silence_s}")
        reply = await self.command("RECORD FILE", *args)
        digit = _digit(reply.value) if reply.data in _DIGIT_REASONS else None
        return Recording(digit, _endpos(reply), reply.data)


def _set_variable_prefix(name: str) -> bytes:
    """``SET VARIABLE <name> ``."""
    return b"SET VARIABLE " + format_arg(name).encode() + b" "


# The names come from code, a few of them all day. Not typed (half the cost of typed=True):
# called with plain str names only.
_remembered_set_variable_prefix = lru_cache(maxsize=256)(_set_variable_prefix)


@lru_cache(maxsize=1024)
def _played_to_end(endpos: int) -> Playback:
    """The usual STREAM FILE outcome, remembered: a prompt played to its end stops at its
    length, so the same few prompts give the same few values all day, and making a
    NamedTuple (a Python-level __new__) costs four times the lookup."""
    return Playback(None, endpos)


def _failure_label(exc: Exception) -> str:
    """The metric result of a command that got no reply at all."""
    if isinstance(exc, AgiReplyTimeout):
        return "timeout"
    if isinstance(exc, AgiProtocolError):
        return "protocol_error"
    return "hangup"


def _digit(result: int) -> str | None:
    """Asterisk reports a pressed digit as its character code; 0 (none) and -1 give None."""
    if result <= 0:
        return None
    if result < 128 and chr(result) in _DTMF:
        return chr(result)
    raise AgiProtocolError(f"not a DTMF digit code: {result}")


def _endpos(reply: AgiReply) -> int:
    return reply.endpos if reply.endpos is not None else 0


def _variable(reply: AgiReply) -> str | None:
    """``200 result=1 (value)`` is a set variable (``result=1`` alone: set but empty)."""
    if reply.result != "1":
        return None
    return reply.data if reply.data is not None else ""
