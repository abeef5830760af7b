"""hpctune's own cost per partition, beyond the fits: a worker's ``run_batch`` (read the cells,
run the dask-ml search, score the test period, write the model file and the journal record)
against scikit-learn's GridSearchCV on the same rows, both in this one process, CPU seconds.

    python benchmarks/per_partition.py SPEC [--partitions N] [--batch B]

Run it on the ``tiny`` preset's spec (compare.py makes it): there the fits are cheap and the
difference is hpctune's own work. No cluster is started: scheduling costs are what compare.py's
whole runs add on top.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=250, help="partitions per run_batch call")
    args = parser.parse_args(argv)

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    import hpctune
    from hpctune.data import CellReader
    from hpctune.execution.prepare import prepare
    from hpctune.execution.tasks import TaskContext, run_batch
    from hpctune.output.folder import Store
    from hpctune.search import build_estimator, make_cv, select_rows

    warnings.simplefilter("ignore")
    job = hpctune.load_spec(args.spec, [f"output={tempfile.mkdtemp(prefix='hpctune-pp-')}"])
    prepared = prepare(job)
    plan, info = prepared.plan, prepared.info
    if plan.grouped:
        raise SystemExit("use a spec with partition.by: cell")
    Store(job.output_dir).prepare(job, plan.size, True, info.summary())
    ctx = TaskContext(job=job, info=info, plan=plan, output=str(job.output_dir))
    first, last = 2, min(plan.size, args.partitions + 2)
    n = last - first
    with threadpool_limits(limits=1):
        run_batch(ctx, [0, 1])  # imports and opened files, outside the clock
        started = time.process_time()
        for start in range(first, last, args.batch):
            run_batch(ctx, list(range(start, min(start + args.batch, last))))
        hpctune_cpu = time.process_time() - started

        reader = CellReader(job.data, info)
        estimator = build_estimator(job.search)
        test = job.data.test
        test_start = None if test is None else np.datetime64(test.start, "ns")
        block = reader.read(np.arange(first, last))
        started = time.process_time()
        for i in range(n):
            rows = select_rows(block.x[i], block.y[i], info.times, test_start)
            if rows.y_train.size < job.search.min_samples:
                continue
            search = GridSearchCV(
                clone(estimator),
                dict(job.search.params),
                cv=make_cv(job.search.cv, job.search.seed, rows.t_train),
                scoring=job.search.refit_metric,
                n_jobs=1,
                error_score="raise",
            )
            search.fit(rows.x_train, rows.y_train)
        sklearn_cpu = time.process_time() - started
    print(
        f"{n} partitions: hpctune run_batch {1000 * hpctune_cpu / n:.2f} ms CPU each, "
        f"scikit-learn's search {1000 * sklearn_cpu / n:.2f} ms; "
        f"beyond the fits {1000 * (hpctune_cpu - sklearn_cpu) / n:.2f} ms"
    )


if __name__ == "__main__":
    main()
