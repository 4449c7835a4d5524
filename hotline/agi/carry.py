"""Values a call carries on its Asterisk channel from one controller to the next.

Asterisk keeps a channel's variables across the AGI() calls the dialplan makes when it hands a
call back (asterisk-conf/extensions.conf), so what a controller must know to resume a caller
travels there: the menu's checkpoint (``HOTLINE_RESUME``, `ivr.menu.resume`), the arrival in
the ACD's queue (``HOTLINE_QUEUED_AT``, `routing.connect`). During a rolling upgrade the next
controller may be older or newer than the one that wrote them, so every value names its
format first: ``v=1&name=value&...`` (URL-encoded, one AGI argument, no blanks). A reader
takes only the format it knows (`FORMAT`) and ignores anything else, as it would a missing
value: the call is then served from scratch, never wrongly. Fields a format-1 reader does not
know are ignored too, so a format may grow fields without a new number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

__all__ = ["FORMAT", "decode", "encode"]

FORMAT = "1"
_VERSION_FIELD = "v"
# What quote_plus leaves as it is: a name or value made of these only needs no quoting.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")
# quote_plus byte by byte: a plain byte as it is, a blank as "+", any other byte as %XX.
_BYTES = [
    chr(byte) if _PLAIN.fullmatch(chr(byte)) else "+" if byte == 0x20 else f"%{byte:02X}"
    for byte in range(256)
]


def encode(fields: Mapping[str, str], *, version: str = FORMAT) -> str:
    """``v=<version>&...``: the fields as one blank-free channel-variable value (what
    ``urlencode`` writes, with plain names and values, the usual case, taken as they are)."""
    parts = [_VERSION_FIELD + "=" + _quote(version)]
    parts += [_quote(name) + "=" + _quote(value) for name, value in fields.items()]
    return "&".join(parts)


def _quote(text: str) -> str:
    text = str(text)  # as urlencode does: a str subclass goes out as its plain text
    if _PLAIN.fullmatch(text):
        return text
    return "".join(map(_BYTES.__getitem__, text.encode()))


def decode(text: str | None) -> dict[str, str] | None:
    """The fields of a value in `FORMAT`; None when there is none, it is of another format
    (a newer or older controller's) or it is not a carried value at all."""
    if not text:
        return None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    if not pairs or pairs[0] != (_VERSION_FIELD, FORMAT):
        return None
    return dict(pairs[1:])
