"""The helper package has three rooms: production plumbing (flat modules), smoke fixtures (`cookbook.smoke`)
and performance tooling (`cookbook.perf`). Notebooks, tests and benchmarks may import any of them; a
production module imports neither fixtures nor tooling, except `RunConfig.resolve()`'s smoke branch."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cookbook"
ROOMS = ("cookbook.smoke", "cookbook.perf")
# (module, function) pairs allowed to reach a room: the one door into the smoke fixtures.
DOORS = {("config.py", "resolve")}


def room_imports(path: Path) -> list[tuple[str, str | None]]:
    """(imported module, enclosing function or None) for every import of a smoke or perf module in `path`."""
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            modules = []
            if isinstance(child, ast.ImportFrom) and child.module:
                modules = [child.module, *(f"{child.module}.{alias.name}" for alias in child.names)]
            elif isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            hit = next(
                (m for m in modules if m == ROOMS[0] or m == ROOMS[1] or m.startswith(tuple(r + "." for r in ROOMS))),
                None,
            )
            if hit:
                found.append(
                    (
                        child.module if isinstance(child, ast.ImportFrom) and child.module != "cookbook" else hit,
                        function,
                    )
                )
            visit(child, name)

    visit(ast.parse(path.read_text()), None)
    return found


PRODUCTION = sorted(p for p in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", PRODUCTION, ids=lambda p: p.name)
def test_production_modules_import_no_fixture_or_tooling(path):
    leaks = [(module, fn) for module, fn in room_imports(path) if (path.name, fn) not in DOORS]
    assert not leaks, f"{path.name} imports {leaks}: production code must not depend on smoke fixtures or perf tooling"


def test_the_check_sees_a_leak(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text(
        "import torch\nfrom cookbook.smoke.data import chat_examples\n\ndef f():\n    import cookbook.perf.memory_plan\n"
    )
    assert room_imports(leaky) == [("cookbook.smoke.data", None), ("cookbook.perf.memory_plan", "f")]


def test_smoke_is_reached_only_through_resolve():
    assert [fn for _, fn in room_imports(PACKAGE / "config.py")] == ["resolve", "resolve"]


def test_importing_the_package_loads_no_fixture_or_tooling():
    import subprocess
    import sys

    code = "import sys, cookbook, cookbook.chat, cookbook.sft_data, cookbook.packing, cookbook.loading; print(sorted(m for m in sys.modules if m.startswith(('cookbook.smoke', 'cookbook.perf'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_architecture_module_map_lists_every_module():
    """ARCHITECTURE.md's module map names every module of the three rooms, and no module that is gone."""
    text = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text()
    start = text.index("src/cookbook/")
    listed = set(re.findall(r"^ {2,4}(\w+\.py)\s", text[start : text.index("0N-<Technique>/")], flags=re.M))
    present = {p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    assert listed == present, f"missing from the map: {sorted(present - listed)}; gone: {sorted(listed - present)}"
