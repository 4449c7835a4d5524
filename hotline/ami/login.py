"""Logging in to AMI without sending the secret: Asterisk's MD5 challenge.

``Action: Challenge`` with ``AuthType: MD5`` gets ``Challenge: <digits>``; the login then
carries ``AuthType: MD5`` and ``Key: md5(challenge + secret)`` in lower-case hex (manager.c
``authenticate``), never the secret. The challenge is per connection, so a recorded key is
useless on the next one. A wrong key is answered ``Authentication failed`` and the socket
closed; a wrong plain secret, in the captured Asterisk 22 session, just closes it.

The plain ``Secret:`` login is used only when the settings say so (``[ami] login =
"plain"``). There is no automatic fall-back: a man in the middle could answer the Challenge
with an error to make the client send its secret in clear.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from hotline.ami.actions import AmiResponse
from hotline.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionError,
    AmiLinkLost,
    AmiTimeout,
)
from hotline.ami.link import AmiLink

# One logger for the whole client: operators filter its lines by this name.
log = logging.getLogger("hotline.ami.client")

LoginMethod = Literal["challenge", "plain"]

Request = Callable[[AmiLink, str, list[tuple[str, str]], float], Awaitable[AmiResponse]]
"""Sends one action on a link and returns its reply (the client's `_request`)."""


def challenge_key(challenge: str, secret: str) -> str:
    """The ``Key`` of an MD5 login: md5 of the challenge followed by the secret, lower-case
    hex. MD5 because Asterisk's manager knows no other; the challenge changes per connection."""
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(challenge.encode())
    digest.update(secret.encode())
    return digest.hexdigest()


async def log_in(
    link: AmiLink,
    request: Request,
    *,
    username: str,
    secret: str,
    method: LoginMethod,
    reply_timeout: float,
) -> None:
    """Log in on `link`; raises `AmiAuthError` when Asterisk refuses the user, the key or the
    secret, `AmiConnectionError` when the exchange breaks off otherwise."""
    where = link.where
    refused = f"AMI login refused for user {username} at {where}: wrong username or secret"
    try:
        if method == "challenge":
            challenge = await _challenge(link, request, reply_timeout)
            credentials = [
                ("AuthType", "MD5"),
                ("Username", username),
                ("Key", challenge_key(challenge, secret)),
            ]
        else:
            credentials = [("Username", username), ("Secret", secret)]
        await request(link, "Login", credentials, reply_timeout)
    except AmiActionError as error:
        raise AmiAuthError(f"{refused} (Asterisk: {error.message})") from None
    except AmiLinkLost as exc:
        if link.lost_by_eof:  # Asterisk 22: a wrong plain secret gets a close, no Response
            raise AmiAuthError(refused) from None
        raise AmiConnectionError(f"AMI login at {where} failed: {exc}") from None
    except AmiTimeout:
        raise AmiConnectionError(f"no answer to AMI login from {where}") from None


async def _challenge(link: AmiLink, request: Request, reply_timeout: float) -> str:
    try:
        reply = await request(link, "Challenge", [("AuthType", "MD5")], reply_timeout)
    except AmiActionError as error:
        # Refused as a login: retrying will not make this Asterisk offer MD5.
        raise AmiAuthError(
            f"AMI at {link.where} refused the challenge login (Asterisk: {error.message}); "
            'the plain login sends the secret in clear: set [ami] login = "plain" only over '
            "TLS or a trusted network"
        ) from None
    challenge = reply.get("Challenge") or ""
    if not challenge:
        raise AmiConnectionError(f"AMI at {link.where} answered Challenge without a challenge")
    return challenge
