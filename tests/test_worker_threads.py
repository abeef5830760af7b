"""Local workers as threads of the hpctune process: when they are chosen, and that a run on them
gives the results of worker processes, records failures, stops at a signal and starts no
process; the worker threads themselves; the command line's garbage collector."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
from helpers import RUN_SPECIFIC, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune as hpctune_command
from tests_support import FIT_SECONDS

import hpctune
from hpctune.cluster import (
    RunStopped,
    WorkerThreads,
    in_process_workers,
    processes_not_honoured,
)
from hpctune.output.folder import Store
from hpctune.spec import load_spec

SVR = ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"]
_TESTS_ON_PATH = {  # tests_support, for the estimators of a run in another process
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
    ),
}


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


MULTI_NODE_SLURM = {
    "SLURM_JOB_ID": "42",
    "SLURM_JOB_NODELIST": "node[1-2]",
    "SLURM_JOB_CPUS_PER_NODE": "2(x2)",
    "SLURM_NTASKS": "4",
}


@pytest.mark.parametrize(
    ("overrides", "environ", "with_client", "expected"),
    [
        (["cluster.processes=false"], {}, False, None),  # local: honoured
        (["cluster.processes=false"], MULTI_NODE_SLURM, False, "mode auto chose allocation"),
        (["cluster.processes=false"], {}, True, "the given Dask client"),
        (["cluster.processes=auto"], MULTI_NODE_SLURM, True, None),  # nothing was asked
    ],
)
def test_processes_false_that_cannot_hold_is_named(
    overrides, environ, with_client, expected, synthetic_job
):
    job = load_spec(synthetic_job, ["cluster.mode=auto", *overrides])
    client = object() if with_client else None
    why = processes_not_honoured(job, client, environ)
    assert (why is None) if expected is None else (expected in why)
    # the same rule decides the layout: threads only where processes=false can hold
    assert in_process_workers(job, 1, client, environ) is (
        not with_client and not environ and job.cluster.processes is False
    )


class _Records(logging.Handler):
    """The records of one logger, whether or not it propagates to the root (the command
    line's setup, run by earlier tests, stops that)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_run_on_a_callers_client_says_processes_false_is_not_honoured(synthetic_job, dask_client):
    job = load_spec(synthetic_job, ["cluster.processes=false", "cluster.mode=auto"])
    logger, seen = logging.getLogger("hpctune"), _Records()
    logger.addHandler(seen)
    try:
        summary = hpctune.run(job, client=dask_client)
    finally:
        logger.removeHandler(seen)
    assert summary.exit_code == 0
    assert [r.getMessage() for r in seen.records if "cluster.processes" in r.getMessage()] == [
        "cluster.processes: false is not honoured: the run uses the given Dask client's workers"
    ]


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
    compared = [v for v in threads.data_vars if v not in RUN_SPECIFIC]
    xr.testing.assert_equal(threads[compared], processes[compared])
    x = np.random.default_rng(0).normal(size=(20, 3))
    for index in range(3):  # the same models (skops bytes differ by their time stamps)
        predicted = [
            hpctune.load_model(hpctune.load_spec(path, [f"output=out-{p}"]), index).predict(x)
            for p in ("auto", "true")
        ]
        np.testing.assert_array_equal(*predicted)


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


@pytest.mark.parametrize("processes", ["auto", pytest.param("true", marks=pytest.mark.full)])
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


def test_the_model_files_import_waits_for_the_refit(tmp_path, monkeypatch):
    """skops (0.8 CPU s) is imported beside a search's refit, its second graph, which leaves
    workers idle; not during the first graph's fits, where it would take a core from them."""
    from hpctune.execution.graphs import SearchGraphRunner

    graphs_at_import: list[int] = []
    original = SearchGraphRunner._import_skops

    def import_skops(self):
        graphs_at_import.append(self._local.graphs)
        original(self)

    monkeypatch.setattr(SearchGraphRunner, "_import_skops", import_skops)
    summary = hpctune.run(write_spec(tmp_path, _svr_spec(tmp_path)))
    assert "in this process" in summary.cluster
    assert list(summary.results.status.values) == ["ok"] * 3
    assert len(graphs_at_import) == 3  # once per search, at its refit
    assert set(graphs_at_import) == {2}
    assert len(list((Path(summary.output) / "models").iterdir())) == 1  # one pack, 3 models
    assert (summary.results.model_size.values > 0).all()


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


# --------------------------------------------------------------------------- the worker threads


def _graph(n: int, task) -> tuple[dict, list[str]]:
    keys = [f"task-{i}" for i in range(n)]
    return {key: (task, i) for i, key in enumerate(keys)}, keys


def test_searches_in_flight_share_the_worker_threads():
    """Two graphs computed at once never run more tasks together than there are threads."""
    pool = WorkerThreads(2)
    lock = threading.Lock()
    running, most = [0], [0]

    def task(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i * i

    try:
        with ThreadPoolExecutor(3) as searches:
            graphs = [_graph(8, task) for _ in range(3)]
            results = list(searches.map(lambda g: pool.get(*g), graphs))
    finally:
        pool.close()
    assert results == [tuple(i * i for i in range(8))] * 3
    assert most[0] == 2


def test_a_failing_task_fails_its_graph_with_its_own_exception():
    pool = WorkerThreads(2)

    def task(i):
        if i == 3:
            raise ValueError("bad task 3")
        return i

    try:
        with pytest.raises(ValueError, match="bad task 3"):
            pool.get(*_graph(6, task))
        assert pool.get(*_graph(2, lambda i: i + 1)) == (1, 2)  # the threads go on
    finally:
        pool.close()


def test_once_the_run_is_stopped_no_task_of_a_graph_starts():
    pool = WorkerThreads(1)
    stop = threading.Event()
    started = []

    def task(i):
        started.append(i)
        stop.set()  # the signal arrives during the first task
        return i

    try:
        with pytest.raises(RunStopped):
            pool.get(*_graph(10, task), stop=stop)
    finally:
        pool.close()
    assert len(started) == 1


def test_closed_worker_threads_cancel_waiting_tasks_and_take_no_more():
    pool = WorkerThreads(1)
    running, release = threading.Event(), threading.Event()

    def first_task():
        running.set()
        return release.wait(10)

    first = pool.submit(first_task)
    waiting = pool.submit(lambda: "never")
    assert running.wait(10)
    pool.close()
    release.set()
    assert first.result(timeout=10) is True
    assert waiting.cancelled()
    with pytest.raises(RunStopped):
        pool.submit(lambda: "late").result(timeout=10)


@pytest.mark.full
def test_a_run_on_worker_threads_stops_at_a_signal_and_resumes(tmp_path):
    """SIGTERM in the middle of the searches: the run exits 143 without doing the fits left
    and records no partition as failed; run again, it does the fits of the partitions left
    and no others, and finishes."""
    synthetic(cells=3, steps=300).to_netcdf(tmp_path / "cells.nc")
    fits = tmp_path / "fits.log"
    per_partition = 20 * 3 + 1  # 20 candidates x 3 folds + refit
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["tests_support.CountingPCA", "tests_support.SlowRidge"],
        search__params={
            "slowridge__alpha": [0.01 * i for i in range(1, 21)],
            "slowridge__log": [str(fits)],
            "countingpca__log": [str(fits)],
        },
        search__cv={"kind": "kfold", "splits": 3},
        cluster__workers=2,
        cluster__processes=False,
        cluster__dashboard=False,
    )
    path = write_spec(tmp_path, spec)

    def ridge_fits() -> list[str]:
        text = fits.read_text() if fits.exists() else ""
        return [line for line in text.splitlines() if line.startswith("ridge")]

    command = [sys.executable, "-m", "hpctune", "run", str(path), "--json", "--quiet"]
    environ = {**_TESTS_ON_PATH, FIT_SECONDS: "0.3"}  # 3 x 61 fits of 0.3 s on 2 threads
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environ)
    try:
        deadline = time.monotonic() + 120
        while len(ridge_fits()) < 4:  # the searches are under way
            assert process.poll() is None, "the run ended before its fourth fit"
            assert time.monotonic() < deadline, "no fourth fit within 120 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    summary = json.loads(out)
    assert process.returncode == 143, out
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["failed"] == 0
    assert summary["pending"] >= 1 and summary["ok"] + summary["pending"] == 3
    done_before = len(ridge_fits())
    assert done_before < 3 * per_partition, "the run did every fit before it stopped"
    recorded = Store(Path(summary["output"])).finished()
    assert len(recorded) == summary["ok"]
    assert set(recorded.values()) <= {"ok"}
    again = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["ok"] == 3
    # resumed: the partitions finished before are not fitted again
    assert len(ridge_fits()) - done_before == summary["pending"] * per_partition


