"""Which estimators' fits run side by side in two threads of one process (they release the GIL).

    python benchmarks/gil.py [NAME ...] [--rows 4600] [--repeat 2]

For each estimator, a 3-fold ``cross_val_score`` on ``--rows`` rows of 8 inputs (the size of
the ``onecell`` preset's cell) is timed ``--repeat`` times in a row in one thread, then twice as
many in two threads at once. Efficiency = the one thread's time / the two threads' time: 1.0
when two threads do twice the work in the same time (the fits release the GIL), 0.5 when they
take turns, less when they also fight over it. One BLAS/OpenMP thread, as in hpctune's workers.

``hpctune.cluster.GIL_RELEASING_STEPS`` lists the estimators measured near 1.0: only with those
does ``cluster.processes: auto`` run local workers as threads. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402


def estimators() -> dict[str, Callable[[], Any]]:
    from sklearn import ensemble, linear_model, neighbors, neural_network, pipeline, svm
    from sklearn.preprocessing import StandardScaler

    return {
        "svr": lambda: pipeline.make_pipeline(StandardScaler(), svm.SVR(C=1.0, gamma=0.3)),
        "gradient-boosting": lambda: ensemble.GradientBoostingRegressor(n_estimators=100),
        "random-forest": lambda: ensemble.RandomForestRegressor(n_estimators=30, n_jobs=1),
        "k-neighbours": lambda: neighbors.KNeighborsRegressor(10),
        "hist-gradient-boosting": lambda: ensemble.HistGradientBoostingRegressor(max_iter=100),
        "mlp": lambda: neural_network.MLPRegressor(hidden_layer_sizes=(50,), max_iter=100),
        "ridge": lambda: pipeline.make_pipeline(StandardScaler(), linear_model.Ridge()),
    }


#: Estimators whose one cross-validation takes a few milliseconds: timed more times over.
QUICK = {"k-neighbours": 20, "ridge": 20}


def data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    y = np.tanh(x[:, 0]) + 0.5 * x[:, 1] - 0.1 * x[:, 2] ** 2 + rng.normal(scale=0.1, size=rows)
    return x, y


def efficiency(make: Callable[[], Any], x: np.ndarray, y: np.ndarray, repeat: int) -> dict:
    from sklearn.model_selection import KFold, cross_val_score

    def one(_: int) -> None:
        cross_val_score(make(), x, y, cv=KFold(3), error_score="raise")

    one(0)  # first-call costs (imports, caches) out of the clock
    started = time.perf_counter()
    for i in range(repeat):
        one(i)
    alone = time.perf_counter() - started
    with ThreadPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(one, range(2 * repeat)))
        two = time.perf_counter() - started
    return {"one_thread_s": alone, "two_threads_s": two, "efficiency": alone / two}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="estimators (default: all)")
    parser.add_argument("--rows", type=int, default=4600)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # MLP's convergence warnings
    known = estimators()
    x, y = data(args.rows)
    for name in args.names or list(known):
        repeat = args.repeat * QUICK.get(name, 1)
        r = efficiency(known[name], x, y, repeat)
        print(
            f"{name:24s} {repeat:3d} in one thread {r['one_thread_s']:6.2f} s, "
            f"{2 * repeat:3d} in two {r['two_threads_s']:6.2f} s: efficiency {r['efficiency']:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
