"""Faults in the middle of a run: a hung or crashing fit, a killed worker, a full disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import psutil
import pytest
import tests_support
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.errors import OutputError
from hpctune.store import Store


@contextlib.contextmanager
def private_cluster() -> Iterator[Any]:
    """Two worker processes of this test's own, for tests that crash or kill workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


SLEEPY = {
    # a stand-in for a fit that hangs: a pipeline step that sleeps on one cell's data
    "estimator": ["tests_support.SleepOnMarker", "sklearn.linear_model.Ridge"],
    "params": {"ridge__alpha": [1.0]},
    "cv": {"kind": "kfold", "splits": 2},
    "min_samples": 20,
}


@pytest.mark.parametrize("granularity", ["partition", "fit"])
def test_a_search_past_its_timeout_fails_and_the_run_goes_on(tmp_path, granularity):
    """On a cluster of its own: in fit granularity the stuck worker processes are ended."""
    ds = synthetic(cells=4, steps=120)
    ds["x1"][2, :] = 999.0  # the marker: this cell's search sleeps
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", search={**SLEEPY, "timeout": 20})
    spec["cluster"] = {"granularity": granularity}
    started = time.monotonic()
    with private_cluster() as client:
        summary = hpctune.run(write_spec(tmp_path, spec), client=client)
    assert time.monotonic() - started < 180
    status = list(summary.results.status.values)
    assert status == ["ok", "ok", "failed", "ok"], list(summary.results.reason.values)
    assert "longer than search.timeout=20 s" in summary.results.reason.values[2]
    assert summary.exit_code == 3


@pytest.mark.parametrize(
    ("timeout", "reason"),
    [
        (60, "the process computing this partition died (signal 9)"),  # its own child process
        (None, "its worker died each time it computed it"),  # the worker dies, is replaced
    ],
)
def test_a_crashing_fit_fails_only_its_partition(tmp_path, timeout, reason):
    ds = synthetic(cells=5, steps=120)
    ds["x1"][1, :] = -999.0  # the marker: this cell's fit kills its process
    ds.to_netcdf(tmp_path / "cells.nc")
    search = {**SLEEPY, "estimator": ["tests_support.CrashOnMarker", "sklearn.linear_model.Ridge"]}
    spec = synthetic_spec(tmp_path / "cells.nc", search={**search, "timeout": timeout})
    spec["cluster"] = {"granularity": "partition"}
    with private_cluster() as client:
        summary = hpctune.run(write_spec(tmp_path, spec), client=client)
    assert list(summary.results.status.values) == ["ok", "failed", "ok", "ok", "ok"]
    assert reason in summary.results.reason.values[1]


def test_a_worker_killed_mid_run_is_replaced_and_every_partition_finishes(tmp_path):
    synthetic(cells=12, steps=3000).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search={
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
            "params": {"svr__C": [0.5, 2.0]},
            "cv": {"kind": "kfold", "splits": 3},
            "min_samples": 20,
        },
    )
    path = write_spec(tmp_path, spec)
    with private_cluster() as client:
        killed = []

        def kill_a_worker_once_work_started():
            store = Store(tmp_path / "out" / "synthetic")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(store.finished()) < 2:
                time.sleep(0.1)
            pids = client.run(os.getpid)
            victim = next(iter(pids.values()))
            os.kill(victim, 9)
            killed.append(victim)

        killer = threading.Thread(target=kill_a_worker_once_work_started)
        killer.start()
        summary = hpctune.run(path, client=client)
        killer.join()
    assert killed, "the worker was not killed"
    assert list(summary.results.status.values) == ["ok"] * 12
    assert summary.exit_code == 0


def lose_the_result(client: Any, future: Any) -> None:
    """Let ``future`` finish, then kill the worker holding its result: the scheduler computes
    it again."""
    from distributed import wait

    wait(future)
    (holder,) = client.who_has(future)[future.key]
    os.kill(client.run(os.getpid, workers=[holder])[holder], signal.SIGKILL)


