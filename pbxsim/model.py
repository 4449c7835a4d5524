"""What the simulated PBX knows about a channel, shared by its FastAGI and AMI halves.

A simulated channel is the subject of AMI events (``Newchannel``, ``VarSet``, ``Hangup``...)
and the far end of a FastAGI session. The AGI half changes channels and reports what happened
through an `EventSink`; the AMI half turns that into the exact bytes Asterisk 22 sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol


class ChannelState(IntEnum):
    """Asterisk's channel states, with the numbers AMI prints in ``ChannelState``."""

    DOWN = 0
    RSRVD = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7

    @property
    def desc(self) -> str:
        """The ``ChannelStateDesc`` text."""
        return {ChannelState.RSRVD: "Rsrvd", ChannelState.OFFHOOK: "OffHook"}.get(
            self, self.name.capitalize()
        )


@dataclass
class SimChannel:
    """One simulated channel. Unknown caller ID is ``<unknown>``, as Asterisk prints it."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    priority: int = 1
    state: ChannelState = ChannelState.DOWN
    caller_id_num: str = "<unknown>"
    caller_id_name: str = "<unknown>"
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "ru"
    account_code: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    def headers(self, prefix: str = "") -> list[tuple[str, str]]:
        """The standard block of channel headers every channel event carries, in wire order.
        ``prefix`` gives the ``Dest...``/``LocalOne...`` forms."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(int(self.state))),
            (f"{prefix}ChannelStateDesc", self.state.desc),
            (f"{prefix}CallerIDNum", self.caller_id_num),
            (f"{prefix}CallerIDName", self.caller_id_name),
            (f"{prefix}ConnectedLineNum", self.connected_num),
            (f"{prefix}ConnectedLineName", self.connected_name),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.account_code),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


class EventSink(Protocol):
    """Where the simulated PBX reports events. ``headers`` are those after ``Event`` and
    ``Privilege``; the AMI half adds those two and picks the privilege per event."""

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None: ...


class NullSink:
    """An event sink for runs with no AMI listener."""

    def emit(self, event: str, headers: list[tuple[str, str]]) -> None:
        return None


class QueueService(Protocol):
    """The simulated PBX's queues, as the dialplan's ``Queue()`` application sees them.

    The AGI half calls `enter` when a controller runs ``EXEC Queue(...)`` on a channel; the AMI
    half implements it: members, ringing simulated softphones, queue events. It returns what
    Asterisk would leave in ``QUEUESTATUS`` (``TIMEOUT``, ``FULL``, ``JOINEMPTY``,
    ``LEAVEEMPTY``, ``JOINUNAVAIL``, ``LEAVEUNAVAIL``, ``CONTINUE``), or ``ANSWERED`` when an
    operator took the call and the conversation has ended.
    """

    async def enter(
        self, channel: SimChannel, queue: str, options: str = "", max_wait: float | None = None
    ) -> str: ...
