"""Bearer tokens: who a request comes from (`Actor`), read from the token file.

* `Role`: every role a person can act in; `TOKEN_ROLES` the ones a token file may grant
  (`system` is only ever the CLI acting on the server itself).
* `TokenBook`: the token file (YAML) mapping bearer tokens to a user and a role. It stores
  only the SHA-256 of each token, so the file itself opens nothing;
  `hotline recordings token --user U --role R` prints a fresh token and the line to add.

      users:
        - user: ivanova          # who the audit log will name
          role: quality_auditor  # quality_auditor, supervisor, security_officer, operator, admin
          token_sha256: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b

* `TokenFile`: the token file as the controller serves it, re-read whenever it changes.
  A broken file is refused with its file:line (`hotline.yamldoc.YamlFileError`).

What each role may do is decided by the part that serves it (`recorder.permissions` for
recordings, `routing.admin.http` for the ACD administration API).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from yaml.nodes import Node

from hotline.yamldoc import Problem, YamlDoc, YamlFileError, line_of, scalar

log = logging.getLogger(__name__)

__all__ = [
    "TOKEN_ROLES",
    "Actor",
    "Role",
    "TokenBook",
    "TokenFile",
    "TokenLookup",
    "new_token",
    "token_digest",
]


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id and the role they act in ("" when no role could be established).

    `kind` says how they proved it: ``person`` (a staff account's session, or a personal token),
    ``service`` (a service key, which carries `scopes` instead of a person's role) or
    ``system`` (the CLI on the server itself). `csrf_token` is set when the proof was a session
    cookie: a state-changing request must then echo it (`hotline.access`).
    """

    user_id: str
    role: str
    kind: str = "person"
    scopes: frozenset[str] = frozenset()
    csrf_token: str | None = None


class Role(StrEnum):
    QUALITY_AUDITOR = "quality_auditor"
    SUPERVISOR = "supervisor"
    SECURITY_OFFICER = "security_officer"
    OPERATOR = "operator"
    ADMIN = "admin"  # telecom admin: edits ACD groups and operators (routing.admin.http)
    SYSTEM = "system"  # the retention job and the admin CLI


# Roles a token file may grant; `system` is only ever the CLI acting on the server itself.
TOKEN_ROLES: Final = frozenset(
    {Role.QUALITY_AUDITOR, Role.SUPERVISOR, Role.SECURITY_OFFICER, Role.OPERATOR, Role.ADMIN}
)


@dataclass(frozen=True)
class _Grant:
    actor: Actor
    token_sha256: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random bearer token and its SHA-256 (the value for the token file)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


@dataclass(frozen=True)
class TokenBook:
    """Bearer token -> Actor; built from the token file or from a list of grants."""

    grants: tuple[_Grant, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, entries: Mapping[str, Actor]) -> TokenBook:
        """From plain tokens (tests, and tools that generate tokens in memory)."""
        return cls(tuple(_Grant(actor, token_digest(t)) for t, actor in entries.items()))

    def lookup(self, token: str) -> Actor | None:
        digest = token_digest(token)
        found = None
        for grant in self.grants:  # no early exit: the time taken does not say which matched
            if hmac.compare_digest(grant.token_sha256, digest):
                found = grant.actor
        return found

    @classmethod
    def load(cls, path: Path) -> TokenBook:
        """The grants of the token file; raises `YamlFileError` (``file:line: ...``) for a
        missing, unreadable or broken file. A file with no entries yet grants nobody."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise YamlFileError([Problem(str(path), 1, "token file does not exist")]) from None
        except (OSError, UnicodeDecodeError) as error:
            raise YamlFileError(
                [Problem(str(path), 1, f"token file cannot be read: {error}")]
            ) from None
        if _blank(text):
            return cls()
        return cls(tuple(_parse_tokens(YamlDoc(path, text))))


class TokenLookup(Protocol):
    """Bearer token -> Actor (None: nobody); `TokenBook` and `TokenFile` are ones."""

    def lookup(self, token: str) -> Actor | None: ...


class TokenFile:
    """The token file as the controller serves it: re-read whenever it changes on disk.

    An admin adds or revokes a user without restarting the controller (and dropping calls).
    A missing file lets nobody in until it is created. A file that breaks while the
    controller runs also lets nobody in (fail closed: the edit may have been a revocation)
    and is logged with its file:line; at construction a broken file raises
    `hotline.yamldoc.YamlFileError`.
    """

    def __init__(self, path: Path, *, optional: bool = False) -> None:
        """`optional`: the file is a legacy way in beside others (staff accounts, service
        keys), so its absence is logged as information, not as an error."""
        self.path = Path(path)
        self._book = TokenBook()
        self._stamp: tuple[int, int, int] | None = None
        stamp = self._current_stamp()
        if stamp is None and optional:
            log.info("no token file at %s: bearer tokens are off until it exists", self.path)
        elif stamp is None:
            log.error(
                "token file %s does not exist: every request that needs a token (recordings, "
                "ACD administration) is refused until an admin creates it",
                self.path,
            )
        else:
            self._book, self._stamp = TokenBook.load(self.path), stamp

    def lookup(self, token: str) -> Actor | None:
        self._refresh()
        return self._book.lookup(token)

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def _refresh(self) -> None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            log.error("token file %s was removed: recordings access refused", self.path)
            self._book = TokenBook()
            return
        try:
            self._book = TokenBook.load(self.path)
        except YamlFileError as error:
            log.error("token file unusable, recordings access refused: %s", error)
            self._book = TokenBook()
        else:
            log.info("token file %s reloaded: %d users", self.path, len(self._book.grants))


def _blank(text: str) -> bool:
    """No entries yet: nothing but blank lines and comments (nobody is let in)."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _parse_tokens(doc: YamlDoc) -> list[_Grant]:
    fields = doc.mapping(doc.root, "the file")
    if "users" not in fields:
        raise doc.error(doc.root, "the file needs a `users:` list")
    grants: list[_Grant] = []
    seen: dict[str, int] = {}
    for item in doc.sequence(fields["users"][1], "`users`"):
        grant = _parse_grant(doc, item)
        if grant.token_sha256 in seen:
            raise doc.error(
                item, f"the same token is already given on line {seen[grant.token_sha256]}"
            )
        seen[grant.token_sha256] = line_of(item)
        grants.append(grant)
    return grants


def _parse_grant(doc: YamlDoc, node: Node) -> _Grant:
    fields = doc.mapping(node, "each user")
    unknown = sorted(set(fields) - {"user", "role", "token_sha256"})
    if unknown:
        raise doc.error(fields[unknown[0]][0], f"unknown key `{unknown[0]}`")
    values = {}
    for key in ("user", "role", "token_sha256"):
        if key not in fields:
            raise doc.error(node, f"user entry lacks `{key}`")
        value = scalar(fields[key][1])
        if value is None or not value.strip():
            raise doc.error(fields[key][1], f"`{key}` must be a non-empty text")
        values[key] = value.strip()
    if values["role"] not in TOKEN_ROLES:
        raise doc.error(
            fields["role"][1],
            f"role `{values['role']}` is not one of {', '.join(sorted(TOKEN_ROLES))}",
        )
    digest = values["token_sha256"].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise doc.error(
            fields["token_sha256"][1],
            "token_sha256 must be 64 hex digits (the SHA-256 of the token, never the token itself)",
        )
    return _Grant(Actor(values["user"], values["role"]), digest)