def test_a_stopped_run_does_not_wait_for_a_lost_batch_computed_again(tmp_path):
    """A batch finished, then its worker died before its outcome was fetched (a preemption
    signals every process of the job at once): the scheduler computes it again. A stopped run
    cancels it instead of waiting for it; its partitions are in the dead worker's journal."""
    from hpctune.errors import RunStopped
    from hpctune.execute import batch_outcome

    with private_cluster() as client:
        future = client.submit(tests_support.fast_then_slow, str(tmp_path / "runs"), pure=False)
        lose_the_result(client, future)
        stop = threading.Event()
        stop.set()
        started = time.monotonic()
        with pytest.raises(RunStopped):
            batch_outcome(future, stop)
        assert time.monotonic() - started < 30, "waited for the batch computed again"
        assert future.cancelled()


def test_a_batch_computed_again_after_its_worker_died_is_waited_for_while_the_run_goes_on():
    """Not stopped, the run takes the outcome of the batch computed again."""
    from hpctune.execute import batch_outcome

    with private_cluster() as client:
        future = client.submit(lambda: 7, pure=False)
        lose_the_result(client, future)
        assert batch_outcome(future, threading.Event()) == 7


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 KiB filesystem (root can mount a tmpfs), else a clear skip."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_finished_partitions_stay(
    tmp_path, tiny_disk, dask_client
):
    synthetic(cells=20, steps=2000).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search={
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
            "params": {"svr__C": [1.0]},
            "cv": {"kind": "kfold", "splits": 2},
            "min_samples": 20,
        },
        output=str(tiny_disk / "out"),
    )
    with pytest.raises(OutputError, match="no space left on the device"):
        hpctune.run(write_spec(tmp_path, spec), client=dask_client)
    finished = Store(tiny_disk / "out").finished()
    assert 0 < len(finished) < 20
    for index in finished:
        assert (tiny_disk / "out" / "models" / f"{index:02d}.skops").stat().st_size > 0
    assert np.all([r["status"] == "ok" for r in finished.values()])


def test_the_process_tree_of_a_test_run_is_gone():
    """Guard: no search child outlives its worker (they are started per worker and killed)."""
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "hpctune.search.sandbox" in " ".join(p.info["cmdline"] or []) and p.ppid() == 1
    ]
    assert leftovers == []


def test_a_second_run_of_the_same_output_is_refused_while_the_first_goes_on(tmp_path):
    """The first run is held up by one hung search (stopped by search.timeout), so the second
    certainly starts while the first holds the output."""
    ds = synthetic(cells=4, steps=120)
    ds["x1"][3, :] = 999.0  # the marker: this cell's search sleeps until its timeout
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", search={**SLEEPY, "timeout": 20})
    spec["cluster"] = {"mode": "local", "workers": 2, "granularity": "partition"}
    path = write_spec(tmp_path, spec)
    command = [sys.executable, "-m", "hpctune", "run", str(path), "--quiet"]
    tests = os.path.dirname(os.path.abspath(__file__))  # tests_support, for the workers too
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])),
    }
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        store = Store(tmp_path / "out" / "synthetic")
        deadline = time.monotonic() + 120
        while not store.finished():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert first.poll() is None, "the first run should still be going"
        assert second.returncode == 1
        assert "another hpctune run is using" in second.stderr
        assert f"(pid {first.pid} on" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 3, err  # the hung search failed, the others are ok
    with xr.open_dataset(tmp_path / "out" / "synthetic" / "results.nc") as results:
        assert list(results.status.values) == ["ok", "ok", "ok", "failed"]


def test_a_read_only_output_folder_is_a_clear_error(tmp_path, dask_client):
    """Root ignores file modes, so the folder is a read-only mount."""
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
    else:
        (tmp_path / "ro").mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(tmp_path / "ro")],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
        spec = synthetic_spec(tmp_path / "cells.nc", output=str(tmp_path / "ro" / "out"))
        with pytest.raises(OutputError, match=r"permission denied|read-only"):
            hpctune.run(write_spec(tmp_path, spec), client=dask_client)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(tmp_path / "ro")], check=False)
