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
from dataclasses import dataclass
from functools import lru_cache

from hotline.agi.carry import encode
from ivr.menu.model import Call, Menu
from ivr.nodes.common import SYSTEM_VARIABLES

log = logging.getLogger(__name__)

RESUME_VARIABLE = "HOTLINE_RESUME"
SAFE_KINDS = frozenset({"menu", "collect", "queue", "rating"})
# res_agi reads a command line of at most 2 KiB; what does not fit loses its longest values
# first (lookup answers, topics), never the caller's own entries.
MAX_CARRIED = 1500
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_VAR = "var."  # a variable's field name: var.<name>
# What `encode` writes before the fields: a checkpoint is this, its head, then its state.
_FORMAT_ONLY = encode({})


@dataclass(frozen=True)
class Resume:
    """Where a call goes on and what it had: node, variables, which of them are personal,
    and its queue outcome if it was queued already."""

    node: str
    variables: dict[str, str]
    personal: frozenset[str]
    queued: tuple[str, str] | None = None

    @classmethod
    def of(cls, call: Call, node: str) -> Resume:
        entered = call.variables.copy()
        for name in SYSTEM_VARIABLES.intersection(entered):
            del entered[name]
        personal = frozenset(call.personal & entered.keys()) if call.personal else _NONE
        here = _new(Resume)  # as `_resume` makes one, written out: made at every new state
        _set(
            here,
            "__dict__",
            {"node": node, "variables": entered, "personal": personal, "queued": call.queued},
        )
        return here

    def same_state(self, other: Resume | None) -> bool:
        return other is not None and (self.variables, self.queued) == (
            other.variables,
            other.queued,
        )

    def moved_to(self, node: str) -> Resume:
        """The same state at another node; what it encodes to is shared, not encoded again."""
        moved = _new(Resume)
        _set(moved, "__dict__", {**self.__dict__, "node": node})
        return moved

    def fields(self, menu: Menu) -> dict[str, str]:
        """The checkpoint as carried fields; values dropped longest first past MAX_CARRIED."""
        return self._fitted(menu)[0]

    def carried(self, menu: Menu) -> str:
        """`fields` encoded (`hotline.agi.carry`): the value of ``HOTLINE_RESUME``.

        A call leaves a checkpoint at several nodes with one state, so the encoded state is
        kept on the value (and handed on by `moved_to`) and the menu-and-node head is
        encoded once per node: the text is the very one `encode(fields)` writes, since
        `encode` joins its fields in order."""
        state = self.__dict__.get("_state")
        if state is None:
            state = self.__dict__["_state"] = self._state_text(menu)
        text = _head(menu.number, self.node) + state
        if len(text) <= MAX_CARRIED:
            return text
        return self._fitted(menu)[1]

    def _state_text(self, menu: Menu) -> str:
        """What follows the head: each field as `encode` writes it. Fields made only of the
        menu's own texts (its set nodes' values, group names, variable names) come from a
        cache; the rest (what callers entered, lookup answers) is encoded afresh and never
        kept beyond the call."""
        items = tuple(self.variables.items())
        if not self.personal and menu.written_values.issuperset(items):
            return _written_state(items, self.queued)  # only the menu's own texts
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


_new = object.__new__
_set = object.__setattr__


def _resume(
    node: str, variables: dict[str, str], personal: frozenset[str], queued: tuple[str, str] | None
) -> Resume:
    """`Resume(...)` as the engine makes one at a node: its fields written straight into the
    new value rather than one frozen-attribute call each (a call makes several a second)."""
    here = _new(Resume)
    _set(
        here,
        "__dict__",
        {"node": node, "variables": variables, "personal": personal, "queued": queued},
    )
    return here


def fresh(node: str) -> Resume:
    """Where a call that was not handed back stands before its first node: nothing entered."""
    return _resume(node, {}, _NONE, None)


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


@lru_cache(maxsize=4096)
def _written_state(items: tuple[tuple[str, str], ...], queued: tuple[str, str] | None) -> str:
    """A state made only of values written in menu files (and perhaps a queue outcome),
    encoded as `Resume._state_text` encodes it: such states recur call after call."""
    head = _queued_field(*queued) if queued is not None else ""
    return head + "".join(_written_field(name, value) for name, value in items)


