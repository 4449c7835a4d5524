"""Each test runs in a directory of its own, whatever the checkout holds (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from hotline.hours import DEFAULT_SURGE_PATH, SurgeSwitch

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_does_not_run_in_the_checkout() -> None:
    assert Path.cwd().resolve() != ROOT
    assert not Path.cwd().resolve().is_relative_to(ROOT)


def test_surge_switched_on_in_the_checkout_is_not_seen_by_tests() -> None:
    # `hotline hours surge on` in a checkout writes var/surge there; tests read their own var/.
    assert not DEFAULT_SURGE_PATH.is_absolute()
    assert SurgeSwitch(DEFAULT_SURGE_PATH)() is False


def test_the_environment_carries_no_hotline_settings() -> None:
    assert [name for name in os.environ if name.startswith("HOTLINE_")] == []
