"""How close ``hpctune plan``'s wall-time estimate comes to the real run's wall time.

    python benchmarks/plan_accuracy.py [--cells 16] [--steps 1500] [--sample 4] [--factor 2]
        [--how shared,own] [--workdir /tmp/hpctune-bench/plan]

Writes a synthetic dataset (``--cells`` cells x ``--steps`` 12-hourly steps, inputs x1..x3,
target y) and a StandardScaler + SVR search (``svr__C`` [0.3, 3], kfold 3: a few tenths of a
second per partition, so that a run is not all start-up) for 1 node x 2 cores, then, for each
way in ``--how``:

- ``shared``: ``hpctune.plan(sample=N)`` and then ``hpctune.run`` in this process, both on one
  local cluster of two worker processes (the spec's 1 node x 2 cores);
- ``own``: ``hpctune plan --sample N --json`` and ``hpctune run --quiet`` as a user runs them,
  each a process of its own that starts its own cluster, so that the estimate's start-up
  includes starting and warming up workers.

Prints one JSON line per way (estimate, real wall seconds, their ratio) and exits 1 when a ratio
falls outside [1/FACTOR, FACTOR]. The ratio depends on the machine's load (the plan times its
sample on the same cores the run uses): on a shared machine run it when the machine is quiet.
Figures: RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def write_data(path: Path, cells: int, steps: int, seed: int = 0) -> None:
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    times = pd.date_range("2010-01-01", periods=steps, freq="12h")
    season = np.sin(2 * np.pi * np.arange(steps) / 730.5)
    x = rng.normal(size=(3, cells, steps)) + season
    coef = rng.uniform(0.5, 2.0, size=(3, cells, 1))
    y = np.tanh(coef[0] * x[0]) + coef[1] * x[1] * 0.5 - coef[2] * x[2] ** 2 * 0.1
    y = y + rng.normal(scale=0.1, size=y.shape)
    y[rng.random(size=(cells, steps)) < 0.1] = np.nan
    dims = ("space", "time")
    data = {f"x{i + 1}": (dims, x[i].astype("float32")) for i in range(3)}
    data["y"] = (dims, y.astype("float32"))
    coords = {
        "time": times,
        "latitude": ("space", 40.0 + 0.25 * np.arange(cells)),
        "longitude": ("space", 5.0 + 0.25 * np.arange(cells)),
    }
    xr.Dataset(data, coords=coords).to_netcdf(path)


def write_spec(folder: Path, data: Path, name: str) -> Path:
    spec: dict[str, Any] = {
        "name": name,
        "data": {"paths": str(data), "inputs": ["x1", "x2", "x3"], "target": "y", "chunk": 4},
        "search": {
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
            "params": {"svr__C": [0.3, 3.0]},
            "cv": {"kind": "kfold", "splits": 3},
            "scoring": ["r2"],
            "min_samples": 20,
        },
        "cluster": {"mode": "local", "workers": 2},
        "scheduler": {"nodes": 1, "cores_per_node": 2, "walltime": "00:30:00"},
        "output": "out/{name}",
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def shared(job: Path, sample: int) -> tuple[float, float]:
    """plan, then run, in this process on one local cluster of two worker processes."""
    from distributed import Client, LocalCluster

    import hpctune as api

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as cluster,
        Client(cluster) as client,
    ):
        estimate = api.plan(job, sample=sample, client=client)
        started = time.monotonic()
        summary = api.run(job, client=client)
        real = time.monotonic() - started
    if summary.failed:
        raise SystemExit(f"the run of {job} had {summary.failed} failed partitions")
    return estimate.wall_seconds, real


def own(job: Path, sample: int) -> tuple[float, float]:
    """``hpctune plan`` and ``hpctune run``, each a process with its own cluster."""
    command = [sys.executable, "-m", "hpctune"]
    planned = subprocess.run(
        [*command, "plan", str(job), "--sample", str(sample), "--json"],
        capture_output=True,
        text=True,
    )
    if planned.returncode != 0:
        raise SystemExit(f"hpctune plan failed ({planned.returncode}): {planned.stderr}")
    estimate = json.loads(planned.stdout)["wall_seconds"]
    started = time.monotonic()
    ran = subprocess.run([*command, "run", str(job), "--quiet"], capture_output=True, text=True)
    real = time.monotonic() - started
    if ran.returncode != 0:
        raise SystemExit(f"hpctune run failed ({ran.returncode}): {ran.stderr}")
    return estimate, real


WAYS = {"shared": shared, "own": own}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--sample", type=int, default=4, help="partitions plan times")
    parser.add_argument("--factor", type=float, default=2.0, help="allowed ratio either way")
    parser.add_argument("--how", default="shared,own", help=f"comma-separated: {', '.join(WAYS)}")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hpctune-bench/plan"))
    args = parser.parse_args(argv)
    ways = [w.strip() for w in args.how.split(",") if w.strip()]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        parser.error(f"--how: unknown {', '.join(unknown)}; choose from {', '.join(WAYS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"cells-{args.cells}x{args.steps}.nc"
    if not data.exists():
        write_data(data, args.cells, args.steps)
    worst = 1.0
    for way in ways:
        job = write_spec(args.workdir, data, f"plan-{way}")
        shutil.rmtree(args.workdir / "out" / f"plan-{way}", ignore_errors=True)
        estimate, real = WAYS[way](job, args.sample)
        ratio = estimate / real
        worst = max(worst, ratio, 1 / ratio)
        figures = {
            "how": way,
            "cells": args.cells,
            "steps": args.steps,
            "sample": args.sample,
            "estimate_s": round(estimate, 2),
            "real_s": round(real, 2),
            "ratio": round(ratio, 3),
        }
        print(json.dumps(figures), flush=True)
    if worst > args.factor:
        print(f"an estimate is off by x{worst:.2f}, more than x{args.factor:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
