"""One manager connection and the header helpers every action uses: the client's session
(its account, event mask, write buffer) and how responses and values are spelled.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable

from hotline.ami.protocol import (
    AmiMessage,
    AmiParser,
)
from pbxsim.ami_accounts import ManagerUser, permission_set

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]


def peer_address(sockname: object, fallback: str) -> str:
    """``IPV4/TCP/127.0.0.1/5038``, as security events print an address."""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        family = "IPV6" if ":" in str(sockname[0]) else "IPV4"
        return f"{family}/TCP/{sockname[0]}/{sockname[1]}"
    return fallback


class AmiSession:
    """One connected client."""

    def __init__(
        self, writer: asyncio.StreamWriter, started_us: int, max_backlog: int, max_bytes: int
    ) -> None:
        self.writer = writer
        self.parser = AmiParser(expect_greeting=False, max_bytes=max_bytes)
        self.user: ManagerUser | None = None
        self.event_classes: frozenset[str] | None = frozenset({"all"})
        self.session_id = f"0x{id(self):x}"  # Asterisk prints its session's address
        self.local = peer_address(writer.get_extra_info("sockname"), "IPV4/TCP/127.0.0.1/0")
        self.remote = peer_address(writer.get_extra_info("peername"), "IPV4/TCP/127.0.0.1/0")
        self.started_us = started_us
        self.closing = False
        self._max_backlog = max_backlog
        self._challenge = ""

    def challenge(self) -> str:
        """The session's MD5 challenge, made on first demand: manager.c prints ast_random()
        (0 .. 2**31-1) with %ld into a 10-byte buffer, so at most 9 digits."""
        if not self._challenge:
            self._challenge = str(secrets.randbelow(2**31))[:9]
        return self._challenge

    def key_matches(self, key: str, secret: str) -> bool:
        """Whether an MD5 login's Key is md5(challenge + secret) in lower-case hex (manager.c
        compares with strcmp); false before any Challenge or with no secret."""
        if not key or not self._challenge or not secret:
            return False
        digest = hashlib.md5(usedforsecurity=False)
        digest.update(self._challenge.encode())
        digest.update(secret.encode())
        return hmac.compare_digest(digest.hexdigest().encode(), key.encode())

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


Handler = Callable[[AmiSession, AmiMessage], Awaitable[None]]


def ami_true(value: str | None) -> bool:
    """Asterisk's ast_true."""
    return (value or "").strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def caller_id_parts(value: str) -> tuple[str, str]:
    """``"Name" <number>`` (or a bare number) to (number, name)."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, number = value[:-1].rpartition("<")
        return number.strip(), name.strip().strip('"').strip()
    return (value, "") if value.replace("+", "").isdigit() else ("", value)


def is_safe_action(message: AmiMessage) -> bool:
    """No CR or LF inside a key or value: the parser splits lines on CRLF only, so a bare one
    could otherwise ride along in an ActionID and come back out as a header of its own."""
    return not any(
        "\r" in key or "\n" in key or "\r" in value or "\n" in value
        for key, value in message.headers
    )


def action_id_headers(message: AmiMessage) -> Headers:
    """The ActionID header to echo, if the action had a non-empty one (Asterisk omits it
    otherwise)."""
    action_id = message.get("ActionID")
    return [("ActionID", action_id)] if action_id else []


def response_headers(
    message: AmiMessage, status: str, headers: Iterable[tuple[str, str]]
) -> Headers:
    return [("Response", status), *action_id_headers(message), *headers]


def event_mask(value: str | None) -> frozenset[str] | None:
    """Login's ``Events`` / the Events action's ``EventMask``: on (everything), off (None) or a
    list of classes."""
    text = (value or "on").strip().lower()
    if text in {"on", "yes", "true", "1", "all"}:
        return frozenset({"all"})
    if text in {"off", "no", "false", "0", "none"}:
        return None
    return permission_set(text) or None


def int_header(value: str | None, default: int) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return default


def spell_duration(seconds: int) -> str:
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
