"""What importing a piece of the product costs, beside a bare interpreter in the same run.

The architecture keeps the wire formats light (the simulator and tools import them alone) and
the core free of features. This prints, for each import, the median wall time of a fresh
`python -c "import X"` over several runs, how many project modules and how many modules in all
it loads, and its ratio to a bare `python -c pass` measured the same way.

    .venv/bin/python bench/imports.py [--runs 15]

Exits non-zero when a wire-format module loads anything beyond the standard library and its
own package (the goal the architecture test also holds), so a regression is visible.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("hotline", "ivr", "routing", "agents", "recorder", "controller", "pbxsim")
WIRE_FORMATS = ("hotline.agi.protocol", "hotline.ami.protocol")
IMPORTS = (
    *WIRE_FORMATS,
    "hotline.agi.server",
    "pbxsim.runner",
    "controller.node",
)
PROBE = "import sys, json; {statement}; print(json.dumps(sorted(name for name in sys.modules)))"


def timed(statement: str, runs: int) -> tuple[float, list[str]]:
    """Median seconds of a fresh interpreter running `statement`, and the modules it loaded."""
    times, loaded = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PROBE.format(statement=statement)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        times.append(time.perf_counter() - started)
        loaded = json.loads(done.stdout)
    return statistics.median(times), loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bare, bare_modules = timed("pass", args.runs)
    print(f"bare interpreter: {bare * 1000:.1f} ms, {len(bare_modules)} modules")
    print(f"{'import':<24} {'ms':>8} {'x bare':>7} {'modules':>8} {'project':>8}")
    failed = False
    for name in IMPORTS:
        seconds, modules = timed(f"import {name}", args.runs)
        ours = [m for m in modules if m.split(".")[0] in PROJECT]
        row = f"{name:<24} {seconds * 1000:>8.1f} {seconds / bare:>7.2f} {len(modules):>8}"
        print(f"{row} {len(ours):>8}")
        if name in WIRE_FORMATS:
            package = name.rpartition(".")[0]
            extra = [m for m in ours if m not in ("hotline", package, name)]
            allowed = {*PROJECT, *sys.stdlib_module_names}
            foreign = [
                m for m in modules if m not in bare_modules and m.split(".")[0] not in allowed
            ]
            if extra or foreign:
                print(f"  goal missed: {name} also loads {extra + foreign}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