# --------------------------------------------------------------------------- the garbage collector


def test_the_command_lines_searches_run_with_the_collector_on_and_start_up_frozen(tmp_path):
    """In ``hpctune run``'s own process the collector is off during start-up only: the fits (on
    worker threads of that process) see it on again, with start-up's objects frozen."""
    synthetic(cells=1, steps=200).to_netcdf(tmp_path / "cells.nc")
    log = tmp_path / "fits.log"
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["tests_support.CollectorProbe"],
        search__params={"alpha": [0.1, 1.0], "log": [str(log)]},
        search__cv={"kind": "kfold", "splits": 2},
        cluster__workers=2,
        cluster__processes=False,
        cluster__dashboard=False,
    )
    command = [sys.executable, "-m", "hpctune", "run", str(write_spec(tmp_path, spec)), "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_TESTS_ON_PATH)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 5  # 2 candidates x 2 folds + refit
    for line in lines:
        enabled, frozen = (part.split("=")[1] for part in line.split())
        assert enabled == "True"
        assert int(frozen) > 100_000  # the modules of scikit-learn, dask-ml, xarray


def test_the_command_line_called_in_a_callers_process_leaves_its_collector_alone(tmp_path, capsys):
    synthetic(cells=1, steps=200).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search__estimator=["sklearn.linear_model.Ridge"],
        search__params={"alpha": [1.0]},
        cluster__processes=False,
        cluster__dashboard=False,
    )
    frozen = gc.get_freeze_count()
    outcome = hpctune_command(capsys, "run", write_spec(tmp_path, spec), "--quiet")
    assert outcome.code == 0, outcome.err
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
