"""An asyncio AMI client that keeps one logged-in link to Asterisk and never silently loses it.

Written against what panoramisk's ``Manager`` got wrong (see /work/shared/notes/dependencies.md):

* a refused login raises `AmiAuthError`: Asterisk 22 answers a wrong MD5 key with
  ``Authentication failed`` and a wrong plain secret by closing the socket without a word, so
  an EOF while Login is in flight means "refused" too (`login`: the challenge login, which
  never sends the secret, is the default);
* every keepalive Ping must be answered within ``action_timeout``, else the link is dead;
* `close` cancels everything, including a reconnect waiting out its back-off;
* bytes are decoded per complete message (by `AmiParser`), never per TCP read.

`AmiClient` is the facade: connecting and logging in, actions, and closing. The jobs behind it
live one per module: `link` (one TCP or TLS connection and its reader), `login` (challenge or
plain), `actions` (replies matched to actions), `events` (callbacks by event name), `upkeep`
(pings and reconnection) and `errors`. One `AmiLink` is one connection; the client replaces it
after a drop when run with `start`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import ssl
from pathlib import Path
from typing import Final, Protocol

from hotline.ami.actions import AmiResponse, Headers, HeaderValue, encode_action, header_pairs
from hotline.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionError,
    AmiError,
    AmiLinkLost,
    AmiTimeout,
)
from hotline.ami.events import ConnectedCallback, EventCallback, EventDispatcher
from hotline.ami.link import AmiLink
from hotline.ami.login import LoginMethod, log_in
from hotline.ami.upkeep import Reconnector, keep_alive
from hotline.metrics import AMI_ACTIONS, AMI_LINK_UP, AMI_RECONNECTS
from hotline.tls import client_context

log = logging.getLogger(__name__)

_LOGOFF_TIMEOUT: Final = 2.0


class LinkSettings(Protocol):
    """Where and how to keep the link: `hotline.settings.AmiSettings` is one (read-only)."""

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

    @property
    def login(self) -> LoginMethod: ...

    @property
    def tls(self) -> bool: ...

    @property
    def tls_ca_file(self) -> str: ...

    @property
    def tls_check_hostname(self) -> bool: ...

    @property
    def tls_server_name(self) -> str: ...


def _tls_of(settings: LinkSettings) -> ssl.SSLContext | None:
    """The link's TLS context when the settings ask for TLS."""
    if not settings.tls:
        return None
    ca_file = Path(settings.tls_ca_file) if settings.tls_ca_file else None
    return client_context(ca_file, check_hostname=settings.tls_check_hostname)


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
        login: LoginMethod = "challenge",
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        """`login` "challenge" never sends the secret (`hotline.ami.login`); with
        `ssl_context` the link is TLS (Asterisk's manager TLS port), the certificate checked
        against `server_hostname` (default `host`)."""
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
        self.login_method = login
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._link: AmiLink | None = None
        self._events = EventDispatcher()
        self._supervisor: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._state_changed = asyncio.Event()
        self._fatal: AmiError | None = None
        self._closed = False
        # A per-client prefix keeps ActionIDs unique across reconnects and readable in logs.
        self._id_prefix = secrets.token_hex(3)
        self._ids = itertools.count(1)

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
            login=settings.login,
            ssl_context=_tls_of(settings),
            server_hostname=settings.tls_server_name or None,
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
        self._events.on(event_name, callback)

    def off(self, event_name: str, callback: EventCallback) -> None:
        """Undo one `on`; unknown callbacks are ignored."""
        self._events.off(event_name, callback)

    def on_connected(self, callback: ConnectedCallback) -> None:
        """Call ``callback()`` after every login, to resynchronise state the link lost."""
        self._events.on_connected(callback)

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
        pairs = [*header_pairs(headers), *header_pairs(more_headers)]
        return await self._request(link, name, pairs, reply_timeout or self.action_timeout)

    async def command(self, command: str, *, reply_timeout: float | None = None) -> list[str]:
        """Run a CLI command; its output, one string per line."""
        response = await self.action("Command", reply_timeout=reply_timeout, Command=command)
        return response.output

    def _new_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    async def _request(
        self, link: AmiLink, name: str, pairs: list[tuple[str, str]], reply_timeout: float
    ) -> AmiResponse:
        """Send on ``link`` and wait for the reply; counts the outcome."""
        action_id, data = encode_action(name, pairs, self._new_action_id)
        result: str | None = None  # stays None if the caller cancels: not the link's doing
        try:
            response = await link.exchange(name, action_id, data, reply_timeout)
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

    async def _ping(self, link: AmiLink) -> AmiResponse:
        return await self._request(link, "Ping", [], self.action_timeout)

    # --- connecting ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and log in once. Raises `AmiConnectionError` (refused, unreachable, not
        AMI) or `AmiAuthError`. Without `start`, a dropped link stays down."""
        await self._connect()

    async def _connect(self) -> AmiLink:
        self._raise_if_closed()
        async with self._connect_lock:
            if self.connected and self._link is not None:
                return self._link
            AMI_RECONNECTS.inc()
            link = await AmiLink.open(
                self.host,
                self.port,
                self.action_timeout,
                self._events.dispatch,
                self._lost,
                ssl_context=self._ssl_context,
                server_hostname=self._server_hostname,
            )
            try:
                await self._handshake(link)
                self._raise_if_closed()  # close() ran while we were logging in
            except BaseException:
                link.drop("login did not complete")
                raise
            self._link = link
            link.logged_in = True
        AMI_LINK_UP.set(1)
        log.info("AMI link to %s up, logged in as %s", self._where, self.username)
        self._notify()
        if self.ping_interval > 0:
            pinging = keep_alive(link, self._ping, self.ping_interval, self.action_timeout)
            link.tasks.append(asyncio.create_task(pinging))
        self._events.connected()
        return link

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise AmiConnectionError(f"AMI client for {self._where} is closed")

    async def _handshake(self, link: AmiLink) -> None:
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

    async def _login(self, link: AmiLink) -> None:
        await log_in(
            link,
            self._request,
            username=self.username,
            secret=self._secret,
            method=self.login_method,
            reply_timeout=self.action_timeout,
        )

    def _lost(self, link: AmiLink, reason: str, was_up: bool) -> None:
        """A link dropped (see `AmiLink.drop`): forget it if it was ours, and say so."""
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
        reconnector = Reconnector(
            self._connect,
            self._give_up,
            where=self._where,
            reconnect_min=self.reconnect_min,
            reconnect_max=self.reconnect_max,
        )
        self._supervisor = asyncio.create_task(reconnector.run(), name=f"ami {self._where}")

    def _give_up(self, exc: AmiAuthError) -> None:
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
            link.drop("closed by the controller")
            await link.finish()
        await self._events.cancel_tasks()
        AMI_LINK_UP.set(0)
        self._notify()

    async def _logoff(self, link: AmiLink) -> None:
        try:
            await self._request(link, "Logoff", [], min(self.action_timeout, _LOGOFF_TIMEOUT))
        except AmiError as exc:
            log.debug("AMI Logoff not acknowledged: %s", exc)

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