@lru_cache(maxsize=1024)
def _queued_field(group: str, outcome: str) -> str:
    return _field("queued", f"{group}:{outcome}")


@lru_cache(maxsize=1024)
def _personal_field(names: frozenset[str]) -> str:
    """Which variables are personal: their names (the menus' own), never their values."""
    return _field("personal", ",".join(sorted(names)))


Tell = Callable[[Resume], Awaitable[None]]


class Checkpoints:
    """The safe-node rule (above) as one call goes: `reach` is told each node the call enters
    and tells `tell` the checkpoints to leave.

    The rule compares the call's state at every node with the last checkpoint's; most nodes
    change nothing, so the state is taken apart again only when the call's variables, their
    personal marks or its queue outcome differ from when it was last taken apart (a plain
    comparison of dicts, sets and tuples), and otherwise the last one is reused."""

    __slots__ = ("_call", "_last", "_safe", "_seen", "_taken", "tell")

    def __init__(self, call: Call, tell: Tell, last: Resume) -> None:
        self._call = call
        self._safe = safe_nodes(call.menu)
        self.tell = tell
        self._last = last  # the last checkpoint left (or the one the call resumed from)
        # The call's state as last taken apart, and what it was made of (variables, queue
        # outcome, personal marks); (), which no call's state equals, until it is first
        # taken apart.
        self._taken = last
        self._seen: tuple[object, ...] = ()
        if (
            not last.variables
            and not last.personal
            and last.queued is None
            and not call.personal
            and call.queued is None
            and SYSTEM_VARIABLES.issuperset(call.variables)
        ):
            # A fresh call: nothing entered yet, which is `last`'s state; no need to take it
            # apart at the first node to find that out.
            self._seen = (dict(call.variables), call.queued, set(call.personal))

    async def reach(self, node_id: str) -> None:
        here = self.due(node_id)
        if here is not None:
            await self.tell(here)

    def due(self, node_id: str) -> Resume | None:
        """The checkpoint to leave on entering `node_id`, if one is due (then it is the last
        one left): what `reach` tells, for a caller that awaits it only when there is one."""
        call = self._call
        if (call.variables, call.queued, call.personal) == self._seen:
            # Nothing changed since the state was taken apart, and the last checkpoint has
            # it: one is due only on entering another node that asks or queues.
            if node_id in self._safe and node_id != self._last.node:
                # `self._taken.moved_to(node_id)`, written out: the usual checkpoint
                here = self._last = _new(Resume)
                _set(here, "__dict__", {**self._taken.__dict__, "node": node_id})
                return here
            return None
        return self._changed(node_id)

    def _changed(self, node_id: str) -> Resume | None:
        call, last = self._call, self._last
        here = Resume.of(call, node_id)
        self._taken = here
        self._seen = (dict(call.variables), call.queued, set(call.personal))
        same = here.variables == last.variables and here.queued == last.queued
        if same and last.node == node_id:
            return None
        if not same or node_id in self._safe:
            self._last = here
            return here
        return None


def safe_nodes(menu: Menu) -> frozenset[str]:
    """The menu's nodes that ask or queue (`SAFE_KINDS`): worked out once per menu, when it
    is loaded (`ivr.menu.library`), not at every node of every call."""
    safe: frozenset[str] | None = menu.__dict__.get(_SAFE_NODES)
    if safe is None:
        safe = frozenset(n for n, node in menu.nodes.items() if node.kind in SAFE_KINDS)
        menu.__dict__[_SAFE_NODES] = safe  # kept with the menu, as its cached properties are
    return safe


_SAFE_NODES = "_safe_nodes"


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
        if k.startswith(_VAR) and _NAME.fullmatch(k[len(_VAR) :])
    }
    personal = frozenset(p for p in fields.get("personal", "").split(",") if p in variables)
    group, sep, outcome = fields.get("queued", "").partition(":")
    queued = (group, outcome) if sep and group and outcome else None
    return Resume(node, variables, personal, queued)
