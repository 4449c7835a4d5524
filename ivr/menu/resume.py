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
from collections.abc import Mapping
from dataclasses import dataclass

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
        entered = {k: v for k, v in call.variables.items() if k not in SYSTEM_VARIABLES}
        return cls(node, entered, frozenset(call.personal & entered.keys()), call.queued)

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
        return self._fitted(menu)[1]

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
