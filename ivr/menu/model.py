"""The menu model: a parsed menu file, the nodes it is made of, and one call running through it.

A node knows how to run itself (`Node.run`) against a `Call`; the call carries the channel
(an `AgiSession` or the console), the services a node may need (hours, status service, caller
history) and what the caller has entered so far. Nodes return the id of the next node or an
`End`. Everything here is free of sockets: the channel is a `Channel` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol

from hotline.agi.session import Digits, Playback, Recording


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class MenuProblem:
    """One thing wrong with a menu file, as ``file:line: sentence``."""

    at: Location
    message: str

    def __str__(self) -> str:
        return f"{self.at}: {self.message}"


class MenuError(ValueError):
    """A menu that cannot be used; `problems` lists every error found, each with file:line."""

    def __init__(self, problems: Iterable[MenuProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.at.file, p.at.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class Channel(Protocol):
    """What the engine needs of a call's channel. `AgiSession` is one; `ConsoleChannel` (for
    ``hotline menus try``) is another."""

    call_id: str
    env: Mapping[str, str]

    async def answer(self) -> int: ...

    async def hangup(self) -> int: ...

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback: ...

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> Digits: ...

    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def exec(self, application: str, *options: str) -> int: ...

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        beep: bool = False,
        silence_s: int | None = None,
        offset_samples: int = 0,
    ) -> Recording: ...


class Hours(Protocol):
    """`hotline.hours.OpenHours` as the engine uses it."""

    def status(self, at: datetime) -> Any: ...


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What the status service said: ``found`` (with its fields), ``not_found`` or ``failure``."""

    outcome: str
    fields: Mapping[str, str] = field(default_factory=dict)


class StatusService(Protocol):
    async def get(self, path: str, seconds: float) -> LookupResult: ...


class OperatorQueue(Protocol):
    """The ACD as the ``queue`` node uses it (the controller provides it when routing is on).

    `connect` queues the caller in `group` and returns once they are done with the ACD, with
    an outcome in Asterisk's QUEUESTATUS words so menus branch the same way on either path:
    ``answered`` (an operator talked to the caller, who is back in the menu), ``timeout``
    (waited the group's longest wait), ``joinempty`` (nobody logged in), ``closed`` (out of
    the group's hours), or ``caller_gone`` (the caller hung up)."""

    async def connect(
        self,
        channel: Channel,
        group: str,
        *,
        number: str,
        priority: int,
        data: Mapping[str, str],
    ) -> str: ...


class CallbackRequests(Protocol):
    """Callbacks as the ``callback`` node uses them (the controller provides them when routing
    is on; `routing.callbacks` serves them, the menus do not import it).

    `request` books a call back to `phone` for this call in `group`, keeping the place the
    caller had in that group's queue (found by the call's id, or by `number`, its caller ID,
    once the call has left the queue). True: booked (or already booked for that phone);
    False: refused (a number that cannot be called, an unknown group, the store down)."""

    async def request(
        self,
        call_id: str,
        *,
        phone: str,
        group: str,
        number: str,
        data: Mapping[str, str],
    ) -> bool: ...


class VoiceMessages(Protocol):
    """Where a voice message goes once recorded (the ``record`` node; the controller provides
    it when routing and the recorder are on: the message is kept encrypted and becomes a work
    item, a callback of `group`, for the operators).

    `received` hands over the message Asterisk wrote at `path` for this call: `phone` is the
    number to call back (the one the caller gave, else their own), `number` their caller ID.
    True: taken in hand; False: refused (the caller then hears it was not saved)."""

    async def received(
        self,
        call_id: str,
        *,
        path: str,
        group: str,
        phone: str,
        number: str,
        data: Mapping[str, str],
    ) -> bool: ...


class CallerHistory(Protocol):
    async def seen_before(self, caller_id: str, call_id: str) -> bool: ...


