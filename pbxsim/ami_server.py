"""The simulated PBX's Asterisk Manager Interface: an asyncio TCP server that answers like
Asterisk 22 with the transcripts' manager.conf (tests/data/asterisk/ami-*.txt, conf/manager.conf).

* Greeting ``Asterisk Call Manager/11.0.0`` with no empty line after it.
* Login: the right secret gives ``Authentication accepted``, then ``FullyBooted`` to that client
  and a ``SuccessfulAuth`` security event; a wrong secret closes the socket with no answer at
  all; any other action before login is refused with ``Permission denied``.
* Ping, Command (Asterisk 22 form: ``Message: Command output follows`` and one ``Output:`` per
  line), QueueSummary, QueueStatus, CoreShowChannels (event lists), QueueAdd, QueuePause,
  QueueRemove, Originate (the call itself is run by an `Originator`, the AGI half), Events,
  Logoff, Setvar and Redirect on the channels the simulator's events announced (by name or
  uniqueid, as Asterisk 22 looks channels up; Redirect takes the channel out of its bridge
  with a ``BridgeLeave`` and moves it, but the simulator runs no dialplan at the target),
  Hangup of the Originator's calls, DeviceStateList (the softphones' cached states);
  anything else gets Asterisk's ``Invalid/unknown command`` error and a ``RequestBadFormat``
  security event.
* `AmiServer.emit` is the simulator's `EventSink`: every event goes, with its ``Event`` and
  ``Privilege`` headers, to every logged-in client allowed to read its class.

A client that sends bytes that are not AMI, a message larger than ``max_message_bytes``, a header
carrying a CR or LF (an attempt to smuggle a line into what the server echoes), or that stops
reading while events pile up, is disconnected; the other clients do not notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

from hotline.ami.protocol import (
    AmiMessage,
    AmiParser,
    AmiProtocolError,
    encode_greeting,
    encode_message,
)
from hotline.clock import EpochClock
from pbxsim.queue_state import Queue
from pbxsim.queues import Queues
from pbxsim.stamps import format_event_tv, format_timestamp

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

ASTERISK_VERSION: Final = (
    "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-24 23:26:57 UTC"
)
# Asterisk reads at most this many headers of one action and ignores the rest.
MAX_ACTION_HEADERS: Final = 128


def _classes(names: Iterable[str], privilege: str) -> dict[str, str]:
    return dict.fromkeys(names, privilege)


# The ``Privilege`` of each event, as the transcripts (and Asterisk's sources) print it.
EVENT_PRIVILEGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        **_classes(
            (
                "Newchannel Newstate Hangup HangupRequest SoftHangupRequest NewCallerid "
                "NewConnectedLine NewAccountCode Rename LocalBridge LocalOptimizationBegin "
                "LocalOptimizationEnd OriginateResponse DialBegin DialState DialEnd "
                "DeviceStateChange ExtensionStatus PresenceStateChange BridgeCreate BridgeEnter "
                "BridgeLeave BridgeDestroy BridgeMerge MixMonitorStart MixMonitorStop "
                "MixMonitorMute MusicOnHoldStart MusicOnHoldStop Hold Unhold BlindTransfer "
                "AttendedTransfer Pickup ChanSpyStart ChanSpyStop"
            ).split(),
            "call,all",
        ),
        **_classes(("Newexten", "VarSet"), "dialplan,all"),
        **_classes(
            ("AGIExecStart", "AGIExecEnd", "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd"),
            "agi,all",
        ),
        **_classes(
            (
                "QueueCallerJoin QueueCallerLeave QueueCallerAbandon QueueMemberAdded "
                "QueueMemberRemoved QueueMemberPause QueueMemberStatus QueueMemberPenalty "
                "QueueMemberRinginuse AgentCalled AgentConnect AgentComplete AgentDump "
                "AgentRingNoAnswer AgentLogin AgentLogoff"
            ).split(),
            "agent,all",
        ),
        **_classes(("FullyBooted", "Reload", "Shutdown"), "system,all"),
        **_classes(
            (
                "SuccessfulAuth RequestBadFormat RequestNotAllowed RequestNotSupported "
                "InvalidAccountID InvalidPassword FailedACL ChallengeSent ChallengeResponseFailed"
            ).split(),
            "security,all",
        ),
        **_classes(("DTMFBegin", "DTMFEnd"), "dtmf,all"),
        "Cdr": "cdr,all",
        "CEL": "cel,all",
        "UserEvent": "user,all",
    }
)
_DEFAULT_PRIVILEGE: Final = "call,all"

# The write class an action needs (manager.conf ``write``); actions not listed need none.
_ACTION_CLASSES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "command": "command",
        "originate": "originate",
        "queueadd": "agent",
        "queueremove": "agent",
        "queuepause": "agent",
        "setvar": "call",
        "redirect": "call",
        "hangup": "call",  # manager.c: system or call
        "devicestatelist": "call",  # res_manager_devicestate.c: call or reporting
    }
)


def privilege_of(event: str) -> str:
    return EVENT_PRIVILEGES.get(event, _DEFAULT_PRIVILEGE)


# --- manager.conf ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagerUser:
    """A manager.conf account. ``read``/``write`` are permission classes (``all`` for every)."""

    username: str
    secret: str
    read: frozenset[str] = frozenset({"all"})
    write: frozenset[str] = frozenset({"all"})

    def can_read(self, privilege: str) -> bool:
        return "all" in self.read or any(c in self.read for c in privilege.split(",")[:-1])

    def can_write(self, action_class: str) -> bool:
        return "all" in self.write or action_class in self.write


def _permissions(value: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def parse_manager_conf(text: str) -> dict[str, ManagerUser]:
    """The accounts of a manager.conf (``[general]`` is not an account)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            name = line[1 : line.index("]")].strip()
            current = None if name == "general" else sections.setdefault(name, {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()
    return {
        name: ManagerUser(
            name,
            keys.get("secret", ""),
            _permissions(keys.get("read", "all")),
            _permissions(keys.get("write", "all")),
        )
        for name, keys in sections.items()
    }


def load_manager_conf(path: str | Path) -> dict[str, ManagerUser]:
    return parse_manager_conf(Path(path).read_text(encoding="utf-8"))


# --- Originate seam ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginateRequest:
    """An Originate action, parsed: ``channel`` is the dial string (``Local/8800...@from-pstn``);
    the call goes to ``context``/``exten``/``priority`` or runs ``application(data)``."""

    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    caller_id_num: str = ""
    caller_id_name: str = ""
    timeout_ms: int = 30000
    variables: tuple[tuple[str, str], ...] = ()
    account: str = ""
    action_id: str = ""


@dataclass(frozen=True)
class OriginateResult:
    """How the outgoing call went: ``reason`` is Asterisk's (4 answered, 0 failed, 1 hung up,
    3 ring timeout, 5 busy, 8 congestion); ``channel``/``uniqueid`` are the outgoing channel's
    when one was created."""

    answered: bool
    reason: int
    channel: str = ""
    uniqueid: str = "<unknown>"


class Originator(Protocol):
    """Places the calls AMI Originate asks for (implemented by the simulator's AGI half): create
    the channels, report their events through the server's `emit`, and return once the
    outgoing channel is answered or has failed; the call then goes on in the background."""

    async def originate(self, request: OriginateRequest) -> OriginateResult: ...


@runtime_checkable
class HangsUp(Protocol):
    """An `Originator` whose calls the AMI ``Hangup`` action can end: ``hang_up`` returns False
    for a channel it does not know."""

    def hang_up(self, channel: str) -> bool: ...


# --- channels, as CoreShowChannels lists them --------------------------------------------------

_CHANNEL_KEYS: Final = (
    "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName ConnectedLineNum "
    "ConnectedLineName Language AccountCode Context Exten Priority Uniqueid Linkedid"
).split()
_PREFIXES: Final = ("", "Dest", "LocalOne", "LocalTwo")


@dataclass
class _ChannelView:
    block: Headers
    created_us: int
    application: str = ""
    data: str = ""
    bridge: str = ""
    bridge_headers: Headers | None = None  # the BridgeEnter's bridge block, for BridgeLeave
    variables: dict[str, str] | None = None  # set with the Setvar action


def channel_blocks(headers: Headers) -> Iterable[tuple[str, Headers]]:
    """The channel blocks of an event (``prefix``, block with the prefix removed)."""
    keys = [key for key, _ in headers]
    for prefix in _PREFIXES:
        wanted = [prefix + key for key in _CHANNEL_KEYS]
        for start in range(len(keys) - len(wanted) + 1):
            if keys[start : start + len(wanted)] == wanted:
                block = headers[start : start + len(wanted)]
                yield prefix, [(key[len(prefix) :], value) for key, value in block]
                break


class ChannelTracker:
    """Follows the events the simulator emits to know its live channels, so that
    CoreShowChannels needs nothing from the AGI half but the events it already reports."""

    def __init__(self) -> None:
        self._channels: dict[str, _ChannelView] = {}

    def observe(self, event: str, headers: Headers, now_us: int) -> None:
        for prefix, block in channel_blocks(headers):
            name = block[0][1]
            if event == "Newchannel" and not prefix:
                self._channels[name] = _ChannelView(block, now_us)
            view = self._channels.get(name)
            if view is None:
                continue
            view.block = block
            if not prefix:
                self._apply(event, view, dict(headers))
                if event == "BridgeEnter":
                    view.bridge_headers = headers[: headers.index(block[0])]
        if event == "Hangup":
            self._channels.pop(dict(headers).get("Channel", ""), None)

    @staticmethod
    def _apply(event: str, view: _ChannelView, values: dict[str, str]) -> None:
        if event == "Newexten":
            view.application = values.get("Application", "")
            view.data = values.get("AppData", "")
        elif event == "BridgeEnter":
            view.bridge = values.get("BridgeUniqueid", "")
        elif event == "BridgeLeave":
            view.bridge = ""

    def find(self, name_or_uniqueid: str) -> _ChannelView | None:
        """A live channel by name, else by uniqueid (Asterisk's lookup order)."""
        view = self._channels.get(name_or_uniqueid)
        if view is not None or not name_or_uniqueid:
            return view
        for candidate in self._channels.values():
            if dict(candidate.block).get("Uniqueid") == name_or_uniqueid:
                return candidate
        return None

    def listing(self, now_us: int) -> list[Headers]:
        """CoreShowChannel bodies (after ActionID), newest channel first (Asterisk's order
        follows its hash container and is not defined)."""
        return [
            [
                *view.block,
                ("Application", view.application),
                ("ApplicationData", view.data),
                ("Duration", _duration((now_us - view.created_us) // 1_000_000)),
                ("BridgeId", view.bridge),
            ]
            for view in reversed(self._channels.values())
        ]


def _duration(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --- sessions ----------------------------------------------------------------------------------


def _address(sockname: object, fallback: str) -> str:
    """``IPV4/TCP/127.0.0.1/5038``, as security events print an address."""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        family = "IPV6" if ":" in str(sockname[0]) else "IPV4"
        return f"{family}/TCP/{sockname[0]}/{sockname[1]}"
    return fallback


class _Session:
    """One connected client."""

    def __init__(
        self, writer: asyncio.StreamWriter, started_us: int, max_backlog: int, max_bytes: int
    ) -> None:
        self.writer = writer
        self.parser = AmiParser(expect_greeting=False, max_bytes=max_bytes)
        self.user: ManagerUser | None = None
        self.event_classes: frozenset[str] | None = frozenset({"all"})
        self.session_id = f"0x{id(self):x}"  # Asterisk prints its session's address
        self.local = _address(writer.get_extra_info("sockname"), "IPV4/TCP/127.0.0.1/0")
        self.remote = _address(writer.get_extra_info("peername"), "IPV4/TCP/127.0.0.1/0")
        self.started_us = started_us
        self.closing = False
        self._max_backlog = max_backlog

    def wants(self, privilege: str) -> bool:
        if self.user is None or self.closing or self.event_classes is None:
            return False
        if not self.user.can_read(privilege):
            return False
        classes = self.event_classes
        return "all" in classes or any(c in classes for c in privilege.split(","))

    def send(self, data: bytes) -> None:
        if self.closing or self.writer.transport.is_closing():
            return
        self.writer.write(data)
        # A client that stops reading must not make the simulator buffer events forever.
        if self.writer.transport.get_write_buffer_size() > self._max_backlog:
            log.warning("AMI client %s is not reading; disconnecting it", self.remote)
            self.closing = True
            self.writer.transport.abort()

    def close(self) -> None:
        self.closing = True


Handler = Callable[[_Session, AmiMessage], Awaitable[None]]


def _is_true(value: str | None) -> bool:
    """Asterisk's ast_true."""
    return (value or "").strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def _caller_id(value: str) -> tuple[str, str]:
    """``"Name" <number>`` (or a bare number) to (number, name)."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, number = value[:-1].rpartition("<")
        return number.strip(), name.strip().strip('"').strip()
    return (value, "") if value.replace("+", "").isdigit() else ("", value)


class AmiServer:
    """The AMI half of the simulated PBX. Use ``async with AmiServer(...) as server`` or
    `start`/`close`; `port` is the bound port (pass ``port=0`` to let the OS pick)."""

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
    ) -> None:
        self.clock = clock
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
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # async Originates
        self._connections: set[asyncio.Task[object]] = set()
        # Events caused by an action wait here until its response is written: Asterisk answers
        # first and publishes the events after (QueueAdd, QueuePause in ami-actions.txt).
        self._deferred: list[tuple[str, bytes]] | None = None
        self._handlers: dict[str, Handler] = {
            "login": self._login,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "command": self._command,
            "queuesummary": self._queue_summary,
            "queuestatus": self._queue_status,
            "coreshowchannels": self._core_show_channels,
            "queueadd": self._queue_add,
            "queueremove": self._queue_remove,
            "queuepause": self._queue_pause,
            "originate": self._originate,
            "setvar": self._setvar,
            "redirect": self._redirect,
            "hangup": self._hangup,
            "devicestatelist": self._device_state_list,
        }
        if queues is not None:
            queues.sink = self  # the queues report their events through this server

    # -- lifecycle

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
            self._serve, self.host, self._port, family=socket.AF_INET, reuse_address=True
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

    async def __aenter__(self) -> AmiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the event sink

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

    # -- connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer, self.clock.now_us(), self._max_backlog, self._max_message_bytes)
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

    async def _read_actions(self, reader: asyncio.StreamReader, session: _Session) -> None:
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
                if not isinstance(message, AmiMessage) or not _safe(message):
                    log.warning("AMI client %s dropped: a header carries CR/LF", session.remote)
                    return
                await self._dispatch(session, AmiMessage(message.headers[:MAX_ACTION_HEADERS]))
                if session.closing:
                    return

    async def _dispatch(self, session: _Session, message: AmiMessage) -> None:
        action = message.get("Action") or ""
        name = action.lower()
        if not action:
            self._respond(session, message, "Error", ("Message", "Missing action in request"))
        elif session.user is None and name not in ("login", "logoff"):
            self._respond(session, message, "Error", ("Message", "Permission denied"))
        elif name not in self._handlers:
            self._unknown_action(session, message, action)
        elif not self._may_write(session, name):
            self._respond(session, message, "Error", ("Message", "Permission denied"))
        elif name == "originate":
            await self._originate(session, message)  # may wait for the call: never deferred
        else:
            self._deferred = []
            try:
                await self._handlers[name](session, message)
            finally:
                events, self._deferred = self._deferred, None
                for privilege, data in events:
                    self._broadcast(privilege, data)

    def _may_write(self, session: _Session, action: str) -> bool:
        needed = _ACTION_CLASSES.get(action)
        return needed is None or session.user is None or session.user.can_write(needed)

    # -- writing

    def _respond(
        self, session: _Session, message: AmiMessage, status: str, *headers: tuple[str, str]
    ) -> None:
        session.send(encode_message(_response(message, status, headers)))

    def _send_list(
        self,
        session: _Session,
        message: AmiMessage,
        intro: str,
        complete: str,
        items: list[tuple[str, Headers]],
    ) -> None:
        """An event list: the response with ``EventList: start``, the items, then the
        ``...Complete`` event, all in one write as Asterisk does."""
        action_id = _action_id(message)
        chunks = [
            encode_message(
                _response(message, "Success", [("EventList", "start"), ("Message", intro)])
            )
        ]
        chunks += [encode_message([("Event", event), *body]) for event, body in items]
        closing = [("Event", complete), *action_id, ("EventList", "Complete")]
        chunks.append(encode_message([*closing, ("ListItems", str(len(items)))]))
        session.send(b"".join(chunks))

    def _security_event(self, event: str, *extra: tuple[str, str]) -> None:
        self.emit(event, [("EventTV", format_event_tv(self.clock.now_us())), *extra])

    # -- actions

    async def _login(self, session: _Session, message: AmiMessage) -> None:
        if session.user is not None:
            self._respond(session, message, "Success", ("Message", "Already authenticated"))
            return
        user = self.users.get(message.get("Username") or "")
        if user is None or message.get("Secret") != user.secret:
            session.close()  # as ami-login-bad-secret.txt: no Response, the socket just closes
            return
        session.user = user
        session.started_us = self.clock.now_us()  # SessionTV is the time of the login
        session.event_classes = _event_mask(message.get("Events"))
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

    def _unknown_action(self, session: _Session, message: AmiMessage, action: str) -> None:
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

    async def _logoff(self, session: _Session, message: AmiMessage) -> None:
        self._respond(session, message, "Goodbye", ("Message", "Thanks for all the fish."))
        session.close()

    async def _ping(self, session: _Session, message: AmiMessage) -> None:
        stamp = format_timestamp(self.clock.now_us())
        self._respond(session, message, "Success", ("Ping", "Pong"), ("Timestamp", stamp))

    async def _events(self, session: _Session, message: AmiMessage) -> None:
        session.event_classes = _event_mask(message.get("EventMask"))
        state = "On" if session.event_classes else "Off"
        self._respond(session, message, "Success", ("Events", state))

    async def _command(self, session: _Session, message: AmiMessage) -> None:
        command = " ".join((message.get("Command") or "").split())
        if not command:
            self._respond(session, message, "Error", ("Message", "No command provided"))
            return
        lines = self._cli(command)
        status = "Success"
        if lines is None:
            status = "Error"
            lines = [
                f"No such command '{command}' "
                f"(type 'core show help {command}' for other possible commands)"
            ]
        output = [("Output", line) for line in lines]
        self._respond(session, message, status, ("Message", "Command output follows"), *output)

    def _cli(self, command: str) -> list[str] | None:
        """The few CLI commands the simulator knows; None for the others."""
        words = command.lower().split()
        if words == ["core", "show", "version"]:
            return [self.version]
        if words[:3] == ["core", "show", "uptime"]:
            return self._cli_uptime(words[3:] == ["seconds"])
        if words[:2] == ["queue", "show"] and len(words) <= 3 and self.queues is not None:
            return self._cli_queue_show(command.split()[2] if len(words) == 3 else None)
        return None

    def _cli_uptime(self, seconds: bool) -> list[str]:
        up, reload = self.clock.uptime(), self.clock.since_reload()
        if seconds:
            return [f"System uptime: {up}", f"Last reload: {reload}"]
        return [f"System uptime: {_spell_duration(up)}", f"Last reload: {_spell_duration(reload)}"]

    def _cli_queue_show(self, name: str | None) -> list[str]:
        assert self.queues is not None
        now = self.clock.epoch()
        if name is not None:
            queue = self.queues.queue(name)
            return queue.cli_lines(now) if queue else [f"No such queue: {name}."]
        queues = self.queues.all()
        return [line for q in queues for line in q.cli_lines(now)] or ["No queues."]

    def _selected_queues(self, message: AmiMessage) -> list[Queue]:
        wanted = message.get("Queue") or ""
        queues = self.queues.all() if self.queues is not None else []
        return [q for q in queues if not wanted or q.name == wanted]

    async def _queue_summary(self, session: _Session, message: AmiMessage) -> None:
        now, action_id = self.clock.epoch(), _action_id(message)
        items = [
            ("QueueSummary", [*q.summary(now), *action_id]) for q in self._selected_queues(message)
        ]
        self._send_list(
            session, message, "Queue summary will follow", "QueueSummaryComplete", items
        )

    async def _queue_status(self, session: _Session, message: AmiMessage) -> None:
        now, action_id = self.clock.epoch(), _action_id(message)
        member_filter = message.get("Member") or ""
        items: list[tuple[str, Headers]] = []
        for q in self._selected_queues(message):
            items.append(("QueueParams", [*q.params(), *action_id]))
            for m in q.members.values():
                if not member_filter or member_filter in (m.interface, m.name):
                    items.append(("QueueMember", [*m.status_entry(), *action_id]))
            items += [("QueueEntry", [*entry, *action_id]) for entry in q.entries(now)]
        self._send_list(session, message, "Queue status will follow", "QueueStatusComplete", items)

    async def _core_show_channels(self, session: _Session, message: AmiMessage) -> None:
        action_id = _action_id(message)
        listing = self.channels.listing(self.clock.now_us())
        items = [("CoreShowChannel", [*action_id, *body]) for body in listing]
        self._send_list(session, message, "Channels will follow", "CoreShowChannelsComplete", items)

    async def _queue_add(self, session: _Session, message: AmiMessage) -> None:
        queue, interface = message.get("Queue") or "", message.get("Interface") or ""
        if not queue or not interface:
            missing = "Queue" if not queue else "Interface"
            self._respond(session, message, "Error", ("Message", f"'{missing}' not specified."))
            return
        result = (
            self.queues.add_member(
                queue,
                interface,
                name=message.get("MemberName") or "",
                penalty=_int(message.get("Penalty"), 0),
                paused=_is_true(message.get("Paused")),
                reason=message.get("Reason") or "",
                state_interface=message.get("StateInterface") or "",
            )
            if self.queues
            else "no-queue"
        )
        status, text = {
            "added": ("Success", "Added interface to queue"),
            "exists": ("Error", "Unable to add interface: Already there"),
            "no-queue": ("Error", "Unable to add interface to queue: No such queue"),
        }[result]
        self._respond(session, message, status, ("Message", text))

    async def _queue_remove(self, session: _Session, message: AmiMessage) -> None:
        queue, interface = message.get("Queue") or "", message.get("Interface") or ""
        if not queue or not interface:
            text = "Need 'Queue' and 'Interface' parameters."
            self._respond(session, message, "Error", ("Message", text))
            return
        result = self.queues.remove_member(queue, interface) if self.queues else "no-queue"
        status, text = {
            "removed": ("Success", "Removed interface from queue"),
            "not-there": ("Error", "Unable to remove interface: Not there"),
            "no-queue": ("Error", "Unable to remove interface from queue: No such queue"),
            "not-dynamic": ("Error", "Member not dynamic"),
        }[result]
        self._respond(session, message, status, ("Message", text))

    async def _queue_pause(self, session: _Session, message: AmiMessage) -> None:
        interface, paused = message.get("Interface") or "", message.get("Paused") or ""
        if not interface or not paused:
            text = "Need 'Interface' and 'Paused' parameters."
            self._respond(session, message, "Error", ("Message", text))
            return
        pause = _is_true(paused)
        found = self.queues is not None and self.queues.pause_member(
            interface, pause, reason=message.get("Reason") or "", queue=message.get("Queue")
        )
        if not found:
            self._respond(session, message, "Error", ("Message", "Interface not found"))
            return
        text = "Interface paused successfully" if pause else "Interface unpaused successfully"
        self._respond(session, message, "Success", ("Message", text))

    async def _originate(self, session: _Session, message: AmiMessage) -> None:
        request, problem = _originate_request(message)
        if request is None:
            self._respond(session, message, "Error", ("Message", problem))
            return
        if _is_true(message.get("Async")):
            self._respond(session, message, "Success", ("Message", "Originate successfully queued"))
            task = asyncio.ensure_future(self._originate_async(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        result = await self._place_call(request)
        if result.answered:
            self._respond(session, message, "Success", ("Message", "Originate successfully queued"))
        else:
            self._respond(session, message, "Error", ("Message", "Originate failed"))

    async def _setvar(self, session: _Session, message: AmiMessage) -> None:
        name, value = message.get("Variable") or "", message.get("Value") or ""
        if not name:
            self._respond(session, message, "Error", ("Message", "No variable specified"))
            return
        channel = message.get("Channel") or ""
        view = self.channels.find(channel) if channel else None
        if channel and view is None:
            self._respond(session, message, "Error", ("Message", "No such channel"))
            return
        self._respond(session, message, "Success", ("Message", "Variable Set"))
        if view is not None:
            view.variables = {**(view.variables or {}), name.lstrip("_"): value}
            self.emit("VarSet", [*view.block, ("Variable", name), ("Value", value)])

    async def _redirect(self, session: _Session, message: AmiMessage) -> None:
        channel = message.get("Channel") or ""
        if not channel:
            self._respond(session, message, "Error", ("Message", "Channel not specified"))
            return
        priority = message.get("Priority") or "1"
        if not priority.isdigit():
            self._respond(session, message, "Error", ("Message", "Invalid priority"))
            return
        view = self.channels.find(channel)
        if view is None:
            text = f"Channel does not exist: {channel}"
            self._respond(session, message, "Error", ("Message", text))
            return
        self._respond(session, message, "Success", ("Message", "Redirect successful"))
        if view.bridge and view.bridge_headers is not None:
            self.emit("BridgeLeave", [*_one_less(view.bridge_headers), *view.block])
        place = {
            "Context": message.get("Context") or dict(view.block)["Context"],
            "Exten": message.get("Exten") or dict(view.block)["Exten"],
            "Priority": priority,
        }
        view.block = [(key, place.get(key, value)) for key, value in view.block]
        view.application = view.data = ""

    async def _hangup(self, session: _Session, message: AmiMessage) -> None:
        """Asterisk 22's manager.c: the three answers of a by-name Hangup (the /regex/ form is
        not simulated). Only the Originator's calls can be hung up from here."""
        channel = message.get("Channel") or ""
        if not channel:
            self._respond(session, message, "Error", ("Message", "No channel specified"))
            return
        originator = self.originator
        if not isinstance(originator, HangsUp) or not originator.hang_up(channel):
            self._respond(session, message, "Error", ("Message", "No such channel"))
            return
        self._respond(session, message, "Success", ("Message", "Channel Hungup"))

    async def _device_state_list(self, session: _Session, message: AmiMessage) -> None:
        """res_manager_devicestate.c: every state of the device-state cache as a
        ``DeviceStateChange`` carrying the ActionID, then ``DeviceStateListComplete``."""
        known = self.queues.devices.known() if self.queues is not None else []
        items: list[tuple[str, Headers]] = [
            ("DeviceStateChange", [*_action_id(message), ("Device", device), ("State", state.name)])
            for device, state in known
        ]
        intro, complete = "Device State Changes will follow", "DeviceStateListComplete"
        self._send_list(session, message, intro, complete, items)

    async def _originate_async(self, request: OriginateRequest) -> None:
        result = await self._place_call(request)
        self.emit("OriginateResponse", _originate_response(request, result))

    async def _place_call(self, request: OriginateRequest) -> OriginateResult:
        if self.originator is None:
            return OriginateResult(answered=False, reason=0)  # as for an unknown technology
        try:
            return await self.originator.originate(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulated Originate of %s failed", request.channel)
            return OriginateResult(answered=False, reason=0)


# --- helpers -----------------------------------------------------------------------------------


def _one_less(bridge: Headers) -> Headers:
    """A bridge block with one channel fewer (as BridgeLeave reports it)."""
    return [
        (key, str(max(0, _int(value, 1) - 1)) if key == "BridgeNumChannels" else value)
        for key, value in bridge
    ]


def _safe(message: AmiMessage) -> bool:
    """No CR or LF inside a key or value: the parser splits lines on CRLF only, so a bare one
    could otherwise ride along in an ActionID and come back out as a header of its own."""
    return not any(
        "\r" in key or "\n" in key or "\r" in value or "\n" in value
        for key, value in message.headers
    )


def _action_id(message: AmiMessage) -> Headers:
    """The ActionID header to echo, if the action had a non-empty one (Asterisk omits it
    otherwise)."""
    action_id = message.get("ActionID")
    return [("ActionID", action_id)] if action_id else []


def _response(message: AmiMessage, status: str, headers: Iterable[tuple[str, str]]) -> Headers:
    return [("Response", status), *_action_id(message), *headers]


def _event_mask(value: str | None) -> frozenset[str] | None:
    """Login's ``Events`` / the Events action's ``EventMask``: on (everything), off (None) or a
    list of classes."""
    text = (value or "on").strip().lower()
    if text in {"on", "yes", "true", "1", "all"}:
        return frozenset({"all"})
    if text in {"off", "no", "false", "0", "none"}:
        return None
    return _permissions(text) or None


def _int(value: str | None, default: int) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return default


def _spell_duration(seconds: int) -> str:
    """``1 minute, 50 seconds``, as ``core show uptime`` prints it."""
    parts: list[str] = []
    for unit, size in (
        ("year", 31536000),
        ("week", 604800),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return ", ".join(parts)


def _variables(message: AmiMessage) -> tuple[tuple[str, str], ...]:
    """Every ``Variable: a=b,c=d`` header, in order."""
    pairs: list[tuple[str, str]] = []
    for value in message.getall("Variable"):
        for item in value.split(","):
            name, sep, content = item.partition("=")
            if sep and name.strip():
                pairs.append((name.strip(), content))
    return tuple(pairs)


def _originate_request(message: AmiMessage) -> tuple[OriginateRequest | None, str]:
    """The request, or None and the error Asterisk gives."""
    channel = message.get("Channel") or ""
    if not channel:
        return None, "Channel not specified"
    if "/" not in channel:
        return None, "Invalid channel"
    priority = (message.get("Priority") or "1").strip()
    if not priority.isdigit():
        return None, "Invalid priority"
    application = message.get("Application") or ""
    number, name = _caller_id(message.get("CallerID") or "")
    return (
        OriginateRequest(
            channel=channel,
            context="" if application else message.get("Context") or "default",
            exten="" if application else message.get("Exten") or "s",
            priority=int(priority),
            application=application,
            data=message.get("Data") or "",
            caller_id_num=number,
            caller_id_name=name,
            timeout_ms=_int(message.get("Timeout"), 30000),
            variables=_variables(message),
            account=message.get("Account") or "",
            action_id=message.get("ActionID") or "",
        ),
        "",
    )


def _originate_response(request: OriginateRequest, result: OriginateResult) -> Headers:
    """OriginateResponse's headers, with the ActionID first as ami-ivr-call.txt shows."""
    headers: Headers = [("ActionID", request.action_id)] if request.action_id else []
    return [
        *headers,
        ("Response", "Success" if result.answered else "Failure"),
        ("Channel", result.channel or request.channel),
        ("Context", request.context),
        ("Exten", request.exten),
        ("Reason", str(result.reason)),
        ("Uniqueid", result.uniqueid),
        ("CallerIDNum", request.caller_id_num or "<unknown>"),
        ("CallerIDName", request.caller_id_name or "<unknown>"),
    ]
