"""``queue``: the caller waits for an operator of a skill group.

    operator:
      kind: queue
      group: general
      priority: 0           # higher is answered sooner (app_queue's QUEUE_PRIO)
      data: [application]   # entries shown on the operator's screen (default: all)
      then_rating: rate     # optional: after the operator hangs up, the rating node
      otherwise: no-agents  # optional: nobody answered (timeout, empty or full queue)

The entries go as channel variables ``HOTLINE_<NAME>`` (with HOTLINE_GROUP; the entry set
HOTLINE_DID on answering), which the operator's screen reads.

With the ACD on (``[routing] enabled``, `Services.queue` set) the caller waits in the
controller's ACD, which dials the chosen operator from this call's own session; the ACD's
outcome uses the same words as QUEUESTATUS (answered, timeout, joinempty, closed), so the
branches below work the same on both paths. Otherwise Asterisk's Queue() runs, always with
option ``c``: when the operator hangs up the call comes back (QUEUESTATUS=CONTINUE), so the call log
knows it was answered and, with `then_rating`, the caller can rate the conversation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from hotline.agi.session import CallerHungUp
from ivr.menu.fields import FieldError, Fields, scalar_text
from ivr.menu.model import Call, End, Location, Next, Step
from ivr.nodes.common import SYSTEM_VARIABLES, channel_variable, exported_names


def queue_outcome(queue_status: str | None) -> str:
    """What became of the call once ``Queue()`` returned. app_queue sets QUEUESTATUS only when
    nobody answered (TIMEOUT, FULL, JOINEMPTY, ...); an answered call leaves it unset, or, with
    option ``c``, sets CONTINUE once the operator has hung up and the caller goes on."""
    if not queue_status or queue_status == "CONTINUE":
        return "answered"
    return queue_status.lower()


@dataclass(frozen=True)
class QueueNode:
    kind: ClassVar[str] = "queue"
    id: str
    at: Location
    group: str
    priority: int
    data: tuple[str, ...] | None
    then_rating: tuple[str, Location] | None
    otherwise: tuple[str, Location] | None
    # Where the caller waits, worked out when the menu is loaded (see `QueueTarget`).
    _target: QueueTarget = field(init=False, repr=False, compare=False)
    # By outcome, what `_outcome` made for it.
    _outcomes: dict[str, tuple[tuple[str, str], Step]] = field(
        init=False, repr=False, compare=False
    )

    # `_went_on`, bound once: what `wait_in_queue` calls with the outcome.
    _then: Callable[[Call, str], Next] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_target", QueueTarget.of(self.group, self.priority, self.data))
        object.__setattr__(self, "_outcomes", {})
        object.__setattr__(self, "_then", self._went_on)

    def _outcome(self, outcome: str) -> tuple[tuple[str, str], Step]:
        """The call's `queued` and the step its path notes for `outcome`, made once per
        outcome (a few words: app_queue's and the ACD's) and the same values for every call
        after, which the checkpoints then find unchanged at a glance."""
        queued = ((self.group, outcome), Step("queue", f"{self.group}: {outcome}", self.id))
        if len(self._outcomes) < _MAX_OUTCOMES:
            self._outcomes[outcome] = queued
        return queued

    def targets(self) -> Iterable[tuple[str, Location]]:
        return tuple(t for t in (self.then_rating, self.otherwise) if t is not None)

    def prompts(self) -> Iterable[tuple[str, Location]]:
        return ()

    def run(self, call: Call) -> Awaitable[Next]:
        # No coroutine of its own: the queue's, which ends with `_went_on` (every command
        # of the wait is awaited through each coroutine between it and the session).
        return wait_in_queue(call, self._target, self._then)

    def _went_on(self, call: Call, outcome: str) -> Next:
        """Where the call goes once the queue is over, `outcome` noted."""
        made = self._outcomes.get(outcome)
        queued, step = self._outcome(outcome) if made is None else made
        call.queued = queued
        call.path.append(step)
        if outcome == "answered":
            if self.then_rating is not None:
                return self.then_rating[0]
            return End("queue", self.group, outcome)
        if self.otherwise is not None:
            return self.otherwise[0]
        return End("queue", self.group, outcome)


# asterisk-conf/queues.conf names each skill group's queue "hotline-<group>": a queue cannot be
# called "general" there, that name is the file's settings section.
ASTERISK_QUEUE_PREFIX = "hotline-"
# Outcomes a queue node keeps the values of (`QueueNode._outcome`): more are made each time.
_MAX_OUTCOMES = 32


def asterisk_queue(group: str) -> str:
    """The Asterisk queue that serves a skill group."""
    return ASTERISK_QUEUE_PREFIX + group


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """Where a caller waits and what goes with them, as `wait_in_queue` uses it: made once
    per queue node when the menu is loaded, so that no call works out the Asterisk queue's
    name or the entries' channel variable names again."""

    group: str
    priority: int
    data: tuple[str, ...] | None  # the entries that go with the caller (None: all of them)
    asterisk_queue: str
    # (entry, its channel variable) for each of `data`; None: worked out per call
    tags: tuple[tuple[str, str], ...] | None

    @classmethod
    def of(cls, group: str, priority: int, data: Iterable[str] | None) -> QueueTarget:
        names = None if data is None else tuple(data)
        tags = None if names is None else tuple((name, channel_variable(name)) for name in names)
        return cls(group, priority, names, asterisk_queue(group), tags)


