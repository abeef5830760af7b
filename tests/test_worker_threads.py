"""Local workers as threads of the hpctune process: when they are chosen, and that a run on them
gives the results of worker processes, records failures and starts no process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import psutil
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.cluster import in_process_workers
from hpctune.spec import load_spec

SVR = ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"]


SCALED_RIDGE = [
    "search.estimator=[sklearn.preprocessing.StandardScaler, sklearn.linear_model.Ridge]",
    "search.params={ridge__alpha: [1.0]}",
]
MLP = ["search.estimator=sklearn.neural_network.MLPRegressor", "search.params={alpha: [0.1]}"]
RIDGE = ["search.estimator=sklearn.linear_model.Ridge", "search.params={alpha: [1.0]}"]


@pytest.mark.parametrize(
    ("overrides", "partitions", "expected"),
    [
        ([], 1, True),  # few partitions, SVR releases the GIL
        ([], 3, True),
        ([], 80, False),  # many partitions: whole searches per task, in processes
        (["cluster.processes=true"], 1, False),
        (["search.timeout=60"], 1, False),  # a stuck fit is ended with its process
        (["cluster.granularity=partition"], 1, False),
        (["cluster.mode=jobqueue"], 1, False),
        (SCALED_RIDGE, 1, False),  # measured: Ridge's small fits hold the GIL
        (MLP, 1, False),
        (["cluster.processes=false", *RIDGE], 80, True),
    ],
)
def test_threads_are_chosen_for_few_partitions_of_a_gil_releasing_estimator(
    overrides, partitions, expected, synthetic_job
):
    job = load_spec(
        synthetic_job,
        [
            "cluster.workers=2",
            f"search.estimator=[{', '.join(SVR)}]",
            "search.params={svr__C: [1.0]}",
            *overrides,
        ],
    )
    assert in_process_workers(job, partitions) is expected


def _svr_spec(tmp_path, cells=3, **changes):
    synthetic(cells=cells, steps=600).to_netcdf(tmp_path / "cells.nc")
    return synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=SVR,
        search__params={"svr__C": [0.1, 1.0, 10.0], "svr__gamma": ["scale", 0.3]},
        search__scoring=["r2", "neg_mean_absolute_error"],
        search__refit="r2",
        data__test={"from": "2010-08-01"},
        cluster__workers=2,
        cluster__dashboard=False,
        **changes,
    )


def test_worker_threads_give_the_results_of_worker_processes(tmp_path):
    path = write_spec(tmp_path, _svr_spec(tmp_path))
    runs = {}
    for processes in ("auto", "true"):
        summary = hpctune.run(path, [f"cluster.processes={processes}", f"output=out-{processes}"])
        assert summary.granularity == "fit"
        runs[processes] = summary
    assert "in this process" in runs["auto"].cluster
    assert "worker processes" in runs["true"].cluster
    threads, processes = runs["auto"].results, runs["true"].results
    assert list(threads.status.values) == ["ok"] * 3
    compared = [v for v in threads.data_vars if v not in ("fit_seconds", "node")]
    xr.testing.assert_equal(threads[compared], processes[compared])
    assert sorted(p.name for p in (tmp_path / "out-auto" / "models").iterdir()) == sorted(
        p.name for p in (tmp_path / "out-true" / "models").iterdir()
    )


def _children_while_running(command: list[str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``command``, noting the command lines of every process under it while it runs."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    parent = psutil.Process(process.pid)
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            seen.update(" ".join(child.cmdline()) for child in parent.children(recursive=True))
        time.sleep(0.05)
    out, err = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, out, err), seen


@pytest.mark.parametrize("processes", ["auto", "true"])
def test_a_run_on_worker_threads_starts_no_process(tmp_path, processes):
    """The same run with ``processes: true`` shows that the sampling sees worker processes."""
    path = write_spec(tmp_path, _svr_spec(tmp_path, cells=1))
    done, children = _children_while_running(
        [
            sys.executable,
            "-m",
            "hpctune",
            "run",
            str(path),
            "--json",
            "--quiet",
            "--set",
            f"cluster.processes={processes}",
        ]
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] == 1
    if processes == "auto":
        assert "in this process" in summary["cluster"]
        assert children == set()
    else:
        assert "worker processes" in summary["cluster"]
        assert any("multiprocessing" in line for line in children), children


def test_a_failing_search_on_worker_threads_fails_only_its_partition(tmp_path):
    """KNeighbors with more neighbours than rows fails in every fit of one partition only."""
    ds = synthetic(cells=3, steps=200)  # 3 partitions on 2 workers: a task per fit
    ds["y"][0, :150] = float("nan")  # cell 0: about 45 rows, fewer than 60 neighbours
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["sklearn.neighbors.KNeighborsRegressor"],
        search__params={"n_neighbors": [60]},
        search__cv={"kind": "kfold", "splits": 2},
        cluster__workers=2,
        cluster__dashboard=False,
    )
    summary = hpctune.run(write_spec(tmp_path, spec))
    assert "in this process" in summary.cluster
    assert list(summary.results.status.values) == ["failed", "ok", "ok"]
    assert "n_neighbors" in summary.results.reason.values[0]
    assert summary.exit_code == 3
