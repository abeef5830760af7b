"""How fast one partition's search runs: scikit-learn's loop, dask-ml's graph, and in workers.

    python benchmarks/fit_speed.py SPEC [--set KEY=VALUE ...] [--partition I] [--workers 1,2]

The partition's rows are read as hpctune reads them (as in ``ideal.py``). Then, in this
process with one BLAS thread:

- scikit-learn's ``GridSearchCV`` / ``RandomizedSearchCV`` (``n_jobs=1``): CPU seconds, and the
  fit and score seconds of its ``cv_results_``;
- dask-ml's search of the same spec on dask's synchronous scheduler: CPU seconds (does the
  graph cost more than scikit-learn's loop?).

Then the scikit-learn search again inside the workers of a local cluster started as hpctune
starts it (its worker settings, forked workers), on 1 worker alone and on N workers at once
(the same search on each): seconds per search, to see what running side by side costs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def _rows(spec: str, overrides: list[str], index: int) -> tuple[Any, Any, Any]:
    import numpy as np
    from ideal import _partition_rows

    import hpctune
    from hpctune.data import CellReader
    from hpctune.execution.prepare import prepare
    from hpctune.search import build_estimator, make_cv, select_rows

    job = hpctune.load_spec(spec, [*overrides, "output=/tmp/hpctune-fit-speed"])
    prepared = prepare(job)
    reader = CellReader(job.data, prepared.info)
    cells = prepared.plan.cells(index)
    block = reader.read(cells)
    x, y, t = _partition_rows(prepared.plan, index, block.x, block.y, prepared.info.times)
    test = job.data.test
    rows = select_rows(x, y, t, None if test is None else np.datetime64(test.start, "ns"))
    cv = make_cv(job.search.cv, job.search.seed, rows.t_train)
    return job, (build_estimator(job.search), cv), (rows.x_train, rows.y_train)


def sklearn_search(
    job: Any, estimator: Any, cv: Any, x: Any, y: Any, keep: bool = False
) -> tuple[float, float, Any]:
    """CPU and wall seconds of scikit-learn's search, one BLAS thread, and the fitted search
    (with ``keep``)."""
    from ideal import _sklearn_search
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = _sklearn_search(job, clone(estimator), cv)
        cpu, wall = time.process_time(), time.perf_counter()
        search.fit(x, y)
        return time.process_time() - cpu, time.perf_counter() - wall, search if keep else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--workers", default="1,2", help="cluster sizes, comma-separated")
    args = parser.parse_args(argv)

    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    from hpctune.search import make_search

    job, (estimator, cv), (x, y) = _rows(args.spec, args.overrides, args.partition)
    print(f"partition {args.partition}: {len(y)} training rows")

    cpu, _, search = sklearn_search(job, estimator, cv, x, y, keep=True)
    results = search.cv_results_
    fit = float(results["mean_fit_time"].sum()) * search.n_splits_
    score = float(results["mean_score_time"].sum()) * search.n_splits_
    print(
        f"scikit-learn, this process:  {cpu:6.2f} CPU s (fits {fit:.2f}, scores {score:.2f}, "
        f"refit {search.refit_time_:.2f})"
    )
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dask_ml = make_search(job.search, clone(estimator), cv, scheduler="sync")
        cpu = time.process_time()
        dask_ml.fit(x, y)
        print(f"dask-ml graph, synchronous: {time.process_time() - cpu:6.2f} CPU s")

    import dask
    from distributed import Client, LocalCluster

    from hpctune.cluster import WORKER_CONFIG, forkserver

    for n in (int(v) for v in args.workers.split(",")):
        modules = forkserver.worker_modules(job.search.estimator)
        with dask.config.set(WORKER_CONFIG), forkserver.worker_start(modules):
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, dashboard_address=None, silence_logs=40
            )
        with cluster, Client(cluster) as client:
            workers = list(client.scheduler_info()["workers"])
            client.gather([client.submit(sum, [1], pure=False, workers=[w]) for w in workers])
            futures = [
                client.submit(sklearn_search, job, estimator, cv, x, y, pure=False, workers=[w])
                for w in workers
            ]
            seen = client.gather(futures)
        walls = ", ".join(f"{wall:.2f}" for _, wall, _ in seen)
        cpus = ", ".join(f"{cpu:.2f}" for cpu, _, _ in seen)
        print(f"scikit-learn in {n} worker(s) at once: wall {walls} s; CPU {cpus} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
