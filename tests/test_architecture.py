"""The house's rules, checked on the source: no import cycle among hpctune's modules (imports
inside functions count too: a lazy import that dodges a cycle is still one), each package
importing only the layers below its own (:data:`LAYERS`), a docstring on every module and public
function and class, no module over 400 lines, and ``import hpctune`` stays light (the command
line's start-up is measured in benchmarks/RESULTS.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hpctune"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["hpctune", *parts])] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The hpctune modules ``path`` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                found.add(full if full in known else origin)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {target for target in found if target in known and target != name}


def test_no_import_cycle() -> None:
    known = modules()
    edges = {name: sorted(imports(name, path, known)) for name, path in known.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in edges:
        if module not in state:
            visit(module)


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    """The check above finds a cycle made of a lazy import (so that it can fail)."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def x():\n    from .a import y\n")
    known = {"hpctune.a": tmp_path / "a.py", "hpctune.b": tmp_path / "b.py"}
    assert imports("hpctune.a", known["hpctune.a"], known) == {"hpctune.b"}
    assert imports("hpctune.b", known["hpctune.b"], known) == {"hpctune.a"}


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "units", "kept"),
    ("streams", "startup", "progress", "schedulers"),
    ("spec",),
    ("data", "cluster"),
    ("output",),
    ("search",),
    ("checks",),
    ("execution", "submission"),
    ("plan", "predict", "reporting"),
    ("api",),
    ("cli", "worker", "hpctune"),
    ("__main__",),
)
"""hpctune's packages and top-level modules from the bottom up: each imports only from the
layers below its own, so the folders read as the architecture (the README's diagram) and a
newcomer knows where a new piece may import from. ``hpctune`` is the package's ``__init__``."""


def unit(module: str) -> str:
    """The package or top-level module a module belongs to, as :data:`LAYERS` names them."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hpctune"


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = unit(module), unit(target)
            if a != b and rank[b] >= rank[a]:
                found.append(f"{module} imports {target}: {a} is not above {b} in LAYERS")
    return found


def test_each_package_imports_only_the_layers_below() -> None:
    known = modules()
    placed = {name for layer in LAYERS for name in layer}
    assert {unit(name) for name in known} <= placed, "a package or module missing from LAYERS"
    edges = {name: imports(name, path, known) for name, path in known.items()}
    assert layer_violations(edges) == []


def test_the_layer_check_sees_an_import_upwards() -> None:
    assert layer_violations({"hpctune.output.folder": {"hpctune.execution.tasks"}}) != []
    assert layer_violations({"hpctune.execution.tasks": {"hpctune.output.folder"}}) == []
    assert layer_violations({"hpctune.data.source": {"hpctune.cluster.plan"}}) != []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_module_size(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by concept"


def undocumented(path: Path) -> list[str]:
    """The module, or its public functions and classes, without a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [] if ast.get_docstring(tree) else ["the module"]
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body:
        public = isinstance(node, kinds) and not node.name.startswith("_")
        if public and not ast.get_docstring(node):
            found.append(node.name)
    return found


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_and_public_names_say_what_they_are_for(path: Path) -> None:
    assert undocumented(path) == []


def test_the_docstring_check_sees_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text('"""doc"""\n\ndef f():\n    pass\n\n\ndef _g():\n    pass\n')
    assert undocumented(tmp_path / "m.py") == ["f"]


HEAVY = ("distributed", "sklearn", "dask_ml", "xarray", "matplotlib", "netCDF4", "skops")


def test_import_hpctune_stays_light() -> None:
    code = f"import sys, hpctune; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
