"""`hotline serve` refuses to start on a broken admin file the way it does on a broken
configuration: one ``file:line: sentence`` on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from controllers import controller_environment


def serve(tmp_path: Path, **files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **controller_environment(tmp_path), **files}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("setting", "name", "text", "says"),
    [
        (
            "HOTLINE_RECORDER_ACCESS_RETENTION_FILE",
            "retention.yaml",
            "default_days: 30\ncategories:\n  complaint: три года\n",
            ":3: `categories.complaint` must be a whole number of days",
        ),
        (
            "HOTLINE_RECORDER_ACCESS_TOKENS_FILE",
            "tokens.yaml",
            "users:\n  - {user: x, role: pilot}\n",
            ":2: user entry lacks `token_sha256`",
        ),
        (
            "HOTLINE_ROUTING_GROUPS_FILE",
            "groups.yaml",
            "groups:\n  payments:\n    nam: Платежи\n",
            ":3: unknown field 'nam'",
        ),
    ],
)
def test_a_broken_admin_file_stops_serve_with_its_file_and_line(
    tmp_path: Path, setting: str, name: str, text: str, says: str
) -> None:
    broken = tmp_path / name
    broken.write_text(text, encoding="utf-8")

    done = serve(tmp_path, **{setting: str(broken)})

    assert done.returncode == 2
    assert f"hotline serve: {broken}{says}" in done.stderr
    assert "Traceback" not in done.stderr
