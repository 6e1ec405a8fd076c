"""Every third-party module Confirma imports is declared: the product's in requirements.txt,
the tools' (scripts/, bench/) in the requirement files of the tools. A package that only
arrives as another one's dependency can disappear with that package's next release."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("scripts", "bench")
SKIPPED = ("tests", ".venv", "var", "staticfiles", "node_modules")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*files: str) -> set[str]:
    names = set()
    for file in files:
        for line in (ROOT / file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(_normalise(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]))
    return names


def imported_modules(paths) -> dict[str, set[str]]:
    """Top-level module names imported (absolutely) by these files, with who imports them."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def python_files(*, tools: bool):
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0]
        if top in SKIPPED or top.startswith("."):
            continue
        if (top in TOOLS) == tools:
            yield path


def undeclared(paths, allowed: set[str]) -> dict[str, list[str]]:
    local = {p.name for p in ROOT.iterdir() if p.is_dir()} | {p.stem for p in ROOT.glob("*.py")}
    distributions = packages_distributions()
    missing = {}
    for module, importers in imported_modules(paths).items():
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = {_normalise(d) for d in distributions.get(module, [])}
        if not dists & allowed:
            missing[module] = sorted(importers)[:3]
    return missing


def test_the_product_declares_what_it_imports():
    allowed = declared("requirements.txt")
    assert undeclared(python_files(tools=False), allowed) == {}


def test_the_tools_declare_what_they_import():
    allowed = declared("requirements.txt", "requirements-dev.txt", "bench/requirements.txt")
    assert undeclared(python_files(tools=True), allowed) == {}


@pytest.mark.parametrize("module", ["requests", "qrcode"])
def test_requests_and_qrcode_are_runtime_requirements(module):
    """Both are imported by the provider adapters and the demo's fake providers."""
    dists = {_normalise(d) for d in packages_distributions()[module]}
    assert dists & declared("requirements.txt")
