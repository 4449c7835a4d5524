"""Where a handed-back call resumes its menu: checkpoints carried on the caller's channel.

A controller that stops or dies mid-call hands the caller back to the dialplan, which runs
the AGI again on whichever controller is up (asterisk-conf/extensions.conf, [from-pstn]). So
that the caller is not greeted again nor asked again for what they typed, the engine leaves a
checkpoint on the channel (``HOTLINE_RESUME``, a `hotline.agi.carry` value: Asterisk keeps a
channel's variables across its AGI() calls) and the next controller reads it back.

The safe-node rule: a checkpoint is taken

* on entering a node that asks the caller something or makes them wait (`SAFE_KINDS`: menu,
  collect, queue, rating): the call resumes by asking again or queueing again;
* on entering any node once the call's state changed since the last checkpoint (a collect
  accepted an entry, a lookup answered, a set node ran, the queue is over): the call resumes
  after that change, never before it, so nothing is typed twice and a caller who talked to an
  operator is not queued a second time.

A call that never reached a checkpoint (it was still in the greeting) starts over. A
checkpoint that does not fit the menu any more (an admin removed the node, another number's
menu) is ignored: the call starts over, which loses nothing but time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any

from hotline.agi.carry import encode
from ivr.menu.model import Call, Menu, Next
from ivr.metrics import MENU_ENDS
from ivr.nodes.common import SYSTEM_VARIABLES

log = logging.getLogger(__name__)

RESUME_VARIABLE = "HOTLINE_RESUME"
SAFE_KINDS = frozenset({"menu", "collect", "queue", "rating"})
# Kinds whose nodes never change the call's state (its variables, their personal marks, its
# queue outcome): after one of these the engine need not take the state apart again. A kind
# not named here is taken to change it (tests/ivr/test_resume.py checks the list).
STATE_KEEPING_KINDS = frozenset({"play", "menu", "condition", "goto", "say", "hangup", "transfer"})
# res_agi reads a command line of at most 2 KiB; what does not fit loses its longest values
# first (lookup answers, topics), never the caller's own entries.
MAX_CARRIED = 1500
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_VAR = "var."  # a variable's field name: var.<name>
# What `encode` writes before the fields: a checkpoint is this, its head, then its state.
_FORMAT_ONLY = encode({})


class Resume:
    """Where a call goes on and what it had: node, variables, which of them are personal,
    and its queue outcome if it was queued already.

    A value: its fields are never changed once made. A plain class with slots rather than a
    frozen dataclass, which costs three times as much to make, and a call makes several."""

    __slots__ = ("_state", "node", "personal", "queued", "variables")
    __hash__ = None  # type: ignore[assignment]  # holds a dict, as the dataclass did

    def __init__(
        self,
        node: str,
        variables: dict[str, str],
        personal: frozenset[str],
        queued: tuple[str, str] | None = None,
    ) -> None:
        self.node = node
        self.variables = variables
        self.personal = personal
        self.queued = queued
        # What follows the head in `carried`, once worked out: shared by the checkpoints of
        # one state at several nodes (`carried_at`).
        self._state: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resume):
            return NotImplemented
        return (self.node, self.variables, self.personal, self.queued) == (
            other.node,
            other.variables,
            other.personal,
            other.queued,
        )

    def __repr__(self) -> str:
        return (
            f"Resume(node={self.node!r}, variables={self.variables!r},"
            f" personal={self.personal!r}, queued={self.queued!r})"
        )

    @classmethod
    def of(cls, call: Call, node: str) -> Resume:
        """The call's state at `node`: its variables but the engine's own, the personal marks
        of those, and its queue outcome."""
        entered = call.variables.copy()
        # The engine keeps its own apart (`Call.system`); one of their names written as a
        # menu's variable is not carried either.
        if not SYSTEM_VARIABLES.isdisjoint(entered):
            for name in SYSTEM_VARIABLES.intersection(entered):
                del entered[name]
        personal = frozenset(call.personal & entered.keys()) if call.personal else _NONE
        return Resume(node, entered, personal, call.queued)

    def same_state(self, other: Resume | None) -> bool:
        return other is not None and (self.variables, self.queued) == (
            other.variables,
            other.queued,
        )

    def fields(self, menu: Menu) -> dict[str, str]:
        """The checkpoint as carried fields; values dropped longest first past MAX_CARRIED."""
        return self._fitted(menu)[0]

    def carried(self, menu: Menu) -> str:
        """`fields` encoded (`hotline.agi.carry`): the value of ``HOTLINE_RESUME``."""
        return self.carried_at(self.node, menu)

    def carried_at(self, node: str, menu: Menu) -> str:
        """What `carried` gives for this state at `node`.

        A call leaves a checkpoint at several nodes with one state, so the encoded state is
        kept on the value and the menu-and-node head is encoded once per node: the text is
        the very one `encode(fields)` writes, since `encode` joins its fields in order."""
        return self.carried_after(_head(menu.number, node), node, menu)

    def carried_after(self, head: str, node: str, menu: Menu) -> str:
        """`carried_at` with the node's head already known (`MenuWalk.heads`)."""
        state = self._state
        if state is None:
            state = self._state = self._state_text(menu)
        text = head + state
        if len(text) <= MAX_CARRIED:
            return text
        return Resume(node, self.variables, self.personal, self.queued)._fitted(menu)[1]

    def _state_text(self, menu: Menu) -> str:
        """What follows the head: each field as `encode` writes it. Fields made only of the
        menu's own texts (its set nodes' values, group names, variable names) come from a
        cache; the rest (what callers entered, lookup answers) is encoded afresh and never
        kept beyond the call."""
        items = tuple(self.variables.items())
        if not self.personal:
            # Such a state seen before is looked up first, and only a new one is checked
            # against the menu's texts (`MenuWalk.states`).
            walk = walk_of(menu)
            known = walk.states.get(state_key(self.variables, self.queued))
            if known is not None:
                return known.state
            if menu.written_values.issuperset(items):
                return _written_state(self.variables, self.queued, walk)  # the menu's own texts
        parts = []
        if self.personal:
            parts.append(_personal_field(self.personal))
        if self.queued is not None:
            parts.append(_queued_field(*self.queued))
        written = menu.written_values
        for name, value in self.variables.items():
            if (name, value) in written:
                parts.append(_written_field(name, value))
            else:
                parts.append(_field(_VAR + name, value))
        return "".join(parts)

    def _fitted(self, menu: Menu) -> tuple[dict[str, str], str]:
        fields = {"menu": menu.number, "node": self.node}
        if self.personal:
            fields["personal"] = ",".join(sorted(self.personal))
        if self.queued is not None:
            fields["queued"] = f"{self.queued[0]}:{self.queued[1]}"
        carried = {_VAR + k: v for k, v in self.variables.items()}
        result = {**fields, **carried}
        text = encode(result)
        if len(text) <= MAX_CARRIED:
            return result, text  # the usual case: encoded once
        droppable = sorted(
            (k for k in self.variables if k not in self.personal),
            key=lambda k: len(self.variables[k]),
        )
        while droppable and len(text) > MAX_CARRIED:
            dropped = droppable.pop()
            del carried[_VAR + dropped]
            log.warning("checkpoint too long: a variable is not carried", extra={"var": dropped})
            result = {**fields, **carried}
            text = encode(result)
        return result, text


