"""The wire-format modules stay light: importing one loads the standard library and nothing else.

The simulator, tools and benchmarks import `hotline.agi.protocol` and `hotline.ami.protocol`
alone; if a package `__init__` or a logging helper pulled in the server, the settings or a part,
each of them would drag SQLAlchemy, Redis and every feature package along. A fresh interpreter
is the only honest place to look, so each import runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY_LIBRARIES = ("sqlalchemy", "redis", "aiohttp", "yaml")
PARTS = ("ivr", "routing", "agents", "recorder", "controller", "pbxsim")
PROJECT = ("hotline", *PARTS)


def _modules_after_import(module: str) -> list[str]:
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    ("module", "package"),
    [("hotline.agi.protocol", "hotline.agi"), ("hotline.ami.protocol", "hotline.ami")],
)
def test_protocol_module_loads_only_the_standard_library(module: str, package: str) -> None:
    loaded = _modules_after_import(module)

    heavy = [name for name in loaded if name.split(".")[0] in HEAVY_LIBRARIES + PARTS]
    assert heavy == []
    project = [name for name in loaded if name.split(".")[0] in PROJECT]
    assert project == sorted(["hotline", package, module])
