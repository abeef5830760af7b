"""Successive halving against the full grid, per cell of the heavy data: CPU seconds, how often
the same best parameters, how far the test r2.

    python benchmarks/halving.py --cells 8            # 8 cells of the heavy data, 48 candidates

Each cell's search runs as a run computes it (``hpctune.search.PartitionSearch``: the rows a run
selects, the test period, the refit, the model serialised), in this one process, one after the
other: ``search.method: grid`` (dask-ml's grid search, synchronous) and ``search.method:
halving`` (scikit-learn's ``HalvingGridSearchCV``, ``factor`` 3, ``min_resources: exhaust``),
each timed in process CPU seconds (steadier than wall seconds on a shared machine). The grid:
StandardScaler + SVR, ``svr__C`` x ``svr__gamma`` x ``svr__epsilon`` = 6 x 4 x 2 = 48
candidates, kfold 3, r2. The data are the ``heavy`` preset's (``make_data.py``: 3000 steps,
the last 20% held out), generated under ``--workdir`` unless there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import make_data
import numpy as np

GRID = {
    "svr__C": [0.1, 0.3, 1, 3, 10, 30],
    "svr__gamma": [0.01, 0.03, 0.1, 0.3],
    "svr__epsilon": [0.05, 0.2],
}


def parse_variant(text: str) -> dict:
    """``factor=7,min_resources=192`` -> the ``search.halving`` settings it names (a number
    with a point, ``min_resources=0.2``, is a share of each cell's rows)."""
    settings: dict = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if value in ("exhaust", "smallest"):
            settings[key] = value
        elif key == "factor" or "." in value:
            settings[key] = float(value)
        else:
            settings[key] = int(value)
    return settings


def search_spec(method: str, halving: dict | None = None) -> object:
    """The benchmark's search section, as a run validates it, for ``method``."""
    from hpctune.spec import SearchSpec

    extra = {"halving": halving or {}} if method == "halving" else {}
    return SearchSpec.model_validate(
        {
            "method": method,
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
            "params": GRID,
            "cv": {"kind": "kfold", "splits": 3},
            "scoring": ["r2"],
            **extra,
        }
    )


def main() -> None:
    """Search each cell with both methods, print a line per cell and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=8, help="cells of the heavy data searched")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--factor", type=float, default=3)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="search.halving settings of one halving search, e.g. factor=7 or "
        "factor=3,min_resources=192 (repeat; the grid runs once). Default: factor=FACTOR",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hpctune-bench"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    import xarray as xr

    from hpctune.search import PartitionSearch

    folder = args.workdir / f"data-80x{args.steps}x4"
    make_data.ensure(80, args.steps, 4, folder, seed=0, verbose=False)
    ds = xr.open_mfdataset(sorted(folder.glob("part-*.nc")), combine="by_coords")
    ds = ds.isel(space=slice(0, args.cells)).load()
    start = make_data.test_start(args.steps)
    times = ds.time.values
    variants = args.variant or [f"factor={args.factor:g}"]
    searches = {"grid": PartitionSearch(search_spec("grid"), test_start=start)}
    for variant in variants:
        searches[variant] = PartitionSearch(
            search_spec("halving", parse_variant(variant)), test_start=start
        )
    rows = []
    for cell in range(args.cells):
        x = np.stack([ds[v].isel(space=cell).values for v in make_data.INPUTS], axis=-1)
        y = ds[make_data.TARGET].isel(space=cell).values
        row: dict = {"cell": cell}
        for method, search in searches.items():
            cpu = time.process_time()
            result = search.run(cell, x, y, times)
            row[method] = {
                "cpu_seconds": time.process_time() - cpu,
                "status": result.status,
                "best_params": result.best_params,
                "test_r2": result.test_scores.get("r2"),
                "n_train": result.n_train,
                **result.halving,
            }
        grid = row["grid"]
        line = [
            f"cell {cell}: n_train {grid['n_train']}, grid {grid['cpu_seconds']:.1f} CPU s "
            f"r2 {grid['test_r2']:.4f}"
        ]
        for variant in variants:
            halving = row[variant]
            halving["same_best"] = grid["best_params"] == halving["best_params"]
            halving["r2_gap"] = grid["test_r2"] - halving["test_r2"]
            line.append(
                f"{variant}: {halving['cpu_seconds']:.1f} CPU s r2 {halving['test_r2']:.4f} "
                f"({halving['n_iterations']} iterations, same best {halving['same_best']})"
            )
        rows.append(row)
        print("; ".join(line), flush=True)
    grid_cpu = sum(r["grid"]["cpu_seconds"] for r in rows)
    summary: dict = {
        "cells": args.cells,
        "candidates": 48,
        "grid_cpu_seconds": grid_cpu,
        "variants": {},
        "load": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
    }
    print(f"{args.cells} cells, 48 candidates x 3 folds: grid {grid_cpu:.1f} CPU s")
    for variant in variants:
        cpu = sum(r[variant]["cpu_seconds"] for r in rows)
        gaps = np.array([r[variant]["r2_gap"] for r in rows])
        figures = {
            "halving_cpu_seconds": cpu,
            "cpu_ratio": grid_cpu / cpu,
            "same_best_params": int(sum(r[variant]["same_best"] for r in rows)),
            "test_r2_within_0.01": int((np.abs(gaps) <= 0.01).sum()),
            "worse_by_more": int((gaps > 0.01).sum()),
            "better_by_more": int((gaps < -0.01).sum()),
            "test_r2_gap_max": float(gaps.max()),
            "test_r2_gap_mean": float(gaps.mean()),
        }
        summary["variants"][variant] = figures
        print(
            f"  halving {variant}: {cpu:.1f} CPU s ({figures['cpu_ratio']:.2f}x less); same best "
            f"parameters in {figures['same_best_params']}/{args.cells} cells; test r2 within "
            f"0.01 of the grid's in {figures['test_r2_within_0.01']}/{args.cells} (worse by more "
            f"in {figures['worse_by_more']}, better by more in {figures['better_by_more']}; "
            f"grid - halving: mean {figures['test_r2_gap_mean']:+.4f}, max "
            f"{figures['test_r2_gap_max']:+.4f})"
        )
    print(f"load {summary['load'][0]:.1f}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"summary": summary, "cells": rows}, indent=1))


if __name__ == "__main__":
    main()
