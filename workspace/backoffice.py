"""The back-office groups file (`dialplans/backoffice.yaml`): who works tickets, in how long.

Read with `hotline.yamldoc`, so every mistake is reported at its file:line and the file is
refused whole (a half-read file would send tickets to nobody). See the file's own header for
its fields. `BackOfficeFile` re-reads it when it changes, keeping the last good version when
an edit breaks it (tickets keep flowing; the log names the line to fix).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from yaml.nodes import Node

from hotline.yamldoc import YamlDoc, YamlFileError
from workspace.model import Category

log = logging.getLogger(__name__)

__all__ = ["BackOffice", "BackOfficeFile", "BackOfficeGroup", "load_backoffice"]

_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_USER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$")
_MAX_DUE_HOURS: Final = 24 * 90


@dataclass(frozen=True)
class BackOfficeGroup:
    id: str
    name: str
    due: timedelta
    members: frozenset[str]
    callback_group: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class BackOffice:
    groups: dict[str, BackOfficeGroup]
    by_category: dict[Category, str]
    default_group: str

    def group_for(self, category: Category) -> BackOfficeGroup:
        """The group a ticket of `category` goes to."""
        return self.groups[self.by_category.get(category, self.default_group)]

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The groups `user_id` works in (a back-office person sees only their tickets)."""
        return frozenset(g.id for g in self.groups.values() if user_id in g.members)


def load_backoffice(path: str | Path) -> BackOffice:
    """The groups file; raises `hotline.yamldoc.YamlFileError` (``path:line: ...``)."""
    doc = YamlDoc(path)
    top = doc.mapping(doc.root, "the back-office file")
    doc.check_keys(top, {"groups", "categories"}, {"groups", "categories"}, doc.root)
    groups: dict[str, BackOfficeGroup] = {}
    for group_id, (key, value) in doc.mapping(top["groups"][1], "groups").items():
        if not _ID.match(group_id):
            raise doc.error(key, f"group id {group_id!r}: latin letters, digits, - and _")
        groups[group_id] = _group(doc, group_id, value)
    if not groups:
        raise doc.error(top["groups"][1], "no groups listed")
    by_category, default = _categories(doc, top["categories"][1], groups)
    return BackOffice(groups, by_category, default)


def _group(doc: YamlDoc, group_id: str, node: Node) -> BackOfficeGroup:
    fields = doc.mapping(node, f"group {group_id!r}")
    allowed = {"name", "due_hours", "members", "callback_group", "email"}
    doc.check_keys(fields, allowed, {"name", "due_hours", "members"}, node)
    hours = doc.number(fields["due_hours"][1], f"{group_id}: due_hours", minimum=0.1)
    if hours > _MAX_DUE_HOURS:
        raise doc.error(fields["due_hours"][1], f"{group_id}: due_hours: at most {_MAX_DUE_HOURS}")
    members = set()
    for member in doc.sequence(fields["members"][1], f"{group_id}: members"):
        user = doc.text(member, f"{group_id}: a member")
        if not _USER.match(user):
            raise doc.error(member, f"{group_id}: {user!r} is not a user name")
        members.add(user)
    email = None
    if "email" in fields:
        email = doc.text(fields["email"][1], f"{group_id}: email")
        if not _EMAIL.match(email):
            raise doc.error(fields["email"][1], f"{group_id}: {email!r} is not an e-mail address")
    callback = None
    if "callback_group" in fields:
        callback = doc.line(fields["callback_group"][1], f"{group_id}: callback_group")
    name = doc.line(fields["name"][1], f"{group_id}: name")
    due = timedelta(hours=hours)
    return BackOfficeGroup(group_id, name, due, frozenset(members), callback, email)


def _categories(
    doc: YamlDoc, node: Node, groups: dict[str, BackOfficeGroup]
) -> tuple[dict[Category, str], str]:
    known = {c.value for c in Category}
    by_category: dict[Category, str] = {}
    default = None
    for name, (key, value) in doc.mapping(node, "categories").items():
        group = doc.text(value, f"categories: {name}")
        if group not in groups:
            raise doc.error(value, f"categories: {name}: no group {group!r} in groups")
        if name == "default":
            default = group
        elif name in known:
            by_category[Category(name)] = group
        else:
            raise doc.error(key, f"categories: unknown category {name!r}; one of {sorted(known)}")
    if default is None:
        raise doc.error(node, "categories: missing `default` (the group of every other ticket)")
    return by_category, default


class BackOfficeFile:
    """The groups file as the running controller uses it: re-read when it changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp = self._current_stamp()
        self._current = load_backoffice(self.path)  # a broken file stops the start

    @property
    def current(self) -> BackOffice:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._current = load_backoffice(self.path)
            except YamlFileError as error:
                log.error("back-office file unusable, the previous one stays: %s", error)
        return self._current

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size)
