"""The Asterisk Manager Interface wire format, both directions, with no I/O.

Written from the bytes a real Asterisk 22 sends (see tests/data/asterisk/ami-*.txt):

* The server greets with one line, ``Asterisk Call Manager/11.0.0``, with no empty line after.
* Every message after that is ``Key: Value`` lines ended by CRLF, closed by an empty line. A
  key may repeat (``Output:`` once per line of a ``Command`` answer), so headers keep order.
* One message can be split over several TCP reads and several messages can share one read, so
  bytes are buffered and decoded only per complete message: a UTF-8 character split across two
  reads arrives whole.

`AmiParser` reads either side (the controller reads responses and events, the simulator reads
actions); `encode_message` writes either side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

GREETING: Final = "Asterisk Call Manager/11.0.0"
_EOL: Final = b"\r\n"
_END: Final = b"\r\n\r\n"
MAX_MESSAGE_BYTES: Final = 1 << 20


class AmiProtocolError(Exception):
    """Bytes that are not AMI; the link that carried them must be dropped."""


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One message: an action, a response or an event, headers in wire order."""

    headers: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, *headers: tuple[str, str]) -> AmiMessage:
        return cls(tuple(headers))

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of a header, matched case-insensitively as Asterisk does."""
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def getall(self, key: str) -> list[str]:
        """Every value of a repeated header, e.g. the ``Output`` lines of a Command."""
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    @property
    def kind(self) -> str:
        """``response``, ``event`` or ``action``, from the first header."""
        return self.headers[0][0].lower() if self.headers else ""

    @property
    def name(self) -> str:
        """The response status, event name or action name."""
        return self.headers[0][1] if self.headers else ""

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """First value per header; for logs and simple lookups."""
        result: dict[str, str] = {}
        for name, value in self.headers:
            result.setdefault(name, value)
        return result


@dataclass(frozen=True, slots=True)
class Greeting:
    """The banner line the server sends once on connect."""

    text: str


def encode_message(headers: Iterable[tuple[str, str]]) -> bytes:
    """One message on the wire. A CR or LF inside a key or value would end the message early
    and let the rest pose as another action, so it is refused."""
    lines: list[str] = []
    for key, value in headers:
        if not key or any(c in key for c in ":\r\n") or "\r" in value or "\n" in value:
            raise AmiProtocolError(f"header cannot be sent safely: {key[:40]!r}")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode()


def encode_greeting(text: str = GREETING) -> bytes:
    return (text + "\r\n").encode()


def decode_message(block: bytes) -> AmiMessage:
    """Parse one message without its closing empty line."""
    text = block.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key or key != key.strip():
            raise AmiProtocolError(f"not an AMI header line: {line[:80]!r}")
        headers.append((key, value[1:] if value.startswith(" ") else value))
    return AmiMessage(tuple(headers))


class AmiParser:
    """Buffers bytes from one side of a link and yields whole messages."""

    __slots__ = ("_buffer", "_max_bytes", "_want_greeting")

    def __init__(self, *, expect_greeting: bool, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._want_greeting = expect_greeting
        self._max_bytes = max_bytes

    def feed(self, data: bytes) -> list[AmiMessage | Greeting]:
        self._buffer += data
        return list(self._drain())

    def _drain(self) -> Iterator[AmiMessage | Greeting]:
        if self._want_greeting:
            end = self._buffer.find(_EOL)
            if end < 0:
                self._check_size()
                return
            line = bytes(self._buffer[:end]).decode("utf-8", errors="replace")
            del self._buffer[: end + 2]
            self._want_greeting = False
            if not line.startswith("Asterisk Call Manager/"):
                raise AmiProtocolError(f"not an Asterisk manager greeting: {line[:80]!r}")
            yield Greeting(line)
        while True:
            # Blank lines between messages (seen from some clients) carry nothing.
            while self._buffer.startswith(_EOL):
                del self._buffer[:2]
            end = self._buffer.find(_END)
            if end < 0:
                self._check_size()
                return
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            yield decode_message(block)

    def _check_size(self) -> None:
        if len(self._buffer) > self._max_bytes:
            raise AmiProtocolError(
                f"no message end within {self._max_bytes} bytes; the peer is not speaking AMI"
            )
