"""Scenario files: which calls the simulated PBX places, and the agents behind its queues.

A scenario is a plain YAML file (examples in ``pbxsim/scenarios/``)::

    name: smoke
    seed: 7                       # random DTMF and Poisson arrivals repeat run after run
    pbx:                          # optional; every key has a default
      epoch: 1795563091           # uniqueids are <epoch>.<n>; default: the time of the run
      language: ru
    calls:
      - number: "88001000001"     # the dialled number (the DID)
        caller_id: "79161234567"  # null: no caller ID
        name: "Иванов Иван"
        dtmf: [{at: 2, digits: "1"}, {at: 4.5, digits: "123456#"}]
        hangup_after: 20          # patience, seconds after the call arrives
        count: 10
        arrival_rate: 5           # calls per second
    agents:                       # for the queue half of the simulator
      - {name: agent1, interface: Local/agent1@agents/n, queues: [info], talk_time: 30}

Instead of ``dtmf`` a call may take ``random_dtmf`` ({digits, presses, start, min_gap,
max_gap}), or a whole ``script`` of dialplan steps (``Wait(2)``, ``SendDTMF(1)``,
``Hangup()``). ``menu_keys: "20"`` is a caller who listens: each key is pressed when a menu
asks for one. ``hangup_after_commands`` and ``hangup_during_command`` hang up at a given AGI
command instead of a given time. ``agents`` and ``queues`` are for the queue half: ``queues``
is kept as plain data (what `pbxsim.queues.queues_from_dict` reads) and each agent maps
onto a queue member and the operator behind it.

The file is read with `hotline.yamldoc`; a mistake is a `YamlFileError` naming the file, the
line of the offending node and the key path:
``load.yaml:12: calls[0].dtmf[1].at: expected a number, got 'soon'``.
"""

from __future__ import annotations

import difflib
import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

from yaml import YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hotline.yamldoc import (
    Problem,
    YamlFileError,
    compose_file,
    compose_text,
    construct,
    construct_scalar,
    line_of,
)
from pbxsim.callers import (
    DTMF_DIGITS,
    CallerScript,
    CallerScriptError,
    CallSpec,
    DtmfPress,
    merge_presses,
    random_presses,
    script_from_dialplan,
    send_dtmf,
)

T = TypeVar("T")

CHANNEL_FIELDS: Final = frozenset({"number", "seq", "index", "uniqueid"})
URL_FIELDS: Final = frozenset({"number", "seq", "index", "uniqueid", "host", "port"})


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PbxSettings:
    """How the simulated PBX names and runs calls (the ``pbx:`` section)."""

    epoch: int | None = None
    context: str = "from-pstn"
    channel: str = "Local/{number}@from-pstn-{seq:08x};2"
    channel_type: str = "Local"
    language: str = "ru"
    agi_url: str = "agi://{host}:{port}/hotline?did={number}"
    accountcode: str = ""
    max_call_seconds: float = 3600.0  # every call ends by then, whatever the controller does
    sounds: Mapping[str, float] = field(default_factory=dict)  # seconds per sound file
    missing_sounds: tuple[str, ...] = ()
    default_sound_seconds: float = 2.0


@dataclass(frozen=True)
class DtmfStep:
    """``SendDTMF(digits)`` started `at` seconds after the call arrives."""

    at: float
    digits: str
    gap: float = 0.25
    tone: float = 0.1


@dataclass(frozen=True)
class RandomDtmf:
    digits: str
    presses: int
    start: float = 1.0
    min_gap: float = 0.5
    max_gap: float = 3.0


@dataclass(frozen=True)
class CallGroup:
    """`count` alike calls (one item of ``calls:``)."""

    number: str
    caller_id: str | None = None
    name: str | None = None
    dtmf: tuple[DtmfStep, ...] = ()
    random_dtmf: RandomDtmf | None = None
    script: tuple[str, ...] = ()
    hangup_after: float | None = None
    hangup_after_commands: int | None = None
    hangup_during_command: int | None = None
    menu_keys: str = ""  # pressed one by one as the menus ask (CallerScript.menu_keys)
    count: int = 1
    arrival_rate: float | None = None
    arrivals: str = "uniform"
    start: float = 0.0
    agi_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentSpec:
    """A queue member the queue half simulates (a softphone behind a Local channel)."""

    name: str
    interface: str
    queues: tuple[str, ...] = ()
    ring_delay: float = 2.0
    talk_time: float = 30.0
    answers: bool = True


