"""A whole controller for a test: the settings every such test shares, and its start and stop.

A test controller listens on ports the OS picks (port 0: ``Controller.http_port`` and
``Controller.agi.port`` say which) and keeps its database and menu versions in the test's own
directory. Each test adds only what is specific to it (its files, its parts switched off).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from controller.node import Controller
from controller.settings import Settings, load_settings

# The recorder switched off, for tests about something else.
WITHOUT_RECORDER = {"HOTLINE_RECORDER_ENABLED": "false"}


def controller_environment(tmp_path: Path) -> dict[str, str]:
    """The ``HOTLINE_*`` variables of a controller on OS-chosen ports with its database
    and menu versions in `tmp_path`."""
    return {
        "HOTLINE_AGI_PORT": "0",
        "HOTLINE_HTTP_PORT": "0",
        "HOTLINE_STORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/calls.sqlite3",
        "HOTLINE_IVR_VERSIONS_DIR": str(tmp_path / "menu-versions"),
        "HOTLINE_REPORTING_JOURNAL_DIR": str(tmp_path / "facts-journal"),
    }


def recorder_environment(root: Path) -> dict[str, str]:
    """The recorder's spool, work, keys and local store directories inside `root` (not the
    repository's var/)."""
    return {
        f"HOTLINE_RECORDER_{name.upper()}": str(root / name)
        for name in ("spool_dir", "work_dir", "keys_dir", "local_dir")
    }


def controller_settings(tmp_path: Path, environment: Mapping[str, str]) -> Settings:
    """Settings of a test controller in `tmp_path`; `environment` adds or overrides."""
    return load_settings(None, {**controller_environment(tmp_path), **environment})


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Controller]:
    """The controller of `settings`, running for the block and stopped afterwards (also when
    its start fails half-way)."""
    node = Controller(settings)
    try:
        await node.start()
        yield node
    finally:
        await node.stop()


def with_tokens_file(settings: Settings, tokens_file: Path) -> Settings:
    """`settings` with the recorder's access tokens read from `tokens_file`."""
    access = dataclasses.replace(settings.recorder_access, tokens_file=tokens_file)
    return dataclasses.replace(settings, recorder_access=access)


ADMIN_TOKEN = "t0k"  # the bearer token of the admin `admin_environment` sets up


def admin_environment(tmp_path: Path, dialplans: Path) -> tuple[dict[str, str], Path]:
    """A controller whose ACD files an admin edits: a copy of `dialplans` in `tmp_path`
    (returned), files re-read every 0.02 s, and a tokens file granting ADMIN_TOKEN the admin
    role; the recorder switched off."""
    from hotline.auth import token_digest

    files = tmp_path / "dialplans"
    shutil.copytree(dialplans, files)
    tokens = tmp_path / "tokens.yaml"
    digest = token_digest(ADMIN_TOKEN)
    tokens.write_text(f"users:\n  - {{user: sysadmin, role: admin, token_sha256: {digest}}}\n")
    environment = {
        **WITHOUT_RECORDER,
        "HOTLINE_RECORDER_ACCESS_TOKENS_FILE": str(tokens),
        "HOTLINE_ROUTING_GROUPS_FILE": str(files / "groups.yaml"),
        "HOTLINE_ROUTING_OPERATORS_FILE": str(files / "operators.yaml"),
        "HOTLINE_ROUTING_SCHEDULES_DIR": str(files),
        "HOTLINE_ROUTING_RELOAD_INTERVAL": "0.02",
    }
    return environment, files