_NONE: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def fresh(node: str) -> Resume:
    """Where a call that was not handed back stands before its first node: nothing entered.
    One value per node for all calls (a Resume is never changed), its empty state's text
    known already."""
    start = Resume(node, {}, _NONE, None)
    start._state = ""  # what `_state_text` gives for no variables and no queue outcome
    return start


@lru_cache(maxsize=4096)
def _head(number: str, node: str) -> str:
    """``v=1&menu=<number>&node=<node>``: what a checkpoint at that node starts with (menu
    numbers and node ids only, never what a caller entered)."""
    return encode({"menu": number, "node": node})


def _field(name: str, value: str) -> str:
    """``&name=value`` as `encode` writes that field among others."""
    return encode({name: value})[len(_FORMAT_ONLY) :]


@lru_cache(maxsize=4096)
def _written_field(name: str, value: str) -> str:
    """A variable's field, for a value written in a menu file (never a caller's entry)."""
    return _field(_VAR + name, value)


# A state as `MenuWalk.states` keeps it: its variables' names then their values, in order,
# and its queue outcome (one flat tuple: made, hashed and compared at little cost).
StateKey = tuple[object, ...]


def state_key(variables: dict[str, str], queued: tuple[str, str] | None) -> StateKey:
    return (*variables, *variables.values(), queued)


