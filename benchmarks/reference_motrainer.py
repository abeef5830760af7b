"""The reference: MOTrainer's documented per-cell workflow with dask-ml, on the same data and grid.

    benchmarks/.venv/bin/python benchmarks/reference_motrainer.py SPEC [--set KEY=VALUE ...]
        [--workers 2] [--inner secede|sync|nested] [--copy-search] [--results FILE.jsonl]
        [--save-models DIR] [--cells K] [--json]

MOTrainer (https://github.com/VegeWaterDynamics/motrainer) is not a dependency of hpctune: it is
installed for the benchmarks only, in benchmarks/.venv (see benchmarks/README.md).

The steps are those of MOTrainer's documentation (docs/usage_split.md, docs/usage_daskml.md) and
of its notebook docs/notebooks/example_daskml.ipynb, calling the installed motrainer functions:

1. open the data lazily with xarray (the notebook opens a Zarr store with its stored chunks; the
   NetCDF equivalent ``xr.open_mfdataset(paths, chunks={})`` uses the files' HDF5 chunks);
2. ``bags = motrainer.dataset_split(ds, "space")``: a dask bag of one Dataset per grid cell;
3. ``bags.map(motrainer.train_test_split, split={"time": <test start>})``: training period
   before the spec's ``data.test.from``, test period from it on;
4. ``train_test_bags.pluck(0).map(chunk, {"space": 500}).map(to_dataframe)`` with
   ``to_dataframe(ds) = ds.to_dask_dataframe()``;
5. a ``dask_ml.model_selection.GridSearchCV(estimator, param_grid, cv=..., scoring=...,
   refit=...)`` with its other arguments at their defaults, as in the notebook;
6. ``train_bags.map(optimize, grid_search=..., input_list=..., output_list=[target])`` where
   ``optimize`` drops the rows with a NaN (``df.dropna()``) and calls
   ``grid_search.fit(df[input_list], df[output_list])``, then ``.compute()``, which returns the
   fitted searches to this process;
7. the notebook's evaluation: ``test_bags.compute()``, then, per cell, ``dropna()`` and the
   model's ``predict`` on the test period (r2, RMSE, MAE);
8. optionally (``--save-models``) the notebook's ``motrainer.util.sklearn_save`` of each model.

Only the configuration comes from hpctune: the spec's paths, inputs, target, test start,
estimator, grid, cv splitter and scoring (``hpctune.load_spec`` and ``hpctune.search``), so that
both run the same searches. The computation runs on a ``distributed.LocalCluster`` of
``--workers`` processes with one thread each, bound to 127.0.0.1, without a dashboard.

Compatibility notes (motrainer 0.1.7 with the pandas, xarray and dask installed here):

- ``dataset_split(ds, "space")`` still works; xarray warns (FutureWarning) that ``ds.dims[...]``
  will change, which motrainer uses internally.
- Exactly as documented (``--inner nested``), each cell's ``grid_search.fit`` runs inside a bag
  task and dask-ml sends the search's own graph to the same distributed cluster, then waits for
  it while holding its worker thread. Once the bag's tasks hold every worker thread (at once, with
  2 workers x 1 thread and 2 or more cells), nothing is left to run the searches: the run
  deadlocks. Two smallest changes make it finish, chosen with ``--inner``: ``secede`` (the
  default) wraps ``optimize`` in ``distributed.secede()`` / ``rejoin()``, distributed's idiom for
  tasks that launch tasks, so that the search still runs on the cluster (the two levels of
  parallelism the documentation describes); ``sync`` builds the search with
  ``GridSearchCV(..., scheduler="sync")`` so that it runs serially inside its bag task.
- ``motrainer.util`` (for ``sklearn_save``) imports h5py, which hpctune does not need: it is
  installed in benchmarks/.venv. Should a model not fit in an HDF5 attribute, ``--save-models``
  writes the same pickle as ``<id>_model.pkl`` and counts it as a fallback.
- As documented, ``train_bags.map(optimize, grid_search=grid_search, ...)`` hands the same
  search object to every cell of a bag partition (``db.from_sequence`` puts about len/100 cells
  in a partition): each ``fit`` refits that one object and returns it, so after ``compute()``
  all the cells of a partition hold the fitted search of its last cell. The notebook's 5 cells
  make 5 partitions of one cell, where this does not show. The work done is the same either
  way; the summary counts the cells affected (``shared_models``) and ``--copy-search`` (used by
  compare.py, so that the results can be compared with hpctune's) fits a ``copy.deepcopy`` of
  the search for each cell.
- The notebook's evaluation hands dask dataframes to ``predict`` and the metrics; here each
  cell's test rows are computed once (``.compute()``) first.

Prints the wall time and cells per second; ``--results FILE`` writes one JSON line per cell
(index, best parameters, mean cv scores of the best candidate, test scores) to compare with
hpctune's results.nc.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- the notebook's steps


def to_dataframe(ds: Any) -> Any:
    return ds.to_dask_dataframe()


def chunk(ds: Any, chunks: dict) -> Any:
    return ds.chunk(chunks)


def optimize(df: Any, grid_search: Any, input_list: list[str], output_list: list[str]) -> Any:
    """The notebook's ``optimize``: drop rows with NaN, fit the search on the cell's rows."""
    from sklearn.exceptions import DataConversionWarning

    df = df.dropna()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DataConversionWarning)
        grid_result = grid_search.fit(df[input_list], df[output_list])
    return grid_result


def optimize_seceded(
    df: Any, grid_search: Any, input_list: list[str], output_list: list[str]
) -> Any:
    """``optimize`` run outside the worker's thread pool while the search's own graph runs on
    the cluster (distributed's documented idiom for tasks that launch tasks)."""
    from distributed import rejoin, secede

    secede()
    try:
        return optimize(df, grid_search, input_list, output_list)
    finally:
        rejoin()


def copying(fit: Any) -> Any:
    """``fit`` on a fresh copy of the search, so that each cell gets its own fitted object."""

    def fit_copy(df: Any, grid_search: Any, input_list: list[str], output_list: list[str]) -> Any:
        import copy

        return fit(df, copy.deepcopy(grid_search), input_list, output_list)

    return fit_copy


# --------------------------------------------------------------------------- the run


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import dask_ml.model_selection as dcv
    import motrainer
    import xarray as xr
    from distributed import Client, LocalCluster
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from hpctune import load_spec
    from hpctune.data import resolve_paths
    from hpctune.search import build_estimator, make_cv, param_space

    job = load_spec(args.spec, args.overrides)
    search = job.search
    if search.method != "grid":
        raise SystemExit("the reference follows MOTrainer's notebook: grid searches only")
    if search.cv.kind == "years":
        raise SystemExit("the reference needs a cv splitter that does not depend on the rows")
    paths = resolve_paths(job.data)
    inputs, target = list(job.data.inputs), job.data.target
    test = job.data.test
    split_at = np.datetime64(test.start, "ns") if test is not None else None

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    client = Client(cluster)
    cluster_seconds = time.perf_counter() - started
    try:
        # 1. the data, lazily, with its stored chunks
        ds = xr.open_mfdataset(paths, chunks={})
        ds = ds[[*inputs, target]]
        if args.cells:
            ds = ds.isel(space=slice(0, args.cells))
        n_cells = int(ds.sizes["space"])

        # 2.-4. split per cell, by time, into dask dataframes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            bags = motrainer.dataset_split(ds, "space")
        if split_at is not None:
            train_test_bags = bags.map(motrainer.train_test_split, split={"time": split_at})
            train_bags = train_test_bags.pluck(0).map(chunk, {"space": 500}).map(to_dataframe)
            test_bags = train_test_bags.pluck(1).map(chunk, {"space": 500}).map(to_dataframe)
        else:
            train_bags = bags.map(chunk, {"space": 500}).map(to_dataframe)
            test_bags = None
        split_seconds = time.perf_counter() - started - cluster_seconds

        # 5. the search, as the notebook builds it
        multi = len(search.scoring) > 1
        extra = {"scheduler": "sync"} if args.inner == "sync" else {}
        grid_search = dcv.GridSearchCV(
            estimator=build_estimator(search),
            param_grid=param_space(search),
            cv=make_cv(search.cv, search.seed),
            scoring=list(search.scoring) if multi else search.scoring[0],
            refit=search.refit_metric if multi else True,
            **extra,
        )

        # 6. map the fit over the bag and compute
        fit = optimize_seceded if args.inner == "secede" else optimize
        if args.copy_search:
            fit = copying(fit)
        optimized = train_bags.map(
            fit, grid_search=grid_search, input_list=inputs, output_list=[target]
        )
        fit_started = time.perf_counter()
        models = optimized.compute()
        fit_seconds = time.perf_counter() - fit_started
        # cells whose returned search is the very object returned for another cell
        shared = len(models) - len({id(m) for m in models})

        # 7. evaluation on the test period, as the notebook does it
        eval_started = time.perf_counter()
        test_scores: list[dict[str, float | None]] = []
        if test_bags is not None:
            for model, test_df in zip(models, test_bags.compute(), strict=True):
                test_df = test_df.dropna().compute()
                if len(test_df) == 0:
                    test_scores.append({})
                    continue
                y_true = test_df[[target]]
                y_eval = model.predict(test_df[inputs])
                test_scores.append(
                    {
                        "r2": _finite(r2_score(y_true, y_eval)) if len(test_df) > 1 else None,
                        "rmse": _finite(math.sqrt(mean_squared_error(y_true, y_eval))),
                        "mae": _finite(mean_absolute_error(y_true, y_eval)),
                    }
                )
        eval_seconds = time.perf_counter() - eval_started

        # 8. the notebook's model files
        save_seconds = 0.0
        fallback = 0
        if args.save_models:
            save_started = time.perf_counter()
            fallback = save_models(models, Path(args.save_models), paths)
            save_seconds = time.perf_counter() - save_started
    finally:
        client.close()
        cluster.close()
    wall = time.perf_counter() - started

    if args.results:
        with open(args.results, "w", encoding="utf-8") as out:
            for index, model in enumerate(models):
                out.write(
                    json.dumps(
                        _record(
                            index, model, search, multi, test_scores[index] if test_scores else {}
                        )
                    )
                    + "\n"
                )
    return {
        "cells": n_cells,
        "workers": args.workers,
        "inner": args.inner,
        "seconds": round(wall, 3),
        "cells_per_second": round(n_cells / wall, 3) if wall > 0 else None,
        "cluster_seconds": round(cluster_seconds, 3),
        "split_seconds": round(split_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "evaluate_seconds": round(eval_seconds, 3),
        "save_seconds": round(save_seconds, 3),
        "save_fallbacks": fallback,
        "copy_search": args.copy_search,
        "shared_models": shared,
    }


def _record(index: int, model: Any, search: Any, multi: bool, test: dict) -> dict[str, Any]:
    cv = model.cv_results_
    best = int(model.best_index_)
    scores = {
        scorer: _finite(cv[f"mean_test_{scorer}" if multi else "mean_test_score"][best])
        for scorer in search.scoring
    }
    return {
        "index": index,
        "best_params": {k: _plain(v) for k, v in model.best_params_.items()},
        "best_score": scores[search.refit_metric],
        "cv_scores": scores,
        "test_scores": test,
    }


def save_models(models: list[Any], folder: Path, paths: list[str]) -> int:
    """The notebook's ``util.sklearn_save(model, f"{id}_model.h5", meta_data=...)``; returns
    how many models were too large for it and were written as plain pickles instead."""
    import pickle

    from motrainer import util

    folder.mkdir(parents=True, exist_ok=True)
    fallback = 0
    for index, model in enumerate(models):
        target = folder / f"{index}_model.h5"
        try:
            util.sklearn_save(model, str(target), meta_data={"data_source": paths[0]})
        except (OSError, RuntimeError, ValueError):
            fallback += 1
            if target.exists():
                target.unlink()
            with open(folder / f"{index}_model.pkl", "wb") as out:
                pickle.dump(model, out)
    return fallback


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="the hpctune job spec whose data and grid to use")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value, as hpctune --set",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of the LocalCluster, 1 thread each (default 2)",
    )
    parser.add_argument("--cells", type=int, default=None, help="use the first K cells only")
    parser.add_argument(
        "--inner",
        choices=["secede", "sync", "nested"],
        default="secede",
        help="how each cell's dask-ml search runs inside its bag task: 'secede' (default) on the "
        "cluster, the task leaving its worker thread meanwhile; 'sync' serially inside the task "
        "(GridSearchCV(scheduler='sync')); 'nested' exactly as documented, which deadlocks on a "
        "distributed cluster once the bag tasks occupy every worker thread",
    )
    parser.add_argument(
        "--copy-search",
        action="store_true",
        help="fit a copy of the search for each cell; as documented, the cells of one bag "
        "partition all fit (and return) the same search object, so all but the last of them "
        "come back with the last one's fitted model",
    )
    parser.add_argument("--results", help="write one JSON line per cell to this file")
    parser.add_argument(
        "--save-models",
        metavar="DIR",
        help="save each model with motrainer.util.sklearn_save into DIR",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    summary = run(args)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"reference (MOTrainer + dask-ml): {summary['cells']} cells in "
            f"{summary['seconds']:.1f} s, {summary['cells_per_second']:.3f} cells/s "
            f"(cluster {summary['cluster_seconds']:.1f} s, split {summary['split_seconds']:.1f} s, "
            f"fit {summary['fit_seconds']:.1f} s, evaluate {summary['evaluate_seconds']:.1f} s, "
            f"save {summary['save_seconds']:.1f} s)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
