"""The manager interface's server: the listening socket, one session per client, reading
actions, answering them, login and the session actions, and publishing every event to the
clients allowed to read it. The other actions are in `ami_queue_actions` and
`ami_call_actions`; `pbxsim.ami_server.AmiServer` joins them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Mapping
from typing import Final, Self

from hotline.ami.protocol import (
    AmiMessage,
    AmiProtocolError,
    encode_greeting,
    encode_message,
)
from hotline.clock import EpochClock
from pbxsim.ami_accounts import ACTION_CLASSES, ManagerUser, privilege_of
from pbxsim.ami_channels import ChannelTracker
from pbxsim.ami_originate import (
    Originator,
)
from pbxsim.ami_session import (
    AmiSession,
    Handler,
    action_id_headers,
    event_mask,
    is_safe_action,
    response_headers,
)
from pbxsim.queues import Queues
from pbxsim.stamps import format_event_tv, format_timestamp

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

ASTERISK_VERSION: Final = (
    "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 23:26:57 UTC"
)


# Asterisk reads at most this many headers of one action and ignores the rest.
MAX_ACTION_HEADERS: Final = 128


class AmiServerCore:
    """The server and session half of the simulated manager interface."""

    def __init__(
        self,
        *,
        clock: EpochClock,
        users: Mapping[str, ManagerUser],
        queues: Queues | None = None,
        originator: Originator | None = None,
        host: str = "127.0.0.1",
        port: int = 5038,
        version: str = ASTERISK_VERSION,
        max_message_bytes: int = 64 * 1024,
        max_backlog_bytes: int = 4 * 1024 * 1024,
        refusal_delay: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.clock = clock
        # Asterisk sleeps a second before refusing a login, which slows a guessing attack.
        self.refusal_delay = refusal_delay
        # With a context the server speaks TLS only, as Asterisk's manager TLS port does.
        self.ssl_context = ssl_context
        self.users = dict(users)
        self.queues = queues
        self.originator = originator
        self.host = host
        self.version = version
        self.channels = ChannelTracker()
        self._port = port
        self._max_message_bytes = max_message_bytes
        self._max_backlog = max_backlog_bytes
        self._server: asyncio.Server | None = None
        self._sessions: set[AmiSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # async Originates
        self._connections: set[asyncio.Task[object]] = set()
        # Events caused by an action wait here until its response is written: Asterisk answers
        # first and publishes the events after (QueueAdd, QueuePause in ami-actions.txt).
        self._deferred: list[tuple[str, bytes]] | None = None
        self._handlers: dict[str, Handler] = self._action_handlers()
        if queues is not None:
            queues.sink = self  # the queues report their events through this server

    def _action_handlers(self) -> dict[str, Handler]:
        """Action name (lower case) -> handler; each class of actions adds its own."""
        return {
            "login": self._login,
            "challenge": self._challenge,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
        }

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self._port,
            family=socket.AF_INET,
            reuse_address=True,
            ssl=self.ssl_context,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.close()
            session.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Closed transports end the connection handlers; wait for them so that none is left
        # for the event loop to cancel at shutdown.
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        """Send an event to every logged-in client that may read it (`EventSink`)."""
        self.channels.observe(event, headers, self.clock.now_us())
        privilege = privilege_of(event)
        try:
            data = encode_message([("Event", event), ("Privilege", privilege), *headers])
        except AmiProtocolError:
            # Never put a CR/LF-carrying value on the wire; a simulator bug, not a reason to
            # stop the call that produced it.
            log.error("AMI event %s dropped: a header cannot be sent safely", event)
            return
        if self._deferred is not None:
            self._deferred.append((privilege, data))
        else:
            self._broadcast(privilege, data)

    def _broadcast(self, privilege: str, data: bytes) -> None:
        for session in list(self._sessions):
            if session.wants(privilege):
                session.send(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AmiSession(
            writer, self.clock.now_us(), self._max_backlog, self._max_message_bytes
        )
        self._sessions.add(session)
        handler = asyncio.current_task()
        if handler is not None:
            self._connections.add(handler)
        try:
            session.send(encode_greeting())
            await self._read_actions(reader, session)
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(handler)
            self._sessions.discard(session)
            session.close()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read_actions(self, reader: asyncio.StreamReader, session: AmiSession) -> None:
        while not session.closing:
            data = await reader.read(65536)
            if not data:
                return
            try:
                messages = session.parser.feed(data)
            except AmiProtocolError as exc:
                log.warning("AMI client %s dropped: %s", session.remote, exc)
                return
            for message in messages:
                if not isinstance(message, AmiMessage) or not is_safe_action(message):
                    log.warning("AMI client %s dropped: a header carries CR/LF", session.remote)
                    return
                await self._dispatch(session, AmiMessage(message.headers[:MAX_ACTION_HEADERS]))
                if session.closing:
                    return

    async def _dispatch(self, session: AmiSession, message: AmiMessage) -> None:
        action = message.get("Action") or ""
        name = action.lower()
        if not action:
            self._respond(session, message, "Error", ("Message", "Missing action in request"))
        elif session.user is None and name not in ("login", "logoff", "challenge"):
            self._respond(session, message, "Error", ("Message", "Permission denied"))
        elif name not in self._handlers:
            self._unknown_action(session, message, action)
        elif not self._may_write(session, name):
            self._respond(session, message, "Error", ("Message", "Permission denied"))
        elif name in ("originate", "login"):
            # Originate may wait for the call, a refused login waits out Asterisk's second:
            # never deferred, or every other client's events would wait too.
            await self._handlers[name](session, message)
        else:
            self._deferred = []
            try:
                await self._handlers[name](session, message)
            finally:
                events, self._deferred = self._deferred, None
                for privilege, data in events:
                    self._broadcast(privilege, data)

    def _may_write(self, session: AmiSession, action: str) -> bool:
        needed = ACTION_CLASSES.get(action)
        return needed is None or session.user is None or session.user.can_write(needed)

    def _respond(
        self, session: AmiSession, message: AmiMessage, status: str, *headers: tuple[str, str]
    ) -> None:
        session.send(encode_message(response_headers(message, status, headers)))

    def _send_list(
        self,
        session: AmiSession,
        message: AmiMessage,
        intro: str,
        complete: str,
        items: list[tuple[str, Headers]],
        *,
        with_items: bool = False,
    ) -> None:
        """An event list: the response with ``EventList: start``, the items, then the
        ``...Complete`` event (`with_items`: with manager.c's extra ``Items`` count, as
        ``StatusComplete``), all in one write as Asterisk does."""
        action_id = action_id_headers(message)
        chunks = [
            encode_message(
                response_headers(message, "Success", [("EventList", "start"), ("Message", intro)])
            )
        ]
        chunks += [encode_message([("Event", event), *body]) for event, body in items]
        closing = [("Event", complete), *action_id, ("EventList", "Complete")]
        count = [("ListItems", str(len(items)))] + (
            [("Items", str(len(items)))] if with_items else []
        )
        chunks.append(encode_message([*closing, *count]))
        session.send(b"".join(chunks))

    def _security_event(self, event: str, *extra: tuple[str, str]) -> None:
        self.emit(event, [("EventTV", format_event_tv(self.clock.now_us())), *extra])

    async def _login(self, session: AmiSession, message: AmiMessage) -> None:
        if session.user is not None:
            self._respond(session, message, "Success", ("Message", "Already authenticated"))
            return
        user = self.users.get(message.get("Username") or "")
        if (message.get("AuthType") or "").lower() == "md5":
            if user is None or not session.key_matches(message.get("Key") or "", user.secret):
                await self._refuse_key(session, message)
                return
        elif user is None or message.get("Secret") != user.secret:
            # Asterisk 22.10.1 answers a wrong plain secret as a wrong key: after the pause,
            # "Authentication failed", then closes (ami-login-bad-plain-secret.txt)
            await self._refuse_key(session, message)
            return
        session.user = user
        session.started_us = self.clock.now_us()  # SessionTV is the time of the login
        session.event_classes = event_mask(message.get("Events"))
        self._respond(session, message, "Success", ("Message", "Authentication accepted"))
        if session.wants("system,all"):
            uptime, reload = str(self.clock.uptime()), str(self.clock.since_reload())
            booted = [("Uptime", uptime), ("LastReload", reload), ("Status", "Fully Booted")]
            session.send(
                encode_message([("Event", "FullyBooted"), ("Privilege", "system,all"), *booted])
            )
        self._security_event(
            "SuccessfulAuth",
            ("Severity", "Informational"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("AccountID", user.username),
            ("SessionID", session.session_id),
            ("LocalAddress", session.local),
            ("RemoteAddress", session.remote),
            ("UsingPassword", "0"),
            ("SessionTV", format_event_tv(session.started_us)),
        )

    async def _challenge(self, session: AmiSession, message: AmiMessage) -> None:
        """manager.c action_challenge: one challenge per session, kept until it closes."""
        if (message.get("AuthType") or "").lower() != "md5":
            self._respond(session, message, "Error", ("Message", "Must specify AuthType"))
            return
        self._respond(session, message, "Success", ("Challenge", session.challenge()))

    async def _refuse_key(self, session: AmiSession, message: AmiMessage) -> None:
        """manager.c action_login on a failed login (wrong key or secret, unknown user):
        sleep(1), then ``Authentication failed`` and the session ends."""
        await asyncio.sleep(self.refusal_delay)  # nothing else is read from it meanwhile
        self._respond(session, message, "Error", ("Message", "Authentication failed"))
        session.close()

    def _unknown_action(self, session: AmiSession, message: AmiMessage, action: str) -> None:
        text = (
            f"Invalid/unknown command: {action}. "
            "Use Action: ListCommands to show available commands."
        )
        self._respond(session, message, "Error", ("Message", text))
        self._security_event(
            "RequestBadFormat",
            ("Severity", "Error"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("SessionID", session.session_id),
            ("LocalAddress", session.local),
            ("RemoteAddress", session.remote),
            ("RequestType", f"Action: {action}"),
            ("SessionTV", format_event_tv(session.started_us)),
            ("AccountID", session.user.username if session.user else ""),
        )

    async def _logoff(self, session: AmiSession, message: AmiMessage) -> None:
        self._respond(session, message, "Goodbye", ("Message", "Thanks for all the fish."))
        session.close()

    async def _ping(self, session: AmiSession, message: AmiMessage) -> None:
        stamp = format_timestamp(self.clock.now_us())
        self._respond(session, message, "Success", ("Ping", "Pong"), ("Timestamp", stamp))

    async def _events(self, session: AmiSession, message: AmiMessage) -> None:
        session.event_classes = event_mask(message.get("EventMask"))
        state = "On" if session.event_classes else "Off"
        self._respond(session, message, "Success", ("Events", state))