@dataclass(frozen=True)
class PlannedCall:
    """One call of a run: when it arrives and who makes it."""

    index: int
    group: int
    arrival: float
    spec: CallSpec
    agi_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    calls: tuple[CallGroup, ...]
    agents: tuple[AgentSpec, ...] = ()
    queues: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pbx: PbxSettings = field(default_factory=PbxSettings)
    name: str = ""
    seed: int = 1
    source: str = "<scenario>"

    def plan(self) -> list[PlannedCall]:
        """Every call of the run in arrival order, numbered from 0 in that order."""
        rng = random.Random(self.seed)
        drafts: list[tuple[float, int, int, CallSpec, tuple[str, ...]]] = []
        for g, group in enumerate(self.calls):
            for n, arrival in enumerate(_arrivals(group, rng)):
                spec = CallSpec(group.number, group.caller_id, group.name, self._script(group, rng))
                drafts.append((arrival, g, n, spec, group.agi_args))
        drafts.sort(key=lambda d: (d[0], d[1], d[2]))
        return [
            PlannedCall(index, g, arrival, spec, args)
            for index, (arrival, g, _, spec, args) in enumerate(drafts)
        ]

    def _script(self, group: CallGroup, rng: random.Random) -> CallerScript:
        if group.script:
            script = script_from_dialplan(group.script)
        else:
            script = CallerScript(_presses(group, rng), group.hangup_after)
        script = CallerScript(
            script.presses,
            script.hangup_at,
            group.hangup_after_commands,
            group.hangup_during_command,
            menu_keys=group.menu_keys,
        )
        return script.with_patience(self.pbx.max_call_seconds)


def _presses(group: CallGroup, rng: random.Random) -> tuple[DtmfPress, ...]:
    bursts = [send_dtmf(s.at, s.digits, gap=s.gap, tone=s.tone) for s in group.dtmf]
    if group.random_dtmf is not None:
        r = group.random_dtmf
        bursts.append(
            random_presses(
                rng,
                digits=r.digits,
                presses=r.presses,
                start=r.start,
                min_gap=r.min_gap,
                max_gap=r.max_gap,
            )
        )
    return merge_presses(*bursts)


def _arrivals(group: CallGroup, rng: random.Random) -> list[float]:
    if not group.arrival_rate:
        return [group.start] * group.count
    if group.arrivals == "poisson":
        at, times = group.start, []
        for _ in range(group.count):
            times.append(at)
            at += rng.expovariate(group.arrival_rate)
        return times
    return [group.start + n / group.arrival_rate for n in range(group.count)]


