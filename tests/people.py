"""Staff members for tests: bearer tokens with a role, a token file, an app guarded as the
controller guards its own, and an audit log on a throwaway SQLite database.

Each person's token is `token_for(user)`; `as_user(user)` is the header a request sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from databases import migrated_engine

from hotline.access import BearerTokens, access_middleware
from hotline.audit import AuditLog
from hotline.auth import Actor, TokenBook, token_digest

# The people most tests need besides the operators themselves.
SUPERVISOR = "orlova"  # not an operator of the shipped files: a supervisor only
ADMIN = "sysadmin"


def token_for(user: str) -> str:
    return f"token-of-{user}"


def as_user(user: str) -> dict[str, str]:
    """The header a request made by `user` carries."""
    return {"Authorization": f"Bearer {token_for(user)}"}


def write_token_file(path: Path, users: Mapping[str, str]) -> Path:
    """A token file granting each user (id -> role) `token_for(user)`; returns `path`."""
    lines = ["users:"]
    for user, role in users.items():
        digest = token_digest(token_for(user))
        lines.append(f"  - {{user: {user}, role: {role}, token_sha256: {digest}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def people_environment(tmp_path: Path, users: Mapping[str, str]) -> dict[str, str]:
    """The ``HOTLINE_*`` variable of a controller whose token file grants `users`."""
    tokens = write_token_file(tmp_path / "people-tokens.yaml", users)
    return {"HOTLINE_RECORDER_ACCESS_TOKENS_FILE": str(tokens)}


def guarded_app(users: Mapping[str, str]) -> web.Application:
    """An empty app behind the access middleware, `users` (id -> role) known by their token."""
    book = TokenBook.of({token_for(user): Actor(user, role) for user, role in users.items()})
    return web.Application(middlewares=[access_middleware(BearerTokens(book))])


@asynccontextmanager
async def sqlite_audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    """An audit log on a fresh, migrated SQLite file in `tmp_path`."""
    async with migrated_engine(f"sqlite+aiosqlite:///{tmp_path}/audit.sqlite3") as engine:
        yield AuditLog(engine)


def staff_environment(tmp_path: Path, operators_file: Path) -> dict[str, str]:
    """A controller's token file for the staff of `operators_file`: every operator by their
    id, plus the SUPERVISOR and the ADMIN."""
    from routing.operators import load_operators

    users = {op_id: "operator" for op_id in load_operators(operators_file)}
    return people_environment(tmp_path, {**users, SUPERVISOR: "supervisor", ADMIN: "admin"})


def acting(path: str) -> dict[str, str]:
    """The header of a test's request to ``/api/operators{path}``: an action on an operator is
    made by that operator themselves, the listing (and anything else) by the SUPERVISOR."""
    parts = path.strip("/").split("/")
    return as_user(parts[0]) if len(parts) == 2 else as_user(SUPERVISOR)
