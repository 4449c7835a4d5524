"""Load the raw Asterisk 22 transcripts in tests/data/asterisk/ into blocks of bytes.

Each block is one read or write as it crossed the socket: ``### <direction> [(note)] [EOF]
+<seconds>s`` opens it and the bytes up to the next marker are the payload, CRLF kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "asterisk"
_MARKER = re.compile(
    rb"^### (?P<direction>\S+)(?: \((?P<note>[^)]*)\))?(?P<eof> EOF)? \+(?P<at>[\d.]+)s\n",
    re.MULTILINE,
)
_NO_TRAILING_NEWLINE = b"\n[no trailing newline]"


@dataclass(frozen=True)
class Block:
    direction: (
        str  # asterisk->server, server->asterisk, asterisk->client, client->asterisk, timeout
    )
    at: float
    data: bytes
    note: str = ""
    eof: bool = False


def load(name: str) -> list[Block]:
    raw = (DATA / name).read_bytes()
    markers = list(_MARKER.finditer(raw))
    assert markers and markers[0].start() == 0, f"{name} does not start with a marker"
    blocks = []
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        end = following.start() if following else len(raw)
        data = raw[marker.end() : end]
        for suffix in (_NO_TRAILING_NEWLINE + b"\n", _NO_TRAILING_NEWLINE):
            if data.endswith(suffix):
                data = data[: -len(suffix)]
                break
        blocks.append(
            Block(
                direction=marker["direction"].decode(),
                at=float(marker["at"]),
                data=data,
                note=(marker["note"] or b"").decode(),
                eof=marker["eof"] is not None,
            )
        )
    return blocks


def stream(blocks: list[Block], direction: str) -> bytes:
    """Everything that went one way, concatenated: what a peer would read."""
    return b"".join(block.data for block in blocks if block.direction == direction)


def ami_transcripts() -> list[str]:
    return sorted(path.name for path in DATA.glob("ami-*.txt"))
