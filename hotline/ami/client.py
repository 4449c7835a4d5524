"""An asyncio AMI client that keeps one logged-in link to Asterisk and never silently loses it.

Written against what panoramisk's ``Manager`` got wrong (see /work/shared/notes/dependencies.md):

* a refused login raises `AmiAuthError`: Asterisk 22 answers a wrong secret by closing the
  socket without a word, so an EOF while Login is in flight means "refused";
* every keepalive Ping must be answered within ``action_timeout``, else the link is dead;
* `close` cancels everything, including a reconnect waiting out its back-off;
* bytes are decoded per complete message (by `AmiParser`), never per TCP read.

One `_Link` is one TCP connection; the client replaces it after a drop when run with `start`.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from hotline.ami.protocol import (
    AmiMessage,
    AmiParser,
    AmiProtocolError,
    Greeting,
    encode_message,
)
from hotline.metrics import AMI_ACTIONS, AMI_LINK_UP, AMI_RECONNECTS, ERRORS

log = logging.getLogger(__name__)

EventCallback = Callable[[AmiMessage], object]
"""Called with each matching event; may return an awaitable, which is run as a task."""
ConnectedCallback = Callable[[], object]
"""Called after every successful (re)login; may return an awaitable, run as a task."""
HeaderValue = str | int | bool
Headers = Iterable[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]

_READ_SIZE: Final = 65536
# Refusals in a row before `start` gives up: one may be Asterisk closing sockets mid-restart,
# three in a row is a wrong secret that retrying will not fix.
_AUTH_ATTEMPTS: Final = 3
_LOGOFF_TIMEOUT: Final = 2.0
_MAX_BACKOFF_DOUBLINGS: Final = 30


class AmiError(Exception):
    """Base of everything this client raises."""


class AmiConnectionError(AmiError):
    """No AMI link could be set up: refused, unreachable, no greeting, or not AMI at all."""


class AmiAuthError(AmiConnectionError):
    """Asterisk refused the username or secret."""


class AmiTimeout(AmiError, TimeoutError):
    """No reply within the allowed time."""


class AmiLinkLost(AmiError):
    """The link went down before the reply came, or was down when the action was asked for.
    An action that was already sent may or may not have been carried out."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is its ``Message`` header."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.action = action
        self.response = response
        self.message = response.get("Message", "") or ""
        detail = "; ".join([self.message, *response.getall("Output")])
        super().__init__(f"AMI action {action} failed: {detail}")


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """A successful reply. For an event list, ``events`` holds the list's items and
    ``complete`` the closing ``...Complete`` event (with ``ListItems``)."""

    message: AmiMessage
    events: tuple[AmiMessage, ...] = ()
    complete: AmiMessage | None = None

    @property
    def status(self) -> str:
        """``Success``, or ``Goodbye`` for Logoff."""
        return self.message.name

    @property
    def action_id(self) -> str | None:
        return self.message.action_id

    @property
    def text(self) -> str | None:
        """The ``Message`` header."""
        return self.message.get("Message")

    @property
    def output(self) -> list[str]:
        """The ``Output`` lines of a ``Command`` reply."""
        return self.message.getall("Output")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.message.get(key, default)

    def getall(self, key: str) -> list[str]:
        return self.message.getall(key)

    def __getitem__(self, key: str) -> str:
        return self.message[key]

    def __contains__(self, key: object) -> bool:
        return key in self.message


@dataclass(eq=False, slots=True)
class _Pending:
    """An action waiting for its reply, and for an event list, the items gathered so far."""

    action: str
    future: asyncio.Future[AmiResponse]
    response: AmiMessage | None = None
    events: list[AmiMessage] = field(default_factory=list)


@dataclass(eq=False)
class _Link:
    """One TCP connection and the actions awaiting a reply on it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    greeting: asyncio.Future[Greeting]
    parser: AmiParser = field(default_factory=lambda: AmiParser(expect_greeting=True))
    pending: dict[str, _Pending] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_by_eof: bool = False
    logged_in: bool = False


class LinkSettings(Protocol):
    """Where and how to keep the link: `hotline.config.AmiSettings` is one (read-only)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def secret(self) -> str: ...

    @property
    def action_timeout(self) -> float: ...

    @property
    def ping_interval(self) -> float: ...

    @property
    def reconnect_min(self) -> float: ...

    @property
    def reconnect_max(self) -> float: ...