# --- loading -----------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; raises `YamlFileError` (``file:line: ...``)."""
    return _Reader(str(path)).scenario(compose_file(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Check a scenario given as YAML text; `source` names it in error messages."""
    return _Reader(source).scenario(compose_text(text, source))


class _Reader:
    """Walks the YAML node tree, so every error can point at its line."""

    def __init__(self, source: str) -> None:
        self.source = source

    # -- the sections -------------------------------------------------------------------

    def scenario(self, node: Node) -> Scenario:
        keys = self.mapping(
            node, "", {"name", "seed", "pbx", "calls", "agents", "queues"}, required={"calls"}
        )
        calls = self.items(keys["calls"], "calls", self.call, non_empty=True)
        return Scenario(
            calls=tuple(calls),
            agents=tuple(self.items(keys["agents"], "agents", self.agent))
            if "agents" in keys
            else (),
            queues=self.queues(keys["queues"]) if "queues" in keys else {},
            pbx=self.pbx(keys["pbx"]) if "pbx" in keys else PbxSettings(),
            name=self.text(keys["name"], "name") if "name" in keys else "",
            seed=self.integer(keys["seed"], "seed") if "seed" in keys else 1,
            source=self.source,
        )

    def call(self, node: Node, path: str) -> CallGroup:
        fields = {f for f in CallGroup.__dataclass_fields__}
        keys = self.mapping(node, path, fields, required={"number"})
        self.exclusive(keys, path, "script", ("dtmf", "random_dtmf", "hangup_after"))
        get = _Getter(keys, path)
        group = CallGroup(
            number=self.phone(keys["number"], f"{path}.number"),
            caller_id=get(self.optional_phone, "caller_id", None),
            name=get(self.optional_text, "name", None),
            dtmf=tuple(get(lambda n, p: self.items(n, p, self.dtmf_step), "dtmf", [])),
            random_dtmf=get(self.random_dtmf, "random_dtmf", None),
            script=tuple(get(self.script, "script", [])),
            hangup_after=get(self.positive, "hangup_after", None),
            hangup_after_commands=get(self.count_from(0), "hangup_after_commands", None),
            hangup_during_command=get(self.count_from(1), "hangup_during_command", None),
            menu_keys=get(self.digits, "menu_keys", ""),
            count=get(self.count_from(1), "count", 1),
            arrival_rate=get(self.positive, "arrival_rate", None),
            arrivals=get(self.choice("uniform", "poisson"), "arrivals", "uniform"),
            start=get(self.non_negative, "start", 0.0),
            agi_args=tuple(get(lambda n, p: self.items(n, p, self.text), "agi_args", [])),
        )
        return group

    def dtmf_step(self, node: Node, path: str) -> DtmfStep:
        keys = self.mapping(node, path, {"at", "digits", "gap", "tone"}, required={"at", "digits"})
        get = _Getter(keys, path)
        return DtmfStep(
            at=self.non_negative(keys["at"], f"{path}.at"),
            digits=self.digits(keys["digits"], f"{path}.digits"),
            gap=get(self.non_negative, "gap", 0.25),
            tone=get(self.positive, "tone", 0.1),
        )

    def random_dtmf(self, node: Node, path: str) -> RandomDtmf:
        keys = self.mapping(
            node,
            path,
            {"digits", "presses", "start", "min_gap", "max_gap"},
            required={"digits", "presses"},
        )
        get = _Getter(keys, path)
        result = RandomDtmf(
            digits=self.digits(keys["digits"], f"{path}.digits"),
            presses=self.count_from(0)(keys["presses"], f"{path}.presses"),
            start=get(self.non_negative, "start", 1.0),
            min_gap=get(self.non_negative, "min_gap", 0.5),
            max_gap=get(self.non_negative, "max_gap", 3.0),
        )
        if result.max_gap < result.min_gap:
            raise self.error(node, path, "max_gap must not be smaller than min_gap")
        return result

    def script(self, node: Node, path: str) -> list[str]:
        steps = self.items(node, path, self.text)
        try:
            script_from_dialplan(steps)
        except CallerScriptError as exc:
            raise self.error(node, path, str(exc)) from None
        return steps

    def agent(self, node: Node, path: str) -> AgentSpec:
        fields = set(AgentSpec.__dataclass_fields__)
        keys = self.mapping(node, path, fields, required={"name", "interface"})
        get = _Getter(keys, path)
        return AgentSpec(
            name=self.text(keys["name"], f"{path}.name"),
            interface=self.text(keys["interface"], f"{path}.interface"),
            queues=tuple(get(lambda n, p: self.items(n, p, self.text), "queues", [])),
            ring_delay=get(self.non_negative, "ring_delay", 2.0),
            talk_time=get(self.positive, "talk_time", 30.0),
            answers=get(self.boolean, "answers", True),
        )

    def queues(self, node: Node) -> dict[str, dict[str, Any]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, "queues", "expected a mapping of queue names to settings")
        result: dict[str, dict[str, Any]] = {}
        for key_node, value_node in node.value:
            name = self.text(key_node, "queues")
            if not isinstance(value_node, MappingNode):
                raise self.error(value_node, f"queues.{name}", "expected a mapping of settings")
            settings = construct(value_node)
            result[name] = {str(key): value for key, value in settings.items()}
        return result

    def pbx(self, node: Node) -> PbxSettings:
        fields = set(PbxSettings.__dataclass_fields__)
        keys = self.mapping(node, "pbx", fields)
        get = _Getter(keys, "pbx")
        defaults = PbxSettings()
        return PbxSettings(
            epoch=get(self.count_from(0), "epoch", None),
            context=get(self.text, "context", defaults.context),
            channel=get(self.template(CHANNEL_FIELDS), "channel", defaults.channel),
            channel_type=get(self.text, "channel_type", defaults.channel_type),
            language=get(self.text, "language", defaults.language),
            agi_url=get(self.template(URL_FIELDS), "agi_url", defaults.agi_url),
            accountcode=get(self.text, "accountcode", ""),
            max_call_seconds=get(self.positive, "max_call_seconds", defaults.max_call_seconds),
            sounds=MappingProxyType(get(self.sounds, "sounds", {})),
            missing_sounds=tuple(
                get(lambda n, p: self.items(n, p, self.text), "missing_sounds", [])
            ),
            default_sound_seconds=get(self.positive, "default_sound_seconds", 2.0),
        )

    def sounds(self, node: Node, path: str) -> dict[str, float]:
        if not isinstance(node, MappingNode):
            raise self.error(node, path, "expected a mapping of sound names to seconds")
        return {self.text(k, path): self.positive(v, f"{path}.{k.value}") for k, v in node.value}

    # -- shapes -------------------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        allowed: set[str] | frozenset[str],
        required: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.error(node, path or "scenario", "expected a mapping")
        keys: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key not in allowed:
                raise self.error(key_node, where, "unknown key" + _hint(key, allowed))
            if key in keys:
                raise self.error(key_node, where, "duplicate key")
            keys[key] = value_node
        missing = sorted(required - keys.keys())
        if missing:
            raise self.error(node, path or "scenario", f"missing required key {missing[0]!r}")
        return keys

    def items(
        self, node: Node, path: str, read: Callable[[Node, str], T], non_empty: bool = False
    ) -> list[T]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, path, "expected a list")
        if non_empty and not node.value:
            raise self.error(node, path, "must not be empty")
        return [read(item, f"{path}[{n}]") for n, item in enumerate(node.value)]

    def exclusive(
        self, keys: Mapping[str, Node], path: str, key: str, others: tuple[str, ...]
    ) -> None:
        clash = [o for o in others if o in keys]
        if key in keys and clash:
            raise self.error(
                keys[clash[0]], f"{path}.{clash[0]}", f"cannot be combined with {key!r}"
            )

    # -- scalars ------------------------------------------------------------------------

    def value(self, node: Node, path: str) -> Any:
        if not isinstance(node, ScalarNode):
            raise self.error(node, path, "expected a single value, not a list or mapping")
        try:
            return construct_scalar(node)
        except YAMLError as exc:  # an unsafe or unknown tag such as !!python/name
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error(node, path, problem) from None

    def text(self, node: Node, path: str) -> str:
        """Free text: what the file says, even if YAML would read it as a number."""
        value = self.value(node, path)
        if value is None:
            raise self.error(node, path, "expected text, got nothing")
        return str(node.value)

    def optional_text(self, node: Node, path: str) -> str | None:
        return None if self.value(node, path) is None else str(node.value)

    def phone(self, node: Node, path: str) -> str:
        # The source text, not YAML's reading: 0123 must not turn into the octal number 83.
        number = self.text(node, path)
        if not number.strip():
            raise self.error(node, path, "must not be empty")
        return number

    def optional_phone(self, node: Node, path: str) -> str | None:
        return None if self.value(node, path) is None else self.phone(node, path)

    def digits(self, node: Node, path: str) -> str:
        digits = self.text(node, path)
        bad = sorted(set(digits) - DTMF_DIGITS)
        if bad:
            raise self.error(node, path, f"not DTMF digits: {''.join(bad)!r}")
        return digits

    def number(self, node: Node, path: str) -> float:
        value = self.value(node, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(node, path, f"expected a number, got {node.value!r}")
        return float(value)

    def positive(self, node: Node, path: str) -> float:
        value = self.number(node, path)
        if value <= 0:
            raise self.error(node, path, f"must be greater than 0, got {node.value}")
        return value

    def non_negative(self, node: Node, path: str) -> float:
        value = self.number(node, path)
        if value < 0:
            raise self.error(node, path, f"must not be negative, got {node.value}")
        return value

    def integer(self, node: Node, path: str) -> int:
        value = self.value(node, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(node, path, f"expected a whole number, got {node.value!r}")
        return value

    def count_from(self, low: int) -> Callable[[Node, str], int]:
        def read(node: Node, path: str) -> int:
            value = self.integer(node, path)
            if value < low:
                raise self.error(node, path, f"must be at least {low}, got {value}")
            return value

        return read

    def boolean(self, node: Node, path: str) -> bool:
        value = self.value(node, path)
        if not isinstance(value, bool):
            raise self.error(node, path, f"expected true or false, got {node.value!r}")
        return value

    def choice(self, *options: str) -> Callable[[Node, str], str]:
        def read(node: Node, path: str) -> str:
            value = self.text(node, path)
            if value not in options:
                raise self.error(node, path, f"must be one of {', '.join(options)}")
            return value

        return read

    def template(self, allowed: frozenset[str]) -> Callable[[Node, str], str]:
        def read(node: Node, path: str) -> str:
            text = self.text(node, path)
            problem = _template_problem(text, allowed)
            if problem:
                raise self.error(node, path, problem)
            return text

        return read

    def error(self, node: Node, path: str, message: str) -> YamlFileError:
        return YamlFileError([Problem(self.source, line_of(node), f"{path}: {message}")])


class _Getter:
    """Reads an optional key with its default."""

    def __init__(self, keys: Mapping[str, Node], path: str) -> None:
        self._keys = keys
        self._path = path

    def __call__(self, read: Callable[[Node, str], Any], key: str, default: Any) -> Any:
        node = self._keys.get(key)
        return default if node is None else read(node, f"{self._path}.{key}")


def _hint(key: object, allowed: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
    return (
        f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(allowed))}"
    )


def _template_problem(text: str, allowed: frozenset[str]) -> str | None:
    """What is wrong with a ``{field}`` template, or None; only plain known fields pass."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        return f"not a valid template: {exc}"
    for name in fields:
        if name not in allowed:
            return f"unknown field {{{name}}}; use {', '.join(sorted(allowed))}"
    try:
        text.format(number="0", seq=0, index=0, uniqueid="0.0", host="h", port=1)
    except (ValueError, TypeError) as exc:
        return f"not a valid template: {exc}"
    return None
