"""LightGBM, XGBoost or CatBoost inside hpctune against the same fits alone, on the real data.

    python benchmarks/boost.py [--library lightgbm|xgboost|catboost] [--repeat 2] [--old]

The search: one per cell of ``data/ascat_isba_5cells.nc`` (5 cells, ~4700 training rows of 8
inputs each), 4 candidates x 3 folds and the refit. Timed, in turn, ``--repeat`` times:

- ``alone 1 core``: scikit-learn's ``GridSearchCV`` per cell, one after the other in this
  process, each fit with one thread: the serial work.
- ``alone 2 procs``: the same searches spread over as many processes as cores (a
  ``ProcessPoolExecutor``, one cell per task): the same fits alone on the same cores.
- ``hpctune``: ``hpctune.run`` of the same search (``restart=True``) on a Dask cluster of as
  many worker processes as cores, started and warmed (a first run) before the clock, as the
  process pool is: the same fits on the same cores, with hpctune's reading, graphs, model
  files and results.nc.
- ``hpctune whole``: the ``hpctune run`` command in a subprocess, its start-up (the cluster,
  the imports in every process) included.
- ``--old`` adds ``hpctune n_jobs=None``: the warmed run with the library's default threads
  (one per physical core in every fit at once), as before hpctune set one thread per slot.

Wall seconds; the machine's load (``os.getloadavg``) is printed with each figure, as timings
on a shared machine drift. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "ascat_isba_5cells.nc"
INPUTS = ["TG1", "TG2", "TG3", "WG1", "WG2", "WG3", "BIOMA1", "BIOMA2"]
GRIDS = {
    "lightgbm": ("lightgbm.LGBMRegressor", {"n_estimators": [100, 200], "num_leaves": [15, 31]}),
    "xgboost": ("xgboost.XGBRegressor", {"n_estimators": [100, 200], "max_depth": [4, 6]}),
    "catboost": ("catboost.CatBoostRegressor", {"iterations": [100, 200], "depth": [4, 6]}),
}
ONE_THREAD = {
    "lightgbm": {"n_jobs": 1, "verbose": -1},
    "xgboost": {"n_jobs": 1},
    "catboost": {"thread_count": 1, "verbose": False, "allow_writing_files": False},
}
DEFAULT_THREADS = {
    "lightgbm": ("n_jobs", None),
    "xgboost": ("n_jobs", None),
    "catboost": ("thread_count", -1),
}
"""Each library's threads argument and its default, a thread per core in each fit (``--old``)."""


def cell_rows(cell: int) -> tuple[np.ndarray, np.ndarray]:
    """The training rows of one cell, as hpctune selects them (finite, before 2016)."""
    import xarray as xr

    with xr.open_dataset(DATA) as ds:
        x = np.stack([ds[v].values[cell] for v in INPUTS], axis=-1)
        y = ds["sig"].values[cell]
        times = ds["time"].values
    valid = np.isfinite(y) & np.isfinite(x).all(axis=-1) & (times < np.datetime64("2016-01-01"))
    return x[valid].astype(np.float64), y[valid].astype(np.float64)


def search_alone(library: str, cell: int) -> float:
    """One cell's search, as scikit-learn runs it alone; returns its wall seconds."""
    import importlib

    from sklearn.model_selection import GridSearchCV, KFold

    path, grid = GRIDS[library]
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    x, y = cell_rows(cell)
    started = time.perf_counter()
    GridSearchCV(cls(**ONE_THREAD[library]), grid, cv=KFold(3), n_jobs=1).fit(x, y)
    return time.perf_counter() - started


def alone_serial(library: str) -> float:
    started = time.perf_counter()
    for cell in range(5):
        search_alone(library, cell)
    return time.perf_counter() - started


def alone_parallel(library: str, processes: int) -> float:
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(search_alone, [library] * 5, range(5)))  # imports paid before the clock
        started = time.perf_counter()
        list(pool.map(search_alone, [library] * 5, range(5)))
        return time.perf_counter() - started


def write_job(library: str, folder: Path, old: bool) -> Path:
    path, grid = GRIDS[library]
    params = {k: list(v) for k, v in grid.items()}
    if old:
        key, default = DEFAULT_THREADS[library]
        params[key] = [default]
    spec = {
        "name": f"bench-{library}{'-old' if old else ''}",
        "data": {
            "paths": str(DATA),
            "inputs": INPUTS,
            "target": "sig",
            "test": {"from": "2016-01-01"},
        },
        "search": {"estimator": [path], "params": params, "cv": {"kind": "kfold", "splits": 3}},
        "cluster": {"mode": "local", "dashboard": False},
        "output": str(folder / "{name}"),
    }
    job = folder / f"job{'-old' if old else ''}.yaml"
    job.write_text(yaml.safe_dump(spec))
    return job


def hpctune_warm(job: Path, client: object) -> float:
    import hpctune

    started = time.perf_counter()
    summary = hpctune.run(job, client=client, restart=True)
    assert summary.ok == 5, summary.to_dict()
    return time.perf_counter() - started


def hpctune_whole(job: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hpctune", "run", str(job), "--json", "--restart"],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=sorted(GRIDS), default="lightgbm")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--old", action="store_true", help="also the library's default threads")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"{args.library}: 5 cells x (4 candidates x 3 folds + refit), {cores} cores")
    from distributed import Client, LocalCluster

    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(n_workers=cores, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        job, old_job = (
            write_job(args.library, Path(tmp), False),
            write_job(args.library, Path(tmp), True),
        )
        hpctune_warm(job, client)  # imports on the workers, before the clock
        for attempt in range(args.repeat):
            rows = [("alone 1 core", alone_serial(args.library))]
            rows.append((f"alone {cores} procs", alone_parallel(args.library, cores)))
            rows.append((f"hpctune {cores} procs", hpctune_warm(job, client)))
            if args.old:
                rows.append((f"hpctune {cores} procs n_jobs=None", hpctune_warm(old_job, client)))
            rows.append(("hpctune whole command", hpctune_whole(job)))
            load = " ".join(f"{v:.1f}" for v in os.getloadavg())
            for name, seconds in rows:
                print(f"  [{attempt + 1}] {name:32s} {seconds:7.2f} s   load {load}", flush=True)


if __name__ == "__main__":
    main()
