"""The house's rules, checked on the source: no import cycle among hpctune's modules (imports
inside functions count too: a lazy import that dodges a cycle is still one), no module over
400 lines but the two still to be split, and ``import hpctune`` stays light (the command line's
start-up is measured in benchmarks/RESULTS.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hpctune"
MAX_LINES = 400
NOT_YET_SPLIT = {"plan.py", "predict.py"}
"""Modules still over :data:`MAX_LINES`: the estimate and the sampler, and prediction, which
are to move into ``execution/``. Nothing else may grow past it."""


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


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_module_size(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if path.relative_to(PACKAGE).as_posix() in NOT_YET_SPLIT:
        return
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by concept"


HEAVY = ("distributed", "sklearn", "dask_ml", "xarray", "matplotlib", "netCDF4", "skops")


def test_import_hpctune_stays_light() -> None:
    code = f"import sys, hpctune; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
