"""Operator skill groups, read from ``dialplans/groups.yaml`` and validated.

Each group is also a skill: an operator with skill ``payments`` at some level serves the
``payments`` group. File layout::

    groups:
      payments:                       # id: latin letters, digits, '_' or '-'
        name: Платежи                 # shown on operator screens and in reports
        schedule: weekdays            # a schedule id (the schedules file is the IVR's)
        wrap_up_seconds: 20           # after-call work before the operator is ready again
        ring_seconds: 15              # an unanswered offer after this pauses the operator
        max_wait_seconds: 300         # waiting longer runs the menu's overflow path
        widen_after_seconds: 60       # then operators of `widen_to` groups may answer too
        widen_to: [general]           # secondary skills (optional, default none)
        overflow_group: general       # where the overflow path sends the caller (optional)
        message_deadline_minutes: 10  # a voice message left for the group waits no longer
                                      # for its call back without an alarm (optional)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import Node

from hotline.yamldoc import YamlDoc

__all__ = ["SCHEDULE_NAME", "Group", "load_groups", "parse_groups"]

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# A schedule names a file <schedules_dir>/<name>.yaml: no path separators, no dot files.
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_REQUIRED = {
    "name",
    "schedule",
    "wrap_up_seconds",
    "ring_seconds",
    "max_wait_seconds",
    "widen_after_seconds",
}
_ALLOWED = _REQUIRED | {"widen_to", "overflow_group", "message_deadline_minutes"}


@dataclass(frozen=True)
class Group:
    """One skill group and the timings that govern its queue."""

    id: str
    name: str
    schedule: str
    wrap_up_seconds: float
    ring_seconds: float
    max_wait_seconds: float
    widen_after_seconds: float
    widen_to: tuple[str, ...] = ()
    overflow_group: str | None = None
    message_deadline_minutes: float | None = None


def load_groups(path: str | Path) -> dict[str, Group]:
    """Groups by id from a file; raises `YamlFileError` (``path:line: ...``) on any mistake."""
    return parse_groups(YamlDoc(path))


def parse_groups(doc: YamlDoc) -> dict[str, Group]:
    top = doc.mapping(doc.root, "the groups file")
    doc.check_keys(top, {"groups"}, {"groups"}, doc.root)
    groups_node = top["groups"][1]
    groups: dict[str, Group] = {}
    references: list[tuple[object, str, str]] = []
    for group_id, (key, body) in doc.mapping(groups_node, "groups").items():
        if not _ID.match(group_id):
            raise doc.error(key, f"group id {group_id!r}: use a-z, 0-9, '_' or '-'")
        group, refs = _group(doc, group_id, body)
        groups[group_id] = group
        references.extend(refs)
    if not groups:
        raise doc.error(groups_node, "no groups defined")
    for node, target, field in references:
        if target not in groups:
            raise doc.error(node, f"{field} names unknown group {target!r}")  # type: ignore[arg-type]
    return groups


def _group(
    doc: YamlDoc, group_id: str, body: object
) -> tuple[Group, list[tuple[object, str, str]]]:
    fields = doc.mapping(body, f"group {group_id!r}")  # type: ignore[arg-type]
    doc.check_keys(fields, _ALLOWED, _REQUIRED, body)  # type: ignore[arg-type]

    def seconds(name: str, minimum: float = 0.0) -> float:
        return doc.number(fields[name][1], name, minimum=minimum)

    refs: list[tuple[object, str, str]] = []
    widen: list[str] = []
    if "widen_to" in fields:
        for item in doc.sequence(fields["widen_to"][1], "widen_to"):
            target = doc.text(item, "widen_to entry")
            if target == group_id:
                raise doc.error(item, "widen_to must not name the group itself")
            widen.append(target)
            refs.append((item, target, "widen_to"))
    overflow = None
    if "overflow_group" in fields:
        node = fields["overflow_group"][1]
        overflow = doc.text(node, "overflow_group")
        refs.append((node, overflow, "overflow_group"))
    schedule = doc.text(fields["schedule"][1], "schedule")
    if not SCHEDULE_NAME.match(schedule):
        raise doc.error(
            fields["schedule"][1], f"schedule {schedule!r}: use A-Z, a-z, 0-9, '_' or '-'"
        )
    group = Group(
        id=group_id,
        name=doc.line(fields["name"][1], "name"),
        schedule=schedule,
        wrap_up_seconds=seconds("wrap_up_seconds"),
        ring_seconds=seconds("ring_seconds", 1.0),
        max_wait_seconds=seconds("max_wait_seconds", 1.0),
        widen_after_seconds=seconds("widen_after_seconds"),
        widen_to=tuple(widen),
        overflow_group=overflow,
        message_deadline_minutes=_deadline(doc, fields),
    )
    return group, refs


def _deadline(doc: YamlDoc, fields: dict[str, tuple[Node, Node]]) -> float | None:
    """``message_deadline_minutes``: optional, at least a minute."""
    if "message_deadline_minutes" not in fields:
        return None
    return doc.number(fields["message_deadline_minutes"][1], "message_deadline_minutes", minimum=1)
