"""Node kinds of the menu language: one module per kind, each with its dataclass, its parser
(`parse(node_id, fields)`) and how it runs. `KINDS` maps a kind name to its parser."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ivr.menu.fields import Fields
from ivr.menu.model import Node
from ivr.nodes import (
    app_code,
    callback,
    collect,
    condition,
    contact_number,
    goto,
    hangup,
    lookup,
    menu,
    play,
    queue,
    rating,
    record,
    say,
    transfer,
)
from ivr.nodes import set as set_node

Parser = Callable[[str, Fields], Node]

KINDS: Mapping[str, Parser] = MappingProxyType(
    {
        "play": play.parse,
        "menu": menu.parse,
        "collect": collect.parse,
        "say": say.parse,
        "lookup": lookup.parse,
        "condition": condition.parse,
        "set": set_node.parse,
        "goto": goto.parse,
        "queue": queue.parse,
        "transfer": transfer.parse,
        "callback": callback.parse,
        "record": record.parse,
        "rating": rating.parse,
        "contact_number": contact_number.parse,
        "app_code": app_code.parse,
        "hangup": hangup.parse,
    }
)
# Kinds after which the call has left the menu (an exit for the loop check).
EXITS = frozenset({"queue", "transfer", "hangup"})
