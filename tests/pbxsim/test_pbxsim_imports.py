"""The simulator stands apart from the product: every module under pbxsim/ imports only the
standard library, PyYAML, pbxsim itself and the core's protocol, clock and YAML-reader modules."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PBXSIM = Path(__file__).resolve().parents[2] / "pbxsim"
ALLOWED_MODULES = frozenset(
    {"yaml", "hotline.agi.protocol", "hotline.ami.protocol", "hotline.clock", "hotline.yamldoc"}
)
# Importing a submodule imports its parents; these packages must stay free of side effects.
ALLOWED_PARENTS = frozenset({"hotline", "hotline.agi", "hotline.ami"})
# Listed one by one so that nothing else slips in: the stand-in application-status service
# is an outside system speaking HTTP, served with aiohttp (a library the product installs
# anyway). The test fails on an entry that no longer matches anything.
PENDING = frozenset({"pbxsim/status_service.py: aiohttp"})


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import; `from a import b` may name a module `a.b`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                if f"{node.module}.{alias.name}" in ALLOWED_MODULES:
                    continue
                if node.module in ALLOWED_PARENTS:
                    yield node.lineno, f"{node.module}.{alias.name}"


def allowed(module: str) -> bool:
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names or top == "pbxsim":
        return True
    if module in ALLOWED_PARENTS:
        return True
    return any(module == name or module.startswith(f"{name}.") for name in ALLOWED_MODULES)


def forbidden_imports(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in imported_modules(tree):
            if not allowed(module):
                found.append(f"{path.relative_to(root.parent)}:{line}: {module}")
    return found


def test_pbxsim_imports_only_the_protocols_the_clock_and_the_stdlib() -> None:
    assert PBXSIM.is_dir()
    found = forbidden_imports(PBXSIM)
    debts = {_file_and_module(entry) for entry in found}
    assert [entry for entry in found if _file_and_module(entry) not in PENDING] == []
    assert sorted(PENDING - debts) == [], "a pending import is gone: drop it from PENDING"


def _file_and_module(entry: str) -> str:
    """``pbxsim/x.py:12: aiohttp`` -> ``pbxsim/x.py: aiohttp``."""
    path, _, rest = entry.partition(":")
    return f"{path}: {rest.partition(': ')[2]}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    package = tmp_path / "pbxsim"
    package.mkdir()
    (package / "ok.py").write_text(
        "import asyncio\nimport yaml\nfrom hotline.agi.protocol import AgiReply\n"
        "from hotline import clock\nfrom hotline.clock import SteppedClock\n"
        "from pbxsim import model\n"
    )
    (package / "bad.py").write_text(
        "from controller.settings import Settings\nfrom hotline import store\nimport routing.acd\n"
        "def f():\n    import aiohttp\n"
    )
    assert forbidden_imports(package) == [
        "pbxsim/bad.py:1: controller.settings",
        "pbxsim/bad.py:2: hotline.store",
        "pbxsim/bad.py:3: routing.acd",
        "pbxsim/bad.py:5: aiohttp",
    ]
