"""The channels the simulator's events announced, kept as ``CoreShowChannels`` lists them and
as Setvar, Redirect and Hangup look them up (by name or uniqueid).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pbxsim.ami_session import int_header

Headers = list[tuple[str, str]]

_CHANNEL_KEYS: Final = (
    "Channel ChannelState ChannelStateDesc CallerIDNum CallerIDName ConnectedLineNum "
    "ConnectedLineName Language AccountCode Context Exten Priority Uniqueid Linkedid"
).split()


_PREFIXES: Final = ("", "Dest", "LocalOne", "LocalTwo")


@dataclass
class ChannelView:
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
        self._channels: dict[str, ChannelView] = {}

    def observe(self, event: str, headers: Headers, now_us: int) -> None:
        for prefix, block in channel_blocks(headers):
            name = block[0][1]
            if event == "Newchannel" and not prefix:
                self._channels[name] = ChannelView(block, now_us)
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
    def _apply(event: str, view: ChannelView, values: dict[str, str]) -> None:
        if event == "Newexten":
            view.application = values.get("Application", "")
            view.data = values.get("AppData", "")
        elif event == "BridgeEnter":
            view.bridge = values.get("BridgeUniqueid", "")
        elif event == "BridgeLeave":
            view.bridge = ""

    def find(self, name_or_uniqueid: str) -> ChannelView | None:
        """A live channel by name, else by uniqueid (Asterisk's lookup order)."""
        view = self._channels.get(name_or_uniqueid)
        if view is not None or not name_or_uniqueid:
            return view
        for candidate in self._channels.values():
            if dict(candidate.block).get("Uniqueid") == name_or_uniqueid:
                return candidate
        return None

    def first_named(self, prefix: str, *, besides: str) -> str | None:
        """The first live channel whose name starts with `prefix` (ChanSpy's scan)."""
        for name in self._channels:
            if name.startswith(prefix) and name != besides:
                return name
        return None

    def views(self) -> list[ChannelView]:
        """Every live channel, newest first."""
        return list(reversed(self._channels.values()))

    def listing(self, now_us: int) -> list[Headers]:
        """CoreShowChannel bodies (after ActionID), newest channel first (Asterisk's order
        follows its hash container and is not defined)."""
        return [
            [
                *view.block,
                ("Application", view.application),
                ("ApplicationData", view.data),
                ("Duration", cli_duration((now_us - view.created_us) // 1_000_000)),
                ("BridgeId", view.bridge),
            ]
            for view in reversed(self._channels.values())
        ]


def cli_duration(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def one_less(bridge: Headers) -> Headers:
    """A bridge block with one channel fewer (as BridgeLeave reports it)."""
    return [
        (key, str(max(0, int_header(value, 1) - 1)) if key == "BridgeNumChannels" else value)
        for key, value in bridge
    ]


def status_of(view: ChannelView, now_us: int, action_id: Headers) -> Headers:
    """A ``Status`` event's body (manager.c generate_status, ami-chanspy.txt): the channel's
    block, then its technology, application and media (the simulator's phones talk A-law)."""
    block = dict(view.block)
    return [
        ("Privilege", "Call"),
        *view.block,
        ("Type", block.get("Channel", "").split("/", 1)[0]),
        ("DNID", ""),
        ("EffectiveConnectedLineNum", block.get("ConnectedLineNum", "<unknown>")),
        ("EffectiveConnectedLineName", block.get("ConnectedLineName", "<unknown>")),
        ("TimeToHangup", "0"),
        ("BridgeID", view.bridge),
        ("Application", view.application),
        ("Data", view.data),
        ("Nativeformats", "(alaw)"),
        ("Readformat", "alaw"),
        ("Readtrans", ""),
        ("Writeformat", "alaw"),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str((now_us - view.created_us) // 1_000_000)),
        *action_id,
    ]
