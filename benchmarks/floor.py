"""The floor under a whole run: one cell's search in a bare script, no hpctune.

    python benchmarks/floor.py SPEC WAY [--cores 2]

Reads the spec's first cell with xarray (training period only, NaN rows dropped, as hpctune
does), then runs the spec's grid search of a scikit-learn pipeline with ``--cores`` workers in
one of these WAYs, and exits. Time the whole process from outside (``/usr/bin/time``): start,
imports, read, search, exit; nothing written.

- ``serial``: scikit-learn's ``GridSearchCV``, ``n_jobs=1``;
- ``threads``: scikit-learn's ``GridSearchCV`` on joblib's threading backend;
- ``loky``: scikit-learn's ``GridSearchCV``, ``n_jobs=cores`` (joblib's default: processes);
- ``dask-threads``: dask-ml's ``GridSearchCV`` on dask's threaded scheduler (no
  distributed);
- ``dask-ml-threads``: dask-ml's ``GridSearchCV`` on a distributed ``LocalCluster`` whose
  workers are threads of this process;
- ``dask-ml-processes``: the same on worker processes.

For the ``onecell`` preset (StandardScaler + SVR, grid search, k-fold): the estimator, grid and
folds are the spec's; other specs are not supported. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import sys
import time
from pathlib import Path

WAYS = ("serial", "threads", "loky", "dask-threads", "dask-ml-threads", "dask-ml-processes")


def main() -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("way", choices=WAYS)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import xarray as xr
    import yaml
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline

    spec = yaml.safe_load(Path(args.spec).read_text())
    data, search = spec["data"], spec["search"]
    if search.get("method", "grid") != "grid" or search["cv"].get("kind") != "kfold":
        raise SystemExit("floor.py runs the grid search and k-fold splits of the onecell preset")
    base = Path(args.spec).resolve().parent
    paths = sorted(glob.glob(str(base / data["paths"])))
    with xr.open_mfdataset(paths, combine="by_coords") as ds:
        cell = ds.isel({data["space"]: 0})
        if "test" in data:
            cell = cell.sel(
                {data["time"]: cell[data["time"]] < np.datetime64(data["test"]["from"])}
            )
        cell = cell[[*data["inputs"], data["target"]]].load()
    x = np.stack([cell[v].values for v in data["inputs"]], axis=1)
    y = cell[data["target"]].values
    keep = ~(np.isnan(x).any(axis=1) | np.isnan(y))
    x, y = x[keep], y[keep]

    steps = []
    for path in search["estimator"]:
        module, _, name = path.rpartition(".")
        steps.append(getattr(importlib.import_module(module), name)())
    pipe = make_pipeline(*steps)
    grid = search["params"]
    cv = KFold(search["cv"]["splits"])
    read = time.perf_counter()

    if args.way == "dask-threads":
        import dask_ml.model_selection as dms

        found = dms.GridSearchCV(
            pipe, grid, cv=cv, error_score="raise", scheduler="threads", n_jobs=args.cores
        ).fit(x, y)
    elif args.way == "dask-ml-threads" or args.way == "dask-ml-processes":
        import dask_ml.model_selection as dms
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=args.cores,
                threads_per_worker=1,
                processes=args.way == "dask-ml-processes",
                dashboard_address=None,
            ) as cluster,
            Client(cluster),
        ):
            found = dms.GridSearchCV(pipe, grid, cv=cv, error_score="raise").fit(x, y)
    else:
        import joblib

        n_jobs = 1 if args.way == "serial" else args.cores
        backend = "threading" if args.way == "threads" else "loky"
        with joblib.parallel_backend(backend, n_jobs=n_jobs):
            found = GridSearchCV(pipe, grid, cv=cv, n_jobs=n_jobs, error_score="raise").fit(x, y)
    done = time.perf_counter()
    print(
        f"{args.way}: {len(y)} rows, best {found.best_params_} {found.best_score_:.6f}; "
        f"start+read {read - started:.2f} s, search {done - read:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
