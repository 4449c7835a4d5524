"""Letters the workspace sends: to a citizen whose ticket is resolved, to an agency a caller
was transferred to. One interface (`Notifier`), one real implementation (`SmtpNotifier`,
e-mail over SMTP with aiosmtplib, STARTTLS when the server offers it).

SMS over SMPP is not offered: no SMPP client library for asyncio is kept up today (the Python
ones are unmaintained forks); a site that needs SMS puts an e-mail-to-SMS gateway behind the
same interface.

Letters say no more than they must: the citizen's letter names the contact number and the
ticket's outcome, never the caller's identifiers; the agency's letter carries what the agency
needs to take the request over (name, phone, application, the request's text).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

log = logging.getLogger(__name__)

__all__ = ["CitizenCallbacks", "Letter", "Notifier", "NotifyFailed", "SmtpNotifier", "SmtpSettings"]


@dataclass(frozen=True)
class Letter:
    to: str
    subject: str
    body: str


class NotifyFailed(Exception):
    """The letter was not accepted; the caller retries later."""


class Notifier(Protocol):
    async def send(self, letter: Letter) -> None:
        """Deliver `letter` or raise `NotifyFailed`."""
        ...


class CitizenCallbacks(Protocol):
    """The port through which a resolved ticket books a call back to the citizen (the root
    plugs in routing's `CallbackService`; the workspace does not import routing).

    True: booked (or one is already pending for that phone); False: refused."""

    async def book(self, *, phone: str, group: str, contact_number: str) -> bool: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "hotline@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool | None = None  # None: when the server offers it
    timeout_seconds: float = 15.0


class SmtpNotifier:
    """`Notifier` over SMTP."""

    def __init__(self, settings: SmtpSettings, tls: ssl.SSLContext | None = None) -> None:
        self._settings = settings
        self._tls = tls

    async def send(self, letter: Letter) -> None:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = letter.to
        message["Subject"] = letter.subject
        message.set_content(letter.body)
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                start_tls=s.starttls,
                tls_context=self._tls,
                timeout=s.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failed:
            log.warning("letter not sent: %s", type(failed).__name__)
            raise NotifyFailed(str(failed)) from failed