class AmiClient:
    """One AMI login to Asterisk: actions with correlated replies, events by name, and
    (with `start`) a link that is kept up by pings and reconnects with back-off."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 10.0,
        ping_interval: float = 10.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._link: _Link | None = None
        self._handlers: dict[str, list[EventCallback]] = {}
        self._connected_callbacks: list[ConnectedCallback] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._state_changed = asyncio.Event()
        self._fatal: AmiError | None = None
        self._closed = False
        # A per-client prefix keeps ActionIDs unique across reconnects and readable in logs.
        self._id_prefix = secrets.token_hex(3)
        self._ids = itertools.count(1)
        self._random = random.Random()

    @classmethod
    def from_settings(cls, settings: LinkSettings) -> AmiClient:
        """A client for the configured Asterisk (the `[ami]` section)."""
        return cls(
            settings.host,
            settings.port,
            settings.username,
            settings.secret,
            action_timeout=settings.action_timeout,
            ping_interval=settings.ping_interval,
            reconnect_min=settings.reconnect_min,
            reconnect_max=settings.reconnect_max,
        )

    def __repr__(self) -> str:
        state = "up" if self.connected else "down"
        return f"<AmiClient {self.username}@{self._where} {state}>"

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    # --- state ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a link is up and logged in."""
        link = self._link
        return link is not None and link.logged_in and not link.lost.is_set()

    async def wait_connected(self) -> None:
        """Return once logged in (bound it with ``asyncio.timeout``). Raises `AmiAuthError`
        if `start` gave up on a refused login, `AmiConnectionError` once closed."""
        while not self.connected:
            self._raise_if_unusable()
            await self._state_changed.wait()

    def _raise_if_unusable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise AmiConnectionError(f"AMI client for {self._where} is closed")

    def _notify(self) -> None:
        """Wake every `wait_connected`; each waits on the event current when it looked."""
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    # --- events --------------------------------------------------------------------------

    def on(self, event_name: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for each event of that name (case-insensitive), or for
        every event with ``"*"``. Sync callbacks run in arrival order; async ones as tasks."""
        self._handlers.setdefault(event_name.lower(), []).append(callback)

    def off(self, event_name: str, callback: EventCallback) -> None:
        """Undo one `on`; unknown callbacks are ignored."""
        callbacks = self._handlers.get(event_name.lower(), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def on_connected(self, callback: ConnectedCallback) -> None:
        """Call ``callback()`` after every login, to resynchronise state the link lost."""
        self._connected_callbacks.append(callback)

    def off_connected(self, callback: ConnectedCallback) -> None:
        if callback in self._connected_callbacks:
            self._connected_callbacks.remove(callback)

    def _dispatch(self, event: AmiMessage) -> None:
        callbacks = [*self._handlers.get(event.name.lower(), ()), *self._handlers.get("*", ())]
        for callback in callbacks:
            self._run_callback(callback, (event,), f"AMI {event.name} handler")

    def _run_callback(
        self, callback: Callable[..., object], args: tuple[Any, ...], what: str
    ) -> None:
        """A failing callback is the caller's bug, not the link's: log it and go on."""
        try:
            result = callback(*args)
        except Exception:
            self._callback_failed(what)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._callback_tasks.add(task)
            task.add_done_callback(lambda done: self._callback_done(done, what))

    def _callback_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._callback_failed(what, task.exception())

    def _callback_failed(self, what: str, exc: BaseException | None = None) -> None:
        ERRORS.labels(component="ami", kind="callback_error").inc()
        log.error("%s failed", what, exc_info=exc or True)

    # --- actions -------------------------------------------------------------------------

    async def action(
        self,
        name: str,
        headers: Headers | None = None,
        /,
        *,
        reply_timeout: float | None = None,
        **more_headers: HeaderValue,
    ) -> AmiResponse:
        """Send one action and wait for its reply (and its event list, if it opens one).

        Headers come as pairs (for repeated keys such as Originate's ``Variable``), a mapping,
        keyword arguments, or a mix; they are sent in that order after ``Action`` and
        ``ActionID``. An ``ActionID`` given here is used as is (to match events it will
        cause, such as ``OriginateResponse``); otherwise one is made up.

        Raises `AmiActionError`, `AmiTimeout`, `AmiLinkLost`, or `AmiProtocolError` for a
        header that cannot be sent safely.
        """
        link = self._link
        if link is None or not self.connected:
            AMI_ACTIONS.labels(result="link_lost").inc()
            raise AmiLinkLost(f"AMI link to {self._where} is down; action {name} not sent")
        pairs = [*_pairs(headers), *_pairs(more_headers)]
        return await self._request(link, name, pairs, reply_timeout or self.action_timeout)

    async def command(self, command: str, *, reply_timeout: float | None = None) -> list[str]:
        """Run a CLI command; its output, one string per line."""
        response = await self.action("Command", reply_timeout=reply_timeout, Command=command)
        return response.output

    def _new_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    async def _request(
        self, link: _Link, name: str, pairs: list[tuple[str, str]], reply_timeout: float
    ) -> AmiResponse:
        """Send on ``link`` and wait for the reply; counts the outcome."""
        action_id, data = self._encode(name, pairs)
        result: str | None = None  # stays None if the caller cancels: not the link's doing
        try:
            response = await self._exchange(link, name, action_id, data, reply_timeout)
            result = "success"
            return response
        except AmiActionError:
            result = "error"
            raise
        except AmiTimeout:
            result = "timeout"
            raise
        except AmiLinkLost:
            result = "link_lost"
            raise
        finally:
            if result is not None:
                AMI_ACTIONS.labels(result=result).inc()

    def _encode(self, name: str, pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
        """The ActionID and the bytes; raises `AmiProtocolError` before anything is sent."""
        given = [value for key, value in pairs if key.lower() == "actionid"]
        action_id = given[0] if given else self._new_action_id()
        pairs = [(key, value) for key, value in pairs if key.lower() != "actionid"]
        return action_id, encode_message([("Action", name), ("ActionID", action_id), *pairs])

    async def _exchange(
        self, link: _Link, name: str, action_id: str, data: bytes, reply_timeout: float
    ) -> AmiResponse:
        if link.lost.is_set():
            raise AmiLinkLost(f"AMI link to {self._where} is down; action {name} not sent")
        if action_id in link.pending:
            raise AmiProtocolError(f"ActionID {action_id!r} is already awaiting a reply")
        pending = _Pending(name, asyncio.get_running_loop().create_future())
        link.pending[action_id] = pending
        try:
            # No drain(): actions are small, and a peer that stops reading is caught by the
            # unanswered ping long before the transport buffer matters.
            link.writer.write(data)
            async with asyncio.timeout(reply_timeout):
                return await pending.future
        except TimeoutError:
            raise AmiTimeout(f"no reply to AMI action {name} within {reply_timeout} s") from None
        finally:
            link.pending.pop(action_id, None)

    # --- connecting ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and log in once. Raises `AmiConnectionError` (refused, unreachable, not
        AMI) or `AmiAuthError`. Without `start`, a dropped link stays down."""
        await self._connect()

    async def _connect(self) -> _Link:
        self._raise_if_closed()
        async with self._connect_lock:
            if self.connected and self._link is not None:
                return self._link
            AMI_RECONNECTS.inc()
            link = await self._open()
            try:
                await self._handshake(link)
                self._raise_if_closed()  # close() ran while we were logging in
            except BaseException:
                self._drop(link, "login did not complete")
                raise
            self._link = link
            link.logged_in = True
        AMI_LINK_UP.set(1)
        log.info("AMI link to %s up, logged in as %s", self._where, self.username)
        self._notify()
        if self.ping_interval > 0:
            link.tasks.append(asyncio.create_task(self._keepalive(link)))
        for callback in list(self._connected_callbacks):
            self._run_callback(callback, (), "AMI on_connected callback")
        return link

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise AmiConnectionError(f"AMI client for {self._where} is closed")

    async def _open(self) -> _Link:
        try:
            async with asyncio.timeout(self.action_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise AmiConnectionError(f"cannot connect to AMI at {self._where}: {reason}") from exc
        link = _Link(reader, writer, asyncio.get_running_loop().create_future())
        link.tasks.append(asyncio.create_task(self._read_loop(link)))
        return link

    async def _handshake(self, link: _Link) -> None:
        try:
            async with asyncio.timeout(self.action_timeout):
                await link.greeting
        except TimeoutError:
            raise AmiConnectionError(f"no AMI greeting from {self._where}") from None
        except AmiLinkLost as exc:
            raise AmiConnectionError(f"no AMI greeting from {self._where}: {exc}") from None
        finally:
            link.greeting.cancel()  # so a late failure is not reported as never retrieved
        await self._login(link)

    async def _login(self, link: _Link) -> None:
        refused = AmiAuthError(
            f"AMI login refused for user {self.username} at {self._where}: wrong username or secret"
        )
        credentials = [("Username", self.username), ("Secret", self._secret)]
        try:
            await self._request(link, "Login", credentials, self.action_timeout)
        except AmiActionError:
            raise refused from None  # older Asterisk versions answer before closing
        except AmiLinkLost as exc:
            if link.lost_by_eof:  # Asterisk 22: a wrong secret gets a close, no Response
                raise refused from None
            raise AmiConnectionError(f"AMI login at {self._where} failed: {exc}") from None
        except AmiTimeout:
            raise AmiConnectionError(f"no answer to AMI Login from {self._where}") from None

    # --- the running link ----------------------------------------------------------------

    async def _read_loop(self, link: _Link) -> None:
        reason, eof = "closed by Asterisk", True
        try:
            while chunk := await link.reader.read(_READ_SIZE):
                for item in link.parser.feed(chunk):
                    self._handle(link, item)
        except AmiProtocolError as exc:
            reason, eof = f"protocol error: {exc}", False
            ERRORS.labels(component="ami", kind="protocol_error").inc()
        except OSError as exc:
            reason, eof = f"connection error: {exc}", False
        except Exception:  # a bug here must not leave a link that looks up but reads nothing
            log.exception("AMI reader for %s failed", self._where)
            reason, eof = "internal error in the AMI reader", False
        self._drop(link, reason, eof=eof)

    def _handle(self, link: _Link, item: AmiMessage | Greeting) -> None:
        if isinstance(item, Greeting):
            if not link.greeting.done():
                link.greeting.set_result(item)
        elif item.kind == "response":
            self._on_response(link, item)
        elif item.kind == "event":
            self._on_event(link, item)
        else:
            raise AmiProtocolError(f"neither a response nor an event: {item.name[:40]!r}")

    def _on_response(self, link: _Link, response: AmiMessage) -> None:
        pending = link.pending.get(response.action_id or "")
        if pending is None or pending.response is not None:
            log.debug("AMI reply nobody waits for (late or foreign): %s", response.as_dict())
            return
        if response.name.lower() == "error":
            _settle(pending, AmiActionError(pending.action, response))
        elif (response.get("EventList") or "").lower() == "start":
            pending.response = response  # the items follow as events with our ActionID
        else:
            _settle(pending, AmiResponse(response))

    def _on_event(self, link: _Link, event: AmiMessage) -> None:
        pending = link.pending.get(event.action_id or "")
        if pending is None or pending.response is None:
            # Includes events caused by an action but not part of its reply, such as the
            # OriginateResponse that carries the Originate's ActionID.
            self._dispatch(event)
        elif (event.get("EventList") or "").lower() == "complete":
            _check_list_size(pending, event)
            _settle(pending, AmiResponse(pending.response, tuple(pending.events), event))
        else:
            pending.events.append(event)

    async def _keepalive(self, link: _Link) -> None:
        """Ping and insist on the answer: a silent peer is as dead as a closed one."""
        while not link.lost.is_set():
            await asyncio.sleep(self.ping_interval)
            try:
                await self._request(link, "Ping", [], self.action_timeout)
            except AmiTimeout:
                ERRORS.labels(component="ami", kind="ping_timeout").inc()
                self._drop(link, f"Ping not answered within {self.action_timeout} s")
            except AmiActionError as exc:
                log.warning("AMI Ping answered with an error: %s", exc)
            except AmiLinkLost:
                return

    def _drop(self, link: _Link, reason: str, *, eof: bool = False) -> None:
        """Take a link down for good: fail its waiters, close its socket, stop its tasks."""
        if link.lost.is_set():
            return
        link.lost.set()
        link.lost_by_eof = eof
        was_up = link.logged_in
        link.writer.close()
        for pending in link.pending.values():
            _settle(
                pending,
                AmiLinkLost(f"AMI link lost before the reply to {pending.action}: {reason}"),
            )
        if not link.greeting.done():
            link.greeting.set_exception(AmiLinkLost(reason))
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        if self._link is link:
            self._link = None
            AMI_LINK_UP.set(0)
            self._notify()
        if was_up and not self._closed:
            log.warning("AMI link to %s lost: %s", self._where, reason)
        else:
            log.debug("AMI link to %s closed: %s", self._where, reason)

    # --- keeping the link up -------------------------------------------------------------

    def start(self) -> None:
        """Connect, keep alive and reconnect in a background task until `close`. Watch it
        with `connected`, `wait_connected` and `on_connected`."""
        self._raise_if_closed()
        if self._supervisor is not None:
            raise RuntimeError("AmiClient.start() called twice")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ami {self._where}")

    async def _supervise(self) -> None:
        failures = 0
        refusals = 0
        while True:
            try:
                link = await self._connect()
            except AmiAuthError as exc:
                refusals += 1
                if refusals >= _AUTH_ATTEMPTS:
                    self._give_up(exc)
                    return
                log.error("%s (attempt %d of %d)", exc, refusals, _AUTH_ATTEMPTS)
            except AmiConnectionError as exc:
                log.warning("%s; retrying", exc)
            except Exception:
                log.exception("unexpected failure connecting AMI to %s; retrying", self._where)
            else:
                refusals = 0
                failures = await self._hold(link, failures)
            await asyncio.sleep(self._backoff(failures))
            failures += 1

    async def _hold(self, link: _Link, failures: int) -> int:
        """Wait for the link to drop; the failure count to carry on with."""
        loop = asyncio.get_running_loop()
        up_at = loop.time()
        await link.lost.wait()
        # Only a link that stayed up a while resets the back-off: one that logs in and drops
        # at once (garbage, instant reset) must not turn into a tight reconnect loop.
        return 0 if loop.time() - up_at >= self.reconnect_max else failures

    def _backoff(self, failures: int) -> float:
        """Exponential, capped, with jitter so many clients do not reconnect in step."""
        doublings = min(failures, _MAX_BACKOFF_DOUBLINGS)
        ceiling = min(self.reconnect_max, self.reconnect_min * 2**doublings)
        return self._random.uniform(max(self.reconnect_min, ceiling / 2), ceiling)

    def _give_up(self, exc: AmiAuthError) -> None:
        log.error("%s; giving up after %d refusals", exc, _AUTH_ATTEMPTS)
        ERRORS.labels(component="ami", kind="auth_refused").inc()
        self._fatal = exc
        self._notify()

    # --- closing -------------------------------------------------------------------------

    async def close(self) -> None:
        """Log off if the link is up, then stop everything: the link, its pings, a pending
        reconnect and running callbacks. Nothing reconnects afterwards."""
        if self._closed:
            return
        self._closed = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        link = self._link
        if link is not None:
            if self.connected:
                await self._logoff(link)
            self._drop(link, "closed by the controller")
            await _finish(link)
        await self._cancel_callbacks()
        AMI_LINK_UP.set(0)
        self._notify()

    async def _logoff(self, link: _Link) -> None:
        try:
            await self._request(link, "Logoff", [], min(self.action_timeout, _LOGOFF_TIMEOUT))
        except AmiError as exc:
            log.debug("AMI Logoff not acknowledged: %s", exc)

    async def _cancel_callbacks(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._callback_tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _settle(pending: _Pending, outcome: AmiResponse | AmiError) -> None:
    if pending.future.done():
        return
    if isinstance(outcome, AmiResponse):
        pending.future.set_result(outcome)
    else:
        pending.future.set_exception(outcome)


def _check_list_size(pending: _Pending, complete: AmiMessage) -> None:
    announced = complete.get("ListItems")
    if announced is not None and announced.isdigit() and int(announced) != len(pending.events):
        log.warning(
            "AMI %s list announced %s items but carried %d",
            pending.action,
            announced,
            len(pending.events),
        )


def _pairs(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(key, _header_text(value)) for key, value in items]


def _header_text(value: HeaderValue) -> str:
    if isinstance(value, bool):  # Asterisk's ast_true() wants "true"/"false", not "True"
        return "true" if value else "false"
    return str(value)


async def _finish(link: _Link) -> None:
    """Wait for a dropped link's tasks and socket to wind down."""
    current = asyncio.current_task()
    await asyncio.gather(*(t for t in link.tasks if t is not current), return_exceptions=True)
    try:
        await link.writer.wait_closed()
    except OSError:
        pass  # a reset peer; the socket is closed either way
