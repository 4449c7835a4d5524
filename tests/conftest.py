"""What every test gets: its own working directory and no ``HOTLINE_*`` variables; and
`agi_logs`, the FastAGI logs a test asks for.

The controller resolves relative paths (``var/surge``, ``var/hotline.sqlite3``, ``var/recorder``)
against the working directory, and `load_settings` reads ``HOTLINE_*`` from the environment. A
test run from a checkout where someone ran ``hotline hours surge on`` or exported the demo's
``HOTLINE_AMI_ENABLED`` must see neither: each test starts in an empty directory of its own
with those variables removed. Shipped files are reached through absolute paths (``ROOT``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from hotline.logs import CallIdFilter, unconfigure_logging

# Fixtures of shared servers, usable from every test directory.
pytest_plugins = ["seaweed"]


@pytest.fixture(autouse=True)
def isolated_from_the_checkout(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for name in [name for name in os.environ if name.startswith("HOTLINE_")]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def logging_left_as_found() -> Iterator[None]:
    """A test that runs the command in process installs the product's log handler on the
    stderr pytest captured for it; left behind, every later log line is a 'Logging error'
    on a closed file (thousands of tracebacks in a CI log)."""
    level = logging.getLogger().level
    yield
    unconfigure_logging()
    logging.getLogger().setLevel(level)


@pytest.fixture
def agi_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture hotline.agi records at INFO and up, each stamped with its call id."""
    call_ids = CallIdFilter()
    caplog.handler.addFilter(call_ids)
    caplog.set_level(logging.INFO, logger="hotline.agi")
    yield caplog
    caplog.handler.removeFilter(call_ids)


# Tests that need a service, found by the fixtures they use, get its marker, so
# `pytest -m "not redis"` really leaves out every test that talks to Redis.
MARKER_OF_FIXTURE = {"redis_prefix": "redis", "redis": "redis"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = MARKER_OF_FIXTURE.get(fixture)
            if marker is not None:
                item.add_marker(getattr(pytest.mark, marker))