@dataclass(frozen=True)
class Services:
    """What nodes may consult besides the channel. None = not available (the node then takes
    its failure path, or the condition is false)."""

    hours: Hours | None = None
    status: StatusService | None = None
    history: CallerHistory | None = None
    validators: Mapping[str, Callable[[str], object]] = field(
        default_factory=dict
    )  # truthy = valid
    say: SayFiles | None = None
    transfer_channel: str = "Local/{number}@hotline-transfer"
    recordings_dir: str = "/var/spool/asterisk/hotline-messages"
    queue_max_wait: int = 1800
    queue: OperatorQueue | None = None  # the ACD; None: Asterisk's Queue() serves groups
    # The ACD's callbacks; None: a `callback` node only keeps the request in channel variables.
    callbacks: CallbackRequests | None = None
    # The contact registry; None: the rating node says no contact number and keeps the mark
    # on the channel only.
    contacts: CallContacts | None = None
    # Voice messages' work items; None: a `record` node only leaves the file on the PBX.
    messages: VoiceMessages | None = None
    # The app's one-time codes; None: an `app_code` node goes on as if no code was keyed.
    intents: AppCodes | None = None


class AppCodes(Protocol):
    """The app's "call the hotline" codes as the ``app_code`` node uses them (the controller
    provides them when the workspace runs; the menus do not import it).

    `redeem` gives the application number a live code stands for when the calling number
    registered it, spending the code; None for anything else (never raises)."""

    async def redeem(self, caller_id: str, code: str) -> str | None: ...


class CallContacts(Protocol):
    """The contact registry as the ``rating`` node uses it (the controller provides it when
    the workspace runs; `workspace` serves it, the menus do not import it).

    `contact_number` gives the twelve digits of the contact the call opened when an operator
    answered (None: no contact, or the registry could not say); `rate` stores the caller's
    mark (1 to 5) on that contact. Neither raises: a registry that is down costs the caller
    nothing but the number."""

    async def contact_number(self, call_id: str) -> str | None: ...

    async def rate(self, call_id: str, mark: int) -> None: ...

    async def route(self, digits: str, caller_id: str) -> ContactRoute | None: ...


class ContactRoute(Protocol):
    """Where a caller who keyed in a contact number goes: the contact's group, the operator
    who owns it (rung first if ready), and whether the calling number is the contact's own
    (only then the caller's priority rises, so a guessed number jumps no queue)."""

    @property
    def group(self) -> str: ...

    @property
    def operator_id(self) -> str | None: ...

    @property
    def priority(self) -> bool: ...

    @property
    def printed(self) -> str: ...


class SayFiles(Protocol):
    """`hotline.say_ru` as a value: sound files for numbers, digits, dates and times."""

    def number_files(self, n: int, gender: Any = "m") -> list[str]: ...

    def digit_files(self, s: str) -> list[str]: ...

    def date_files(self, d: Any) -> list[str]: ...

    def time_files(self, t: Any) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class End:
    """Where a call left the menu.

    kind: ``queue`` (detail = group), ``transfer`` (detail = number), ``hangup`` (the menu
    hung up), ``caller_hangup`` (the caller left). outcome: what the call log records.
    """

    kind: str
    detail: str = ""
    outcome: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}".strip()


class Step(NamedTuple):
    """One line of a call's path: what the caller heard or did, for ``hotline menus try``
    and tests. A named tuple: a call notes a dozen or more, and a tuple is the cheapest
    immutable value to make."""

    kind: str  # play | input | timeout | invalid | set | lookup | queue | transfer | hangup ...
    detail: str
    node: str

    def __str__(self) -> str:
        return f"[{self.node}] {self.kind} {self.detail}".rstrip()


Next = str | End


class Node(Protocol):
    """One node of a menu. Each kind lives in its own module under `ivr.nodes`."""

    kind: ClassVar[str]

    @property
    def id(self) -> str: ...

    @property
    def at(self) -> Location:
        """Where the node is named in its file."""
        ...

    def targets(self) -> Iterable[tuple[str, Location]]:
        """The node ids this node may continue to, each with where it is written."""
        ...

    def prompts(self) -> Iterable[tuple[str, Location]]:
        """The prompt files this node plays."""
        ...

    def run(self, call: Call) -> Next | Awaitable[Next]:
        """The next node or the end. A node that talks to the caller or a service returns
        an awaitable (an ``async def run``); one that only decides (set, goto, most
        conditions) returns its answer at once: no coroutine to make, start and finish."""
        ...


