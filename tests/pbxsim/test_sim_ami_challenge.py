"""The simulator's MD5 challenge login, byte for byte as Asterisk 22's manager.c writes it
(``action_challenge``, ``authenticate``, ``action_login``; no real capture of it exists yet):

* ``Response: Success`` / ``ActionID`` / ``Challenge: <ast_random() in %ld, cut to 9 bytes>``;
  the same challenge for the whole session;
* no or another AuthType: ``Response: Error`` / ``Message: Must specify AuthType``;
* ``AuthType: MD5`` with ``Key: md5(challenge + secret)``: ``Authentication accepted``, then
  FullyBooted as after a plain login; a wrong key, or a key without a challenge first:
  ``Authentication failed`` and the socket closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

import pytest

from hotline.clock import SteppedClock
from pbxsim.ami_accounts import ManagerUser
from pbxsim.ami_server import AmiServer

GUARD = 5.0  # only keeps a broken test from hanging
USER, SECRET = "hotline", "a long random secret"
CHALLENGE = re.compile(rb"^Response: Success\r\nActionID: c1\r\nChallenge: (\d{1,9})\r\n\r\n$")


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    clock = SteppedClock("1795563319", boot="1795563209")
    users = {USER: ManagerUser(USER, SECRET)}
    async with AmiServer(clock=clock, users=users, port=0, refusal_delay=0.0) as started:
        yield started


class Raw:
    """A socket speaking AMI by hand: exact bytes out, exact bytes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: AmiServer) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        raw = cls(reader, writer)
        assert await raw.reply(b"\r\n") == b"Asterisk Call Manager/11.0.0\r\n"
        return raw

    async def reply(self, until: bytes = b"\r\n\r\n") -> bytes:
        async with asyncio.timeout(GUARD):
            return await self.reader.readuntil(until)

    async def ask(self, text: str) -> bytes:
        self.writer.write(text.replace("\n", "\r\n").encode() + b"\r\n")
        return await self.reply()

    async def closed(self) -> bool:
        async with asyncio.timeout(GUARD):
            return await self.reader.read() == b""

    async def challenge(self) -> str:
        found = CHALLENGE.match(await self.ask("Action: Challenge\nActionID: c1\nAuthType: MD5\n"))
        assert found is not None
        return found.group(1).decode()

    def close(self) -> None:
        self.writer.close()


def key(challenge: str, secret: str) -> str:
    return hashlib.md5((challenge + secret).encode()).hexdigest()


async def test_challenge_then_md5_login_is_accepted(server: AmiServer) -> None:
    raw = await Raw.open(server)
    challenge = await raw.challenge()
    assert await raw.challenge() == challenge  # one per session, as manager.c keeps it
    answer = await raw.ask(
        f"Action: Login\nActionID: l1\nAuthType: md5\nUsername: {USER}\n"
        f"Key: {key(challenge, SECRET)}\n"
    )
    accepted = b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n"
    assert answer == accepted
    booted = await raw.reply()
    assert booted.startswith(b"Event: FullyBooted\r\nPrivilege: system,all\r\n")
    assert await raw.ask("Action: Ping\nActionID: p1\n") != b""
    raw.close()


async def test_each_session_gets_its_own_challenge(server: AmiServer) -> None:
    """A recorded key is worth nothing on another connection."""
    seen = set()
    for _ in range(5):
        raw = await Raw.open(server)
        seen.add(await raw.challenge())
        raw.close()
    assert len(seen) > 1


async def test_a_wrong_key_is_refused_and_the_socket_closed(server: AmiServer) -> None:
    raw = await Raw.open(server)
    challenge = await raw.challenge()
    answer = await raw.ask(
        f"Action: Login\nActionID: l1\nAuthType: MD5\nUsername: {USER}\n"
        f"Key: {key(challenge, 'guessed')}\n"
    )
    assert answer == b"Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n"
    assert await raw.closed()


@pytest.mark.parametrize(
    "login",
    [
        # A key computed for someone else's challenge: no Challenge on this session.
        "Action: Login\nActionID: l1\nAuthType: MD5\nUsername: hotline\nKey: {key}\n",
        "Action: Login\nActionID: l1\nAuthType: MD5\nUsername: nobody\nKey: {key}\n",
        "Action: Login\nActionID: l1\nAuthType: MD5\nUsername: hotline\n",
        "Action: Login\nActionID: l1\nAuthType: MD5\nUsername: hotline\nKey: {upper}\n",
        "Action: Login\nActionID: l1\nAuthType: MD5\nUsername: hotline\nKey: ключ\n",
    ],
)
async def test_other_bad_md5_logins_are_refused_alike(server: AmiServer, login: str) -> None:
    first = await Raw.open(server)
    right = key(await first.challenge(), SECRET)
    first.close()
    raw = await Raw.open(server)
    if "{key}" not in login or "nobody" in login:
        await raw.challenge()
    answer = await raw.ask(login.format(key=right, upper=right.upper()))
    assert answer == b"Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n"
    assert await raw.closed()


@pytest.mark.parametrize("auth_type", ["", "AuthType: plaintext\n"])
async def test_challenge_needs_md5(server: AmiServer, auth_type: str) -> None:
    raw = await Raw.open(server)
    answer = await raw.ask(f"Action: Challenge\nActionID: c2\n{auth_type}")
    assert answer == b"Response: Error\r\nActionID: c2\r\nMessage: Must specify AuthType\r\n\r\n"
    raw.close()


async def test_no_other_action_before_login(server: AmiServer) -> None:
    raw = await Raw.open(server)
    await raw.challenge()
    answer = await raw.ask("Action: Ping\nActionID: p1\n")
    assert answer == b"Response: Error\r\nActionID: p1\r\nMessage: Permission denied\r\n\r\n"
    raw.close()
