"""What several node kinds share: playing a prompt list, reading one key, passing the caller's
entries on to Asterisk as channel variables."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from hotline.agi.session import Playback
from ivr.menu.fields import DTMF_KEYS
from ivr.menu.model import Call, Location, Step

Prompts = tuple[tuple[str, Location], ...]
# Variables the engine fills in itself; they are not the caller's entries.
SYSTEM_VARIABLES = frozenset({"did", "caller_id", "opens_at", "opens_date", "closes_at"})


# A prompt as a node plays it, worked out when the menu is loaded: the nodes every call goes
# through (play, menu, rating, hangup) stream their prompts from these. (name as written in
# the menu, fixed: no ``${...}`` in it so streamed as written, the step the call's path notes
# once it has played.) A plain tuple, unpacked in the nodes' loops: a named tuple's fields
# are read through descriptors, several times per prompt of every call.
Cue = tuple[str, bool, Step]


class KeySteps(dict[str, Step]):
    """``Step(kind, key, node_id)`` for every phone key, made when the menu is loaded: a node
    notes the key a caller pressed with ``call.path.append(steps[key])`` rather than making
    a step each time. Any other key (a strange reply) gets its step made then, not kept."""

    __slots__ = ("kind", "node_id")

    def __init__(self, kind: str, node_id: str) -> None:
        super().__init__((key, Step(kind, key, node_id)) for key in sorted(DTMF_KEYS))
        self.kind, self.node_id = kind, node_id

    def __missing__(self, key: str) -> Step:
        return Step(self.kind, key, self.node_id)


def cues(node_id: str, prompts: Prompts) -> tuple[Cue, ...]:
    return tuple((name, "${" not in name, Step("play", name, node_id)) for name, _ in prompts)


def asking_parts(node_id: str, prompts: Prompts, timeout: float, retries: int) -> dict[str, object]:
    """What a node that asks for a key (menu, rating) makes when the menu is loaded, by the
    field names both give it: its prompts' cues, its timeout in ms, its attempts (a range
    made once, not at every call) and the steps it notes."""
    return {
        "_cues": cues(node_id, prompts),  # see `Cue`
        "_timeout_ms": int(timeout * 1000),
        "_attempts": range(retries),
        "_inputs": KeySteps("input", node_id),
        "_invalids": KeySteps("invalid", node_id),
        "_timed_out": Step("timeout", "", node_id),
    }


async def play(call: Call, prompts: Prompts, escape: str = "") -> str | None:
    """Play prompts in order; stop at the first escape digit pressed and return it."""
    channel = call.channel
    for name, _ in prompts:
        digit = heard(call, name, await channel.stream_file(call.expand(name), escape))
        if digit is not None:
            return digit
    return None


def heard(call: Call, name: str, played: Playback) -> str | None:
    """Note that prompt `name` played, and the key that stopped it (returned), if any."""
    call.note("play", name)
    digit = played.digit
    if digit is not None:
        call.note("input", digit)
    return digit


@lru_cache(maxsize=1024)
def channel_variable(name: str) -> str:
    """``application`` -> ``HOTLINE_APPLICATION``: how the operator's screen reads an entry.
    (Names are the menus' variable names, a few dozen: each is worked out once.)"""
    return "HOTLINE_" + "".join(c if c.isalnum() else "_" for c in name).upper()


def exported_names(call: Call) -> list[str]:
    """The variables `export_variables` sets when no names are given: every entry that is
    not the engine's own."""
    return sorted(set(call.variables) - SYSTEM_VARIABLES)


async def export_variables(call: Call, names: Iterable[str] | None = None) -> None:
    """Set what the caller entered as channel variables, so it travels with the call (the
    set ones of `names`, else of `exported_names`)."""
    for name in names if names is not None else exported_names(call):
        if value := call.value(name):
            await call.channel.set_variable(channel_variable(name), value)