@dataclass(frozen=True)
class Menu:
    """One number's menu file."""

    number: str
    title: str
    group: str  # the operator group of last resort (step limit, broken flow)
    start: str
    nodes: Mapping[str, Node]
    file: str
    hours_ref: tuple[str, Location] | None = None
    calendar_ref: tuple[str, Location] | None = None
    start_at: Location | None = None

    @cached_property
    def written_values(self) -> frozenset[tuple[str, str]]:
        """(variable, value) as the menu's set nodes write them, with no ``${...}`` in the
        value: texts of the menu file, which may be kept beyond a call (`ivr.menu.resume`)."""
        pairs: set[tuple[str, str]] = set()
        for node in self.nodes.values():
            values: Mapping[str, str] = getattr(node, "values", {}) if node.kind == "set" else {}
            pairs.update((name, value) for name, value in values.items() if "${" not in value)
        return frozenset(pairs)


class ObservedPath(list[Step]):
    """A call's path that tells `observer` each step as it is noted (``hotline menus try``,
    debug logging): nodes note a step with a plain `append`, which only a watched call pays
    for, and append steps worked out when the menu was loaded (`ivr.nodes.common.Cue`)."""

    __slots__ = ("observer",)

    def __init__(self, observer: Callable[[Step], None]) -> None:
        super().__init__()
        self.observer = observer

    def append(self, step: Step) -> None:
        super().append(step)
        self.observer(step)


_new_step = tuple.__new__
_NO_SYSTEM: Mapping[str, str] = MappingProxyType({})
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@lru_cache(maxsize=1024)
def _template(text: str) -> tuple[str, ...]:
    """A menu's text with ``${name}`` in it, split once: text, name, text, ..., text. Only
    menu texts are split (prompt names, values of set nodes, lookup paths), never what a
    caller entered."""
    return tuple(_VARIABLE.split(text))


class Call:
    """One call going through a menu: the channel, the moment it runs at, what was entered.

    A plain class with slots and its own `__init__`: the dataclass one calls a factory for
    each container, and a call is made for every call the engine runs."""

    __slots__ = (
        "caller_id",
        "channel",
        "facts",
        "hours_status",
        "menu",
        "node",
        "now",
        "path",
        "pending",
        "personal",
        "queued",
        "services",
        "system",
        "variables",
    )

    def __init__(
        self,
        channel: Channel,
        menu: Menu,
        services: Services,
        now: datetime,
        caller_id: str = "",
        path: list[Step] | None = None,
    ) -> None:
        self.channel = channel
        self.menu = menu
        self.services = services
        self.now = now
        self.caller_id = caller_id
        # What the menu and the caller put: set nodes, entries, lookup answers (a checkpoint
        # carries these as they are).
        self.variables: dict[str, str] = {}
        # What the engine fills in itself (`ivr.nodes.common.SYSTEM_VARIABLES`: the number
        # dialled, the opening times), read after `variables`; shared by the calls of one
        # menu and stretch of the day, so never written to.
        self.system: Mapping[str, str] = _NO_SYSTEM
        self.personal: set[str] = set()  # variables holding personal data
        self.pending = ""  # digits pressed during a prompt, for the node that reads next
        # The steps so far; an `ObservedPath` when someone watches them (nodes simply append).
        self.path: list[Step] = [] if path is None else path
        self.node = ""
        self.queued: tuple[str, str] | None = None  # (group, outcome) once the caller was queued
        self.hours_status: Any = None  # the opening-hours status, computed once per call
        # The hours tests that hold at the call's moment (`ivr.nodes.condition.hours_facts`),
        # filled in by the engine as the call starts; None until then.
        self.facts: frozenset[str] | None = None

    def note(self, kind: str, detail: str = "") -> None:
        self.path.append(_new_step(Step, (kind, detail, self.node)))  # Step(...), no frame

    def expand(self, text: str) -> str:
        """``${name}`` replaced by the variable's value (empty when unset)."""
        if "${" not in text:
            return text
        parts = _template(text)
        return "".join([part if i % 2 == 0 else self.value(part) for i, part in enumerate(parts)])

    def value(self, name: str) -> str:
        """A variable's value: the menu's or the caller's, else the engine's, else empty."""
        value = self.variables.get(name)
        return self.system.get(name, "") if value is None else value

    def hours(self) -> Any | None:
        """The opening-hours status at the call's moment, or None without a schedule."""
        if self.services.hours is None:
            return None
        if self.hours_status is None:
            self.hours_status = self.services.hours.status(self.now)
        return self.hours_status
