"""The map in ARCHITECTURE.md, enforced: who may import whom, and how big a module may grow.

(What the simulator may import is checked in tests/pbxsim/test_pbxsim_imports.py.)

Read from the source (the AST of every module), not from what happens to be imported at run
time: an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = "hotline"
PARTS = ("ivr", "routing", "agents", "recorder", "workspace", "supervision", "reporting", "quality")
ROOT_PACKAGE = "controller"  # the composition root
SIMULATOR = "pbxsim"
PRODUCT = (CORE, *PARTS, ROOT_PACKAGE, SIMULATOR)
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        yield ".".join(parts), path


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module name `path` imports, with its line; relative imports made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:  # `from hotline.agi import protocol` names a module
                yield f"{base}.{alias.name}", node.lineno


def top(name: str) -> str:
    return name.split(".")[0]


def forbidden_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for module, path in modules(package)
        for name, line in imported(module, path)
        if top(name) in forbidden
    ]


def test_the_core_imports_no_part_no_root_and_no_simulator() -> None:
    assert forbidden_imports(CORE, (*PARTS, ROOT_PACKAGE, SIMULATOR)) == []


# Which other parts a part may use: operators' features act on the ACD's node; nothing else
# crosses between parts (ports wired by the composition root do instead).
PARTS_A_PART_MAY_USE = {
    "ivr": (),
    "routing": (),
    "recorder": (),
    "agents": ("routing",),
    "workspace": (),
    "supervision": (),
    "reporting": (),
    "quality": (),
}


def test_parts_import_only_the_core_and_the_parts_the_map_allows() -> None:
    for part in PARTS:
        others = tuple(p for p in PARTS if p != part and p not in PARTS_A_PART_MAY_USE[part])
        assert forbidden_imports(part, (*others, ROOT_PACKAGE, SIMULATOR)) == [], part


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from routing.acd import Acd\n", encoding="utf-8")
    assert list(imported("hotline.bad", bad)) == [("routing.acd", 2), ("routing.acd.Acd", 2)]


@pytest.mark.parametrize("package", PRODUCT)
def test_no_module_over_the_size_limits(package: str) -> None:
    too_big = []
    for _, path in modules(package):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} {size}")
    assert too_big == []


def test_public_class_names_are_unique_across_the_product() -> None:
    defined: defaultdict[str, list[str]] = defaultdict(list)
    for package in PRODUCT:
        for _, path in modules(package):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    defined[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}
