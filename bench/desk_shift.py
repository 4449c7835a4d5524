"""An operator works a compressed shift of 50 calls in a real headless Chromium against the
simulated PBX and a running controller; every answered call must leave a contact with topic,
wait, operator, resolution and rating, and repeat callers must be recognised by number and by
contact number. It is the test
tests/workspace/test_desk_browser.py::test_a_compressed_shift_of_50_calls_... (skipped in the
suite: it takes minutes), run here with the same controller and browser. Prints the shift's
duration and calls per minute; exits 1 when any check fails.

    .venv/bin/python bench/desk_shift.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workspace"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import test_desk_browser as desk_tests
from desk_browser import chromium_or_skip

SHIFT = desk_tests.SHIFT
shift = desk_tests.test_a_compressed_shift_of_50_calls_leaves_complete_contacts_and_knows_repeats


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the controller's relative paths (var/...) land in the throwaway dir
        driver = chromium_or_skip()
        started = time.perf_counter()
        try:
            async with desk_tests.desk_controller(Path(tmp)) as controller:
                await shift(controller, driver, Path(tmp))
        except Exception:
            traceback.print_exc()
            print("MISSED: the shift's checks failed")
            return 1
        finally:
            driver.quit()
        elapsed = time.perf_counter() - started
    rate = SHIFT * 60 / elapsed
    print(f"shift of {SHIFT} calls in the browser: {elapsed:.0f} s, {rate:.1f} calls/min")
    print("ok: every contact complete, repeats recognised by phone and by contact number")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
