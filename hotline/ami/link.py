"""One AMI TCP connection: the reader that parses what Asterisk sends, one action's send and
wait, and the drop that takes the connection down for good.

Bytes are decoded per complete message (by `AmiParser`), never per TCP read. A link is never
reused: after a drop, the client opens a new one. Replies go to the link's `PendingActions`;
every other event goes to ``on_event``; the drop is reported once to ``on_lost``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from hotline.ami.actions import AmiResponse, PendingActions
from hotline.ami.errors import AmiConnectionError, AmiLinkLost, AmiTimeout
from hotline.ami.protocol import AmiMessage, AmiParser, AmiProtocolError, Greeting
from hotline.metrics import ERRORS

# One logger for the whole client: operators filter its lines by this name.
log = logging.getLogger("hotline.ami.client")

_READ_SIZE: Final = 65536

LostCallback = Callable[["AmiLink", str, bool], None]
"""Called once when a link drops, with the reason and whether it was logged in."""


@dataclass(eq=False)
class AmiLink:
    """One TCP connection and the actions awaiting a reply on it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    greeting: asyncio.Future[Greeting]
    where: str
    on_event: Callable[[AmiMessage], None]
    on_lost: LostCallback
    parser: AmiParser = field(default_factory=lambda: AmiParser(expect_greeting=True))
    pending: PendingActions = field(default_factory=PendingActions)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_by_eof: bool = False
    logged_in: bool = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        connect_timeout: float,
        on_event: Callable[[AmiMessage], None],
        on_lost: LostCallback,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> AmiLink:
        """Connect (over TLS with `ssl_context`, checking the certificate against
        `server_hostname`, default `host`) and start reading; raises `AmiConnectionError` if
        nobody answers or the certificate does not check out."""
        where = f"{host}:{port}"
        tls_name = (server_hostname or host) if ssl_context is not None else None
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ssl_context, server_hostname=tls_name
                )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            reason = str(exc) or type(exc).__name__
            raise AmiConnectionError(f"cannot connect to AMI at {where}: {reason}") from exc
        greeting = asyncio.get_running_loop().create_future()
        link = cls(reader, writer, greeting, where, on_event, on_lost)
        link.tasks.append(asyncio.create_task(link._read_loop()))
        return link

    async def exchange(
        self, name: str, action_id: str, data: bytes, reply_timeout: float
    ) -> AmiResponse:
        """Send one encoded action and wait for its reply."""
        if self.lost.is_set():
            raise AmiLinkLost(f"AMI link to {self.where} is down; action {name} not sent")
        pending = self.pending.open(action_id, name)
        try:
            # No drain(): actions are small, and a peer that stops reading is caught by the
            # unanswered ping long before the transport buffer matters.
            self.writer.write(data)
            async with asyncio.timeout(reply_timeout):
                return await pending.future
        except TimeoutError:
            raise AmiTimeout(f"no reply to AMI action {name} within {reply_timeout} s") from None
        finally:
            self.pending.forget(action_id)

    def drop(self, reason: str, *, eof: bool = False) -> None:
        """Take the link down for good: fail its waiters, close its socket, stop its tasks."""
        if self.lost.is_set():
            return
        self.lost.set()
        self.lost_by_eof = eof
        was_up = self.logged_in
        self.writer.close()
        self.pending.fail_all(reason)
        if not self.greeting.done():
            self.greeting.set_exception(AmiLinkLost(reason))
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.on_lost(self, reason, was_up)

    async def finish(self) -> None:
        """Wait for a dropped link's tasks and socket to wind down."""
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in self.tasks if t is not current), return_exceptions=True)
        try:
            await self.writer.wait_closed()
        except OSError:
            pass  # a reset peer; the socket is closed either way

    async def _read_loop(self) -> None:
        reason, eof = "closed by Asterisk", True
        try:
            while chunk := await self.reader.read(_READ_SIZE):
                for item in self.parser.feed(chunk):
                    self._handle(item)
        except AmiProtocolError as exc:
            reason, eof = f"protocol error: {exc}", False
            ERRORS.labels(component="ami", kind="protocol_error").inc()
        except OSError as exc:
            reason, eof = f"connection error: {exc}", False
        except Exception:  # a bug here must not leave a link that looks up but reads nothing
            log.exception("AMI reader for %s failed", self.where)
            reason, eof = "internal error in the AMI reader", False
        self.drop(reason, eof=eof)

    def _handle(self, item: AmiMessage | Greeting) -> None:
        if isinstance(item, Greeting):
            if not self.greeting.done():
                self.greeting.set_result(item)
        elif item.kind == "response":
            self.pending.take_response(item)
        elif item.kind == "event":
            if not self.pending.take_event(item):
                self.on_event(item)
        else:
            raise AmiProtocolError(f"neither a response nor an event: {item.name[:40]!r}")
