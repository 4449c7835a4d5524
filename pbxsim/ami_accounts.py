"""Who may do what on the simulated manager interface: manager.conf's accounts, the read
class of every event and the write class of every action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

Headers = list[tuple[str, str]]


def _classes(names: Iterable[str], privilege: str) -> dict[str, str]:
    return dict.fromkeys(names, privilege)


# The ``Privilege`` of each event, as the transcripts (and Asterisk's sources) print it.
EVENT_PRIVILEGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        **_classes(
            (
                "Newchannel Newstate Hangup HangupRequest SoftHangupRequest NewCallerid "
                "NewConnectedLine NewAccountCode Rename LocalBridge LocalOptimizationBegin "
                "LocalOptimizationEnd OriginateResponse DialBegin DialState DialEnd "
                "DeviceStateChange ExtensionStatus PresenceStateChange BridgeCreate BridgeEnter "
                "BridgeLeave BridgeDestroy BridgeMerge MixMonitorStart MixMonitorStop "
                "MixMonitorMute MusicOnHoldStart MusicOnHoldStop Hold Unhold BlindTransfer "
                "AttendedTransfer Pickup ChanSpyStart ChanSpyStop"
            ).split(),
            "call,all",
        ),
        **_classes(("Newexten", "VarSet"), "dialplan,all"),
        **_classes(
            ("AGIExecStart", "AGIExecEnd", "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd"),
            "agi,all",
        ),
        **_classes(
            (
                "QueueCallerJoin QueueCallerLeave QueueCallerAbandon QueueMemberAdded "
                "QueueMemberRemoved QueueMemberPause QueueMemberStatus QueueMemberPenalty "
                "QueueMemberRinginuse AgentCalled AgentConnect AgentComplete AgentDump "
                "AgentRingNoAnswer AgentLogin AgentLogoff"
            ).split(),
            "agent,all",
        ),
        **_classes(
            ("FullyBooted", "Reload", "Shutdown", "ContactStatus", "PeerStatus"), "system,all"
        ),
        **_classes(
            (
                "SuccessfulAuth RequestBadFormat RequestNotAllowed RequestNotSupported "
                "InvalidAccountID InvalidPassword FailedACL ChallengeSent ChallengeResponseFailed"
            ).split(),
            "security,all",
        ),
        **_classes(("DTMFBegin", "DTMFEnd"), "dtmf,all"),
        "Cdr": "cdr,all",
        "CEL": "cel,all",
        "UserEvent": "user,all",
    }
)


_DEFAULT_PRIVILEGE: Final = "call,all"


# The write class an action needs (manager.conf ``write``; ``a|b`` either); actions not
# listed need none.
ACTION_CLASSES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "command": "command",
        "originate": "originate",
        "queueadd": "agent",
        "queueremove": "agent",
        "queuepause": "agent",
        "setvar": "call",
        "redirect": "call",
        "hangup": "call",  # manager.c: system or call
        "devicestatelist": "call",  # res_manager_devicestate.c: call or reporting
        "status": "call",  # manager.c: system, call or reporting
        # manager.c: system or reporting (Asterisk 22 says Permission denied to call,originate)
        "coreshowchannels": "system|reporting",
    }
)


def privilege_of(event: str) -> str:
    return EVENT_PRIVILEGES.get(event, _DEFAULT_PRIVILEGE)


@dataclass(frozen=True)
class ManagerUser:
    """A manager.conf account. ``read``/``write`` are permission classes (``all`` for every)."""

    username: str
    secret: str
    read: frozenset[str] = frozenset({"all"})
    write: frozenset[str] = frozenset({"all"})

    def can_read(self, privilege: str) -> bool:
        return "all" in self.read or any(c in self.read for c in privilege.split(",")[:-1])

    def can_write(self, action_class: str) -> bool:
        """``a|b``: either class will do (an action manager.c registers for several)."""
        return "all" in self.write or any(c in self.write for c in action_class.split("|"))


def permission_set(value: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def parse_manager_conf(text: str) -> dict[str, ManagerUser]:
    """The accounts of a manager.conf (``[general]`` is not an account)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            name = line[1 : line.index("]")].strip()
            current = None if name == "general" else sections.setdefault(name, {})
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current[key.strip().lower()] = value.strip()
    return {
        name: ManagerUser(
            name,
            keys.get("secret", ""),
            permission_set(keys.get("read", "all")),
            permission_set(keys.get("write", "all")),
        )
        for name, keys in sections.items()
    }


def load_manager_conf(path: str | Path) -> dict[str, ManagerUser]:
    return parse_manager_conf(Path(path).read_text(encoding="utf-8"))