def _written_state(
    variables: dict[str, str], queued: tuple[str, str] | None, walk: MenuWalk
) -> str:
    """A state made only of values written in menu files (and perhaps a queue outcome),
    encoded as `Resume._state_text` encodes it, and kept with its checkpoints' texts
    (`StateTexts`) when each fits one AGI line: such states recur call after call."""
    head = _queued_field(*queued) if queued is not None else ""
    text = head + "".join(_written_field(name, value) for name, value in variables.items())
    if len(walk.states) < _MAX_STATES and walk.longest_head + len(text) <= MAX_CARRIED:
        kept = StateTexts(walk.heads, text, dict(variables), queued)
        walk.states[state_key(variables, queued)] = kept
    return text


class StateTexts(dict[str, str]):
    """A state of the menu's own texts (`state`, encoded): the text of its checkpoint at
    each node (`MenuWalk.heads` and the state), made the first time a call leaves it there
    and the very string for every call after."""

    __slots__ = ("after", "heads", "names", "queued", "state", "variables")

    def __init__(
        self,
        heads: Mapping[str, str],
        state: str,
        variables: dict[str, str] | None = None,
        queued: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.heads, self.state = heads, state
        # The state itself (never changed: `Checkpoints` compares calls' with these), and its
        # variables' names in order.
        self.variables: dict[str, str] = {} if variables is None else variables
        self.names = tuple(self.variables)
        self.queued = queued
        # By node id: the state the last call that left this one had on entering that node
        # (`Checkpoints.due`), most often the next call's too.
        self.after: dict[str, StateTexts] = {}

    def __missing__(self, node_id: str) -> str:
        text = self[node_id] = self.heads[node_id] + self.state
        return text


_MAX_STATES = 4096


@lru_cache(maxsize=1024)
def _queued_field(group: str, outcome: str) -> str:
    return _field("queued", f"{group}:{outcome}")


@lru_cache(maxsize=1024)
def _personal_field(names: frozenset[str]) -> str:
    """Which variables are personal: their names (the menus' own), never their values."""
    return _field("personal", ",".join(sorted(names)))


# Told the text of each checkpoint to leave: the value of ``HOTLINE_RESUME``.
Tell = Callable[[str], Awaitable[None]]


class Checkpoints:
    """The safe-node rule (above) as one call goes: `reach` is told each node the call enters
    and tells `tell` the text of each checkpoint to leave (`Resume.carried`).

    Taking the call's state apart (`Resume.of`) is the costly part of the rule. `reach`, which
    knows nothing of what ran between two nodes, checks the state at every node; the engine,
    which knows, asks `due` with ``changed=False`` when only nodes that keep the state
    (`STATE_KEEPING_KINDS`) ran since it last asked. A state that did not change at all is
    seen by comparing the call's own containers with the last state's, no value made. A new
    state made only of the menu's own texts (set nodes' values, queue outcomes: most calls')
    was seen by calls before and its text is found in `MenuWalk.states` by its contents, and
    each checkpoint's whole text in `MenuWalk.texts`; only other states (a caller's entry, a
    lookup's answer, personal marks, a handed-back call's) are taken apart, into a `Resume`.
    (A call leaves four or five checkpoints: each value made or function called for one
    shows in the engine's cost, `bench/ivr.py --instructions`.)"""

    __slots__ = (
        "_call",
        "_node",
        "_personal",
        "_queued",
        "_resume",
        "_safe",
        "_texts",
        "_variables",
        "_walk",
        "tell",
    )

    def __init__(
        self, call: Call, tell: Tell | None, last: Resume | None, walk: MenuWalk | None = None
    ) -> None:
        """`last`: the checkpoint the call resumed from; None for a fresh call (nothing
        entered, at its menu's start: `fresh`), which needs no `Resume` looked up."""
        self._call = call
        self._walk = walk = walk or walk_of(call.menu)
        self._safe = walk.safe
        self.tell = tell
        # The call's state as last seen, whose variables and queue outcome are always the last
        # checkpoint's; until then, the last checkpoint's (which the engine's `changed=False`
        # at the first node vouches for: a fresh call's). Its variables, queue outcome and
        # personal marks, and either its `StateTexts` (a state of the menu's own texts) or
        # its `Resume`; and where the last checkpoint was left (or the call resumed).
        self._personal = _NONE
        self._resume: Resume | None = None
        self._texts: StateTexts | None = walk.empty
        if last is None:
            self._variables, self._queued, self._node = walk.empty.variables, None, walk.start
            return
        self._node = last.node
        self._variables, self._queued, self._personal = last.variables, last.queued, last.personal
        if last.variables or last.personal or last.queued:
            self._resume, self._texts = last, None

    def _take(self, state: Resume) -> None:
        self._variables, self._queued = state.variables, state.queued
        self._personal = state.personal
        self._resume, self._texts = state, None

    async def reach(self, node_id: str) -> None:
        """`due` at `node_id`, its text told to `tell` (the engine, which knows what ran
        between two nodes, asks `due` itself and sets the text on the channel)."""
        text = self.due(node_id)
        if text is not None:
            assert self.tell is not None, "reach needs a tell"
            await self.tell(text)

    def due(self, node_id: str, changed: bool = True) -> str | None:
        """The text of the checkpoint to leave on entering `node_id`, if one is due (then it
        is the last one left). `changed=False`: the call's state is the one last seen (or, at
        the first node, the last checkpoint's)."""
        if changed:
            call = self._call
            if call.personal or self._personal:
                return self._taken_apart(node_id)
            variables, queued = call.variables, call.queued
            if variables != self._variables or queued != self._queued:
                # A state of the menu's own texts seen before: no system variable among
                # them (they are kept taken out), nothing to take apart. Most often the one
                # the last call had here after the same last state (making its `state_key`
                # costs more than checking that).
                last = self._texts
                texts = None if last is None else last.after.get(node_id)
                # (the same variables in the same order, the same queue outcome: what
                # `state_key` would find)
                if (
                    texts is None
                    or variables != texts.variables
                    or queued != texts.queued
                    or tuple(variables) != texts.names
                ):
                    # (its `state_key`, written out)
                    texts = self._walk.states.get((*variables, *variables.values(), queued))
                    if texts is None:
                        return self._taken_apart(node_id)
                    if last is not None:
                        last.after[node_id] = texts
                self._variables, self._queued = texts.variables, texts.queued
                self._texts, self._resume = texts, None
                self._node = node_id
                return texts[node_id]
        # The state is the last checkpoint's: one is due only on entering another node that
        # asks or queues.
        if node_id in self._safe and node_id != self._node:
            self._node = node_id
            texts = self._texts
            return texts[node_id] if texts is not None else self._here(node_id)
        return None

    def _taken_apart(self, node_id: str) -> str | None:
        """`due` for a state that may be any: taken apart into a `Resume`."""
        here = Resume.of(self._call, node_id)
        variables, queued = self._variables, self._queued
        self._take(here)
        if here.variables != variables or here.queued != queued:
            self._node = node_id
            return self._here(node_id)
        if node_id in self._safe and node_id != self._node:
            self._node = node_id
            return self._here(node_id)
        return None

    def _here(self, node_id: str) -> str:
        """The text of the checkpoint of the last state seen, at `node_id`."""
        if self._texts is not None:
            return self._texts[node_id]
        assert self._resume is not None  # one or the other
        return self._resume.carried_after(self._walk.heads[node_id], node_id, self._call.menu)


# What the engine asks of each node as a call enters it: (the node's `run`, whether it asks
# or queues, whether it may change the call's state), by node id.
NodePlan = dict[str, tuple[Callable[[Call], Next | Awaitable[Next]], bool, bool]]


class MenuWalk:
    """What calls ask of one menu, worked out once when it is loaded (`ivr.menu.library`),
    not at every node of every call: the engine's `plan`, the nodes that ask or queue
    (`safe`, of `SAFE_KINDS`), each node's checkpoint head (`heads`), where its calls' ends
    are counted (`ends`) and the states
    made only of the menu's own texts seen so far with their checkpoints' texts (`states`,
    `Resume._state_text`)."""

    __slots__ = (
        "empty",
        "ends",
        "heads",
        "hours_held",
        "longest_head",
        "plan",
        "safe",
        "start",
        "states",
    )

    def __init__(self, menu: Menu) -> None:
        self.start = menu.start
        # The menu's number's counts of how calls left it (``hotline_ivr_calls_total``).
        self.ends = MENU_ENDS.ends_of(menu.number)
        self.safe = frozenset(n for n, node in menu.nodes.items() if node.kind in SAFE_KINDS)
        self.plan: NodePlan = {
            node_id: (node.run, node_id in self.safe, node.kind not in STATE_KEEPING_KINDS)
            for node_id, node in menu.nodes.items()
        }
        self.heads = {node_id: _head(menu.number, node_id) for node_id in menu.nodes}
        self.longest_head = max(map(len, self.heads.values()), default=0)
        self.states: dict[StateKey, StateTexts] = {}
        self.empty = StateTexts(self.heads, "")  # a fresh call's: nothing entered
        # The engine's: the last opening-hours status its calls saw, with what it makes of it
        # (`ivr.menu.engine._fill_system_variables`).
        self.hours_held: tuple[Any, frozenset[str], Mapping[str, str]] | None = None


def walk_of(menu: Menu) -> MenuWalk:
    """The menu's `MenuWalk`, kept with the menu as its cached properties are."""
    walk: MenuWalk | None = menu.__dict__.get(WALK_ATTRIBUTE)
    if walk is None:
        walk = menu.__dict__[WALK_ATTRIBUTE] = MenuWalk(menu)
    return walk


WALK_ATTRIBUTE = "_walk"  # where `walk_of` keeps it in the menu's __dict__


def safe_nodes(menu: Menu) -> frozenset[str]:
    """The menu's nodes that ask or queue (`SAFE_KINDS`)."""
    return walk_of(menu).safe


def node_plan(menu: Menu) -> NodePlan:
    """The menu's nodes as the engine walks them (`NodePlan`)."""
    return walk_of(menu).plan


def resume_from(fields: Mapping[str, str] | None, menu: Menu) -> Resume | None:
    """The checkpoint a previous controller left for this menu, or None (none, or it does not
    fit this menu: the call starts over)."""
    if not fields:
        return None
    node = fields.get("node", "")
    if fields.get("menu") != menu.number or node not in menu.nodes:
        log.warning("checkpoint does not fit the menu: starting over", extra={"node": node})
        return None
    variables = {
        k[len(_VAR) :]: v
        for k, v in fields.items()
        if k.startswith(_VAR)
        and _NAME.fullmatch(k[len(_VAR) :])
        and k[len(_VAR) :] not in SYSTEM_VARIABLES  # the engine's own, never carried
    }
    personal = frozenset(p for p in fields.get("personal", "").split(",") if p in variables)
    group, sep, outcome = fields.get("queued", "").partition(":")
    queued = (group, outcome) if sep and group and outcome else None
    return Resume(node, variables, personal, queued)
