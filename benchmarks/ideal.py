"""The ideal: serial CPU seconds of every fit and score a job's searches need.

    python benchmarks/ideal.py SPEC [--set KEY=VALUE ...] [--cells K] [--cores C] [--json]

For each partition the rows are read as hpctune reads them (``hpctune.data.CellReader``, then
``hpctune.search.select_rows``: the same NaN dropping and test period), outside the clock. Then
a scikit-learn ``GridSearchCV`` / ``RandomizedSearchCV`` with the spec's estimator, parameters,
cv splitter, scoring and refit (``n_jobs=1``, ``error_score='raise'``) is timed with
``time.process_time()``, refit included, in this one process with BLAS threads limited to 1.
Partitions with fewer than ``search.min_samples`` training rows are skipped, as hpctune does.

The sum is the CPU time the work needs, with no scheduling, reading or writing: divided by C it
is the wall time C perfectly used cores would take. ``--cells K`` times K partitions drawn at
random and scales the sum to all partitions.

Importable: ``ideal_seconds(spec_path, overrides, cores, sample=None) -> dict``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np


def _sklearn_search(job: Any, estimator: Any, cv: Any) -> Any:
    from sklearn import model_selection as ms

    from hpctune.search import n_candidates, param_space

    search = job.search
    multi = len(search.scoring) > 1
    common: dict[str, Any] = {
        "scoring": list(search.scoring) if multi else search.scoring[0],
        "refit": search.refit_metric if multi else True,
        "cv": cv,
        "n_jobs": 1,
        "error_score": "raise",
        "return_train_score": False,
    }
    space = param_space(search)
    if search.method == "grid":
        return ms.GridSearchCV(estimator, space, **common)
    return ms.RandomizedSearchCV(
        estimator, space, n_iter=n_candidates(search), random_state=search.seed, **common
    )


def _partition_rows(
    plan: Any, index: int, x: np.ndarray, y: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One partition's rows as hpctune's run_batch lays them out."""
    if plan.n_cells_of(index) == 1:
        return x[0], y[0], times
    n = x.shape[0]
    t = np.tile(times, n)
    order = np.argsort(t, kind="stable")
    return x.reshape(-1, x.shape[-1])[order], y.reshape(-1)[order], t[order]


def ideal_seconds(
    spec_path: str,
    overrides: list[str] | tuple[str, ...] = (),
    cores: int = 2,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Time the searches of the spec serially; see the module's docstring.

    Returns a dict with partitions (all of the job), timed (partitions timed), searched and
    skipped (of those timed), fits (estimated for all partitions), cpu_seconds (estimated for
    all partitions), measured_cpu_seconds (of the timed ones), wall_seconds of the timed
    searches, cores and ideal_wall_seconds = cpu_seconds / cores.
    """
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    import hpctune
    from hpctune.data import CellReader
    from hpctune.execution.prepare import prepare
    from hpctune.search import build_estimator, make_cv, select_rows

    job = hpctune.load_spec(spec_path, list(overrides))
    prepared = prepare(job)
    plan, info = prepared.plan, prepared.info
    total = plan.size
    indices = np.arange(total)
    if sample is not None and sample < total:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(total, size=sample, replace=False))
    test = job.data.test
    test_start = None if test is None else np.datetime64(test.start, "ns")
    estimator = build_estimator(job.search)
    reader = CellReader(job.data, info)

    cpu = 0.0
    wall = 0.0
    fits = 0
    searched = skipped = 0
    started = time.perf_counter()
    # read in blocks of neighbouring cells (outside the clock), as hpctune's workers do
    block_cells = max(1, job.data.chunk)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pos = 0
        while pos < indices.size:
            batch = [int(indices[pos])]
            n_cells = plan.n_cells_of(batch[0])
            pos += 1
            while pos < indices.size:
                more = plan.n_cells_of(int(indices[pos]))
                if n_cells + more > block_cells:
                    break
                n_cells += more
                batch.append(int(indices[pos]))
                pos += 1
            members = [plan.cells(i) for i in batch]
            block = reader.read(np.concatenate(members))
            offset = 0
            for index, cells in zip(batch, members, strict=True):
                x = block.x[offset : offset + cells.size]
                y = block.y[offset : offset + cells.size]
                offset += cells.size
                x, y, t = _partition_rows(plan, index, x, y, info.times)
                rows = select_rows(x, y, t, test_start)
                if rows.y_train.size < job.search.min_samples:
                    skipped += 1
                    continue
                cv = make_cv(job.search.cv, job.search.seed, rows.t_train)
                searcher = _sklearn_search(job, clone(estimator), cv)
                c0, w0 = time.process_time(), time.perf_counter()
                searcher.fit(rows.x_train, rows.y_train)
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
                fits += len(searcher.cv_results_["params"]) * searcher.n_splits_ + 1
                searched += 1
            if progress:
                done = searched + skipped
                print(f"  {done}/{indices.size} partitions, {cpu:.1f} CPU s", file=sys.stderr)
    timed = int(indices.size)
    scale = total / timed if timed else math.nan
    cpu_all = cpu * scale
    return {
        "spec": str(spec_path),
        "partitions": total,
        "timed": timed,
        "searched": searched,
        "skipped": skipped,
        "fits": round(fits * scale),
        "measured_fits": fits,
        "measured_cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu_all, 3),
        "cores": cores,
        "ideal_wall_seconds": round(cpu_all / cores, 3),
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }


def print_table(result: dict[str, Any]) -> None:
    estimated = result["timed"] < result["partitions"]
    rows = [
        (
            "partitions",
            f"{result['partitions']}"
            + (f" ({result['timed']} timed, scaled up)" if estimated else ""),
        ),
        (
            "searched / skipped",
            f"{result['searched']} / {result['skipped']}"
            + (" (of those timed)" if estimated else ""),
        ),
        ("fits (refits included)", f"{result['fits']}"),
        ("CPU seconds", f"{result['cpu_seconds']:.2f}"),
        (f"ideal wall time on {result['cores']} cores", f"{result['ideal_wall_seconds']:.2f} s"),
        (
            "CPU seconds per partition",
            f"{result['measured_cpu_seconds'] / max(1, result['searched']):.4f}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="the job spec YAML")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec value, as hpctune --set",
    )
    parser.add_argument(
        "--cells",
        type=int,
        default=None,
        metavar="K",
        help="time K partitions drawn at random and scale up (default: all)",
    )
    parser.add_argument("--cores", type=int, default=2, help="cores of the ideal (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --cells draw")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress to stderr")
    args = parser.parse_args(argv)
    result = ideal_seconds(
        args.spec, args.overrides, args.cores, args.cells, args.seed, progress=args.verbose
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
