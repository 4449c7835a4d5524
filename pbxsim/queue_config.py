"""The queues' configuration: queues.conf (or the same as plain data) read into
`QueueConfig`s and their members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

STRATEGIES: Final = frozenset({"ringall", "leastrecent", "fewestcalls", "linear"})


@dataclass(frozen=True)
class MemberConfig:
    """One ``member => interface,penalty,name,state_interface`` line."""

    interface: str
    penalty: int = 0
    name: str = ""
    state_interface: str = ""

    @classmethod
    def parse(cls, value: str) -> MemberConfig:
        parts = [part.strip() for part in value.split(",")]
        penalty = int(parts[1]) if len(parts) > 1 and parts[1] else 0
        name = parts[2] if len(parts) > 2 else ""
        state = parts[3] if len(parts) > 3 else ""
        return cls(parts[0], penalty, name, state)


@dataclass(frozen=True)
class QueueConfig:
    """A queue's settings; defaults are app_queue's."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    maxlen: int = 0
    servicelevel: int = 0
    weight: int = 0
    joinempty: bool = True
    leavewhenempty: bool = False
    ringinuse: bool = True
    musicclass: str = "default"
    members: tuple[MemberConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"queue {self.name}: strategy {self.strategy!r} is not simulated")


_INT_KEYS: Final = ("timeout", "retry", "wrapuptime", "maxlen", "servicelevel", "weight")


_BOOL_KEYS: Final = ("joinempty", "leavewhenempty", "ringinuse")


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def _queue_from_pairs(name: str, pairs: Iterable[tuple[str, str]]) -> QueueConfig:
    settings: dict[str, object] = {}
    members: list[MemberConfig] = []
    for key, value in pairs:
        key = key.strip().lower().replace("-", "")
        if key == "member":
            members.append(MemberConfig.parse(value))
        elif key == "strategy":
            settings["strategy"] = value.strip().lower()
        elif key in _INT_KEYS:
            settings[key] = int(value)
        elif key in _BOOL_KEYS:
            settings[key] = _truthy(value)
        elif key == "musicclass":
            settings[key] = value.strip()
        # Every other app_queue option (announcements, rules...) is accepted and ignored.
    return QueueConfig(name=name, members=tuple(members), **settings)  # type: ignore[arg-type]


def parse_queues_conf(text: str) -> dict[str, QueueConfig]:
    """The queues of a queues.conf (``[general]`` is not a queue)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and "]" in line:
            name = line[1 : line.index("]")].strip()
            current = None if name == "general" else sections.setdefault(name, [])
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current.append((key, value.removeprefix(">").strip()))
    return {name: _queue_from_pairs(name, pairs) for name, pairs in sections.items()}


def load_queues_conf(path: str | Path) -> dict[str, QueueConfig]:
    return parse_queues_conf(Path(path).read_text(encoding="utf-8"))


def queues_from_dict(data: Mapping[str, Mapping[str, object]]) -> dict[str, QueueConfig]:
    """Queues from plain data, e.g. ``{"info": {"strategy": "leastrecent", "members":
    ["Local/agent1@agents/n,0,Agent One"]}}``; a member may also be a mapping of
    `MemberConfig`'s fields."""
    result: dict[str, QueueConfig] = {}
    for name, settings in data.items():
        pairs = [(k, str(v)) for k, v in settings.items() if k != "members"]
        config = _queue_from_pairs(name, pairs)
        members = settings.get("members", [])
        if not isinstance(members, Iterable):
            raise ValueError(f"queue {name}: members must be a list")
        result[name] = replace(config, members=tuple(member_from_data(m) for m in members))
    return result


def member_from_data(item: object) -> MemberConfig:
    if isinstance(item, str):
        return MemberConfig.parse(item)
    if isinstance(item, Mapping):
        return MemberConfig(**item)
    raise ValueError(f"not a queue member: {item!r}")
