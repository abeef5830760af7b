"""Shared by the cluster tests on the real SLURM: a small job, a slow estimator, process lookup.

``SlowRidge`` (from ``tests_support``) and ``NodeRidge`` are imported by the worker processes
too (by their import path in the spec), so :func:`worker_env` puts this folder and ``tests/``
on their PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from helpers import synthetic, synthetic_spec, write_spec
from sklearn.linear_model import Ridge
from tests_support import FIT_SECONDS, SlowRidge  # noqa: F401 (specs name cluster_support.SlowRidge)

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


class NodeRidge(Ridge):
    """Ridge whose every fit appends the name of the node it ran on to the file ``log``, then
    takes ``$HPCTUNE_TEST_FIT_SECONDS`` (0.2 s by default) longer."""

    def __init__(self, alpha: float = 1.0, *, log: str = "") -> None:
        super().__init__(alpha=alpha)
        self.log = log

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NodeRidge:
        from hpctune.cluster import node_name

        if self.log:
            with open(self.log, "a") as out:  # one short append: a whole line, from any node
                out.write(node_name() + "\n")
        time.sleep(float(os.environ.get(FIT_SECONDS, "0.2")))
        return super().fit(X, y, sample_weight)


def make_job(folder: Path, *, cells: int = 8, slow: bool = False, **changes: Any) -> Path:
    """A quick Ridge search on ``cells`` synthetic cells, everything bound to 127.0.0.1."""
    synthetic(cells=cells).to_netcdf(folder / "cells.nc")
    changes.setdefault("name", f"cl-{uuid.uuid4().hex[:6]}")
    spec = synthetic_spec(folder / "cells.nc", cluster__interface="lo", **changes)
    if slow:
        spec["search"]["estimator"] = [
            "sklearn.preprocessing.StandardScaler",
            "cluster_support.SlowRidge",
        ]
        spec["search"]["params"] = {"slowridge__alpha": [0.1, 1.0]}
    else:
        spec["search"]["params"] = {"ridge__alpha": [0.1, 1.0]}
    return write_spec(folder, spec)


def worker_env(fit_seconds: float | None = None) -> dict[str, str]:
    """The environment for ``hpctune run`` (passed on to srun steps and worker jobs)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), str(TESTS), env.get("PYTHONPATH", "")) if p
    )
    env.pop("HPCTUNE_NODE_NAME", None)
    if fit_seconds is not None:
        env[FIT_SECONDS] = str(fit_seconds)
    return env


def hpctune_command(spec: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hpctune", "-v", "run", str(spec), *args]


def name_of(spec: Path) -> str:
    import yaml

    return str(yaml.safe_load(spec.read_text())["name"])


def output_of(spec: Path) -> Path:
    return spec.parent / "out" / name_of(spec)


def salloc_command(spec: Path, *options: str) -> list[str]:
    """``salloc -J <the spec's unique name> OPTIONS hpctune -v run SPEC``."""
    return ["salloc", "-J", name_of(spec), *options, *hpctune_command(spec)]


def cancel_by_name(name: str) -> None:
    """Cancel what a test left in the queue under its unique job name (an allocation whose
    salloc was killed stays until its time limit otherwise)."""
    import subprocess

    subprocess.run(["scancel", "--name", name], capture_output=True, timeout=30, check=False)


def results(spec: Path) -> Any:
    import xarray as xr

    with xr.open_dataset(output_of(spec) / "results.nc") as ds:
        return ds.load()


def processes_with(*needles: str) -> list[int]:
    """Ids of this machine's processes whose command line contains every needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


def nannies_of(output: Path) -> list[int]:
    """The ``python -m hpctune.worker`` processes (a nanny each) of the run writing ``output``;
    not the launchers (srun) whose command line holds the same words."""
    found = []
    for pid in processes_with("hpctune.worker", str(output)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"-m", b"hpctune.worker"]:
            found.append(pid)
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(poll)
