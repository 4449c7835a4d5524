"""The callback conferences' AMI events: app_confbridge's ``ConfbridgeStart``/``Join``/
``Leave``/``End`` as ami-confbridge-callback.txt shows them (a real Asterisk 22.10.1).

Each event carries the conference name and the softmix bridge's block; ``BridgeNumChannels``
counts ConfBridge's own announcer channel (``CBAnn/...``) too, so the first member joins a
bridge of two. When a marked member leaves a conference whose members all have
``end_marked_any`` (extensions.conf sets it on both legs), Asterisk prints the leaver's
``ConfbridgeLeave``, then one for each member it kicks, then ``ConfbridgeEnd``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from pbxsim.model import EventSink, SimChannel

Headers = list[tuple[str, str]]


@dataclass
class _Conference:
    name: str
    uniqueid: str
    members: list[SimChannel] = field(default_factory=list)

    def bridge(self, channels: int) -> Headers:
        return [
            ("Conference", self.name),
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "base"),
            ("BridgeTechnology", "softmix"),
            ("BridgeCreator", "ConfBridge"),
            ("BridgeName", self.name),
            ("BridgeNumChannels", str(channels)),
            ("BridgeVideoSourceMode", "none"),
        ]


@dataclass
class Conferences:
    """The ConfBridge conferences of the simulated PBX, by name."""

    sink: EventSink | None = None
    seed: int = 0
    _open: dict[str, _Conference] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # bridge ids: reproducible in tests

    def join(self, name: str, channel: SimChannel) -> None:
        """`channel` enters conference `name`, which starts with its first member."""
        conference = self._open.get(name)
        if conference is None:
            bridge_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
            conference = self._open[name] = _Conference(name, bridge_id)
            self._emit("ConfbridgeStart", conference.bridge(1))
        conference.members.append(channel)
        joined = [("Admin", "No"), ("Muted", "No")]
        self._emit("ConfbridgeJoin", [*self._block(conference, channel), *joined])

    def end_by(self, name: str, leaver: SimChannel) -> list[SimChannel]:
        """`leaver` (a marked member) hangs up: it leaves, the others are kicked
        (end_marked_any) and the conference ends. Returns the kicked members."""
        conference = self._open.pop(name, None)
        if conference is None or leaver not in conference.members:
            return []
        kicked = [member for member in conference.members if member is not leaver]
        for member in [leaver, *kicked]:
            self._emit("ConfbridgeLeave", [*self._block(conference, member), ("Admin", "No")])
            conference.members.remove(member)
        self._emit("ConfbridgeEnd", conference.bridge(1))
        return kicked

    @staticmethod
    def _block(conference: _Conference, channel: SimChannel) -> Headers:
        return [*conference.bridge(1 + len(conference.members)), *channel.headers()]

    def _emit(self, event: str, headers: Headers) -> None:
        if self.sink is not None:
            self.sink.emit(event, headers)