async def enqueue(
    call: Call,
    group: str,
    priority: int,
    data: Iterable[str] | None,
    *,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Tag the call for the operator's screen and wait for an operator: in the ACD when the
    controller provides one, else in Asterisk's Queue(). Returns the outcome
    (`queue_outcome`'s words); raises `CallerHungUp` when the caller left while waiting.
    `extra` goes to the ACD with the caller's entries (a contact number, a preferred
    operator) without becoming channel variables."""
    target = QueueTarget.of(group, priority, data)
    return await wait_in_queue(call, target, _outcome_itself, extra=extra)


def _outcome_itself(call: Call, outcome: str) -> str:
    return outcome


Then = TypeVar("Then")


async def wait_in_queue(
    call: Call,
    target: QueueTarget,
    then: Callable[[Call, str], Then],
    *,
    extra: Mapping[str, str] | None = None,
) -> Then:
    """`enqueue`, whose outcome is given to `then`: what `then` makes of it is returned."""
    channel, variables = call.channel, call.variables
    tags = target.tags
    if tags is None:
        tags = tuple((name, channel_variable(name)) for name in exported_names(call))
    # `export_variables` written out, `Call.value` too: no coroutine nor call for them
    for name, variable in tags:
        value = variables.get(name)
        if value is None:
            value = call.system.get(name, "")
        if value:
            await channel.set_variable(variable, value)
    group = target.group
    await channel.set_variable("HOTLINE_GROUP", group)
    acd = call.services.queue
    if acd is not None:
        outcome = await acd.connect(
            channel,
            group,
            number=call.caller_id,
            priority=target.priority,
            # the line and menu path go with the entries to the operator's screen pop
            data={**operator_data(call, target.data), **call_context(call), **(extra or {})},
        )
        if outcome == "caller_gone":
            raise CallerHungUp()
        return then(call, outcome)
    if target.priority:
        await channel.set_variable("QUEUE_PRIO", str(target.priority))
    max_wait = str(call.services.queue_max_wait)
    await channel.exec("Queue", target.asterisk_queue, "tc", "", "", max_wait)
    status = await channel.get_variable("QUEUESTATUS")
    # `queue_outcome`, its answered case written out: the outcome of most calls
    return then(call, "answered" if status is None else queue_outcome(status))


def operator_data(call: Call, names: Iterable[str] | None) -> dict[str, str]:
    """What the caller entered that goes with them to the operator (the node's `data`, or
    every entry that is not the engine's own)."""
    chosen = names if names is not None else sorted(set(call.variables) - SYSTEM_VARIABLES)
    return {name: value for name in chosen if (value := call.value(name))}


def call_context(call: Call) -> dict[str, str]:
    """The line dialled and the menu path so far (node ids), never what the caller keyed."""
    context = {"line": call.value("did")}
    nodes = [step.node for step in call.path if step.node]
    context["menu_path"] = " > ".join(dict.fromkeys(nodes))
    return {name: value for name, value in context.items() if value}


def parse_data_names(node_id: str, fields: Fields) -> tuple[str, ...] | None:
    """The node's `data`: which of the caller's entries go with them to the operator."""
    if not fields.has("data"):
        return None
    names = [scalar_text(item) for item in fields.sequence("data")]
    if any(not name for name in names):
        raise FieldError(fields.key_at("data"), f"node '{node_id}': data: variable names")
    return tuple(name for name in names if name)


def parse(node_id: str, fields: Fields) -> QueueNode:
    data = parse_data_names(node_id, fields)
    return QueueNode(
        id=node_id,
        at=fields.at,
        group=fields.text("group"),
        priority=fields.whole("priority", 0, 0, 10),
        data=data,
        then_rating=fields.optional_target("then_rating"),
        otherwise=fields.optional_target("otherwise"),
    )
