"""Faults in the middle of a run: a hung or crashing fit, a killed worker, a full disk."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import tests_support
import xarray as xr
from helpers import mounted_tmpfs, read_only_folder, synthetic, synthetic_spec, write_spec

import hpctune
from hpctune.errors import OutputError
from hpctune.output.folder import Store
from hpctune.output.journal import read_journal
from hpctune.output.packs import location_of

#: Faults injected into whole runs of their own (killed workers, hung fits): the full tier.
pytestmark = pytest.mark.full


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


def ended(pid: int) -> bool:
    """The process is gone (or a zombie its parent has not reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("granularity", ["partition", "fit"])
def test_a_search_past_its_timeout_fails_and_the_run_goes_on(tmp_path, granularity):
    """On a cluster of its own: the run does not wait for the hung fit (it never wakes, its
    process is ended: in fit granularity the stuck worker processes, in partition granularity
    the search's own child process)."""
    ds = synthetic(cells=4, steps=120)
    ds["x1"][2, :] = 999.0  # the marker: this cell's search sleeps
    ds.to_netcdf(tmp_path / "cells.nc")
    log = tmp_path / "sleepers.log"
    search = {**SLEEPY, "params": {**SLEEPY["params"], "sleeponmarker__log": [str(log)]}}
    spec = synthetic_spec(tmp_path / "cells.nc", search={**search, "timeout": 20})
    spec["cluster"] = {"granularity": granularity}
    with private_cluster() as client:
        summary = hpctune.run(write_spec(tmp_path, spec), client=client)
        lines = [line.split() for line in log.read_text().splitlines()]
        pids = {int(pid) for word, pid in lines if word == "sleep"}
        assert pids, "the marked cell's fit never started"
        assert all(word == "sleep" for word, _ in lines), "the run waited for the hung fit"
        assert all(ended(pid) for pid in pids), f"a hung fit's process {pids} is still running"
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


def journal_pid(path: Path) -> int:
    """The process id in a journal's name, ``HOST-PID-HEX.log``."""
    return int(path.name.rsplit("-", 2)[1])


def test_a_worker_killed_mid_run_is_replaced_and_every_partition_finishes(tmp_path):
    """The first fit of the run blocks its worker (tests_support.BlockOnce) until the test,
    once two partitions have finished elsewhere, kills that worker: it held a partition. The
    worker is restarted, and the partition is computed again on another worker."""
    from hpctune.execution.graphs import _executing_keys

    synthetic(cells=12, steps=3000).to_netcdf(tmp_path / "cells.nc")
    gate = tmp_path / "gate"
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        search={
            "estimator": [
                "tests_support.BlockOnce",
                "sklearn.preprocessing.StandardScaler",
                "sklearn.svm.SVR",
            ],
            "params": {"blockonce__gate": [str(gate)], "svr__C": [0.5, 2.0]},
            "cv": {"kind": "kfold", "splits": 3},
            "min_samples": 20,
        },
    )
    spec["cluster"] = {"granularity": "partition"}
    path = write_spec(tmp_path, spec)
    store = Store(tmp_path / "out" / "synthetic")
    killed: dict[str, Any] = {}
    problems: list[str] = []

    with private_cluster() as client:
        before = client.run(os.getpid)

        def kill_the_worker_that_holds_work():
            try:
                deadline = time.monotonic() + 300
                while not (gate.exists() and len(store.finished()) >= 2):
                    if time.monotonic() > deadline:
                        problems.append("no fit blocked, or no 2 partitions finished, in 300 s")
                        return
                    time.sleep(0.1)
                pid = int(gate.read_text())
                (address,) = [a for a, p in before.items() if p == pid]
                killed.update(pid=pid, held=client.run(_executing_keys, workers=[address])[address])
                os.kill(pid, signal.SIGKILL)
            except Exception as exc:  # reported by the test below
                problems.append(repr(exc))
            finally:
                (tmp_path / "gate.open").touch()  # a run that goes wrong ends all the same

        killer = threading.Thread(target=kill_the_worker_that_holds_work)
        killer.start()
        summary = hpctune.run(path, client=client)
        killer.join()
        client.wait_for_workers(2, timeout=120)
        after = client.run(os.getpid)
    assert not problems, problems
    assert list(summary.results.status.values) == ["ok"] * 12
    assert summary.exit_code == 0
    # the worker killed was computing a batch of partitions
    batches = [str(key) for key in killed["held"] if str(key).startswith("hpctune-batch-")]
    assert len(batches) == 1, killed["held"]
    first = int(batches[0].split("-")[2])
    # restarted: two workers again, the killed one not among them
    assert len(after) == 2 and killed["pid"] not in after.values(), (before, after)
    # computed again: the partition it held is recorded by another worker, not by it
    recorded_by = {
        journal_pid(journal)
        for journal in store.parts.glob("*.log")
        for record in read_journal(journal)[0]
        if record["index"] == first and record["status"] == "ok"
    }
    assert recorded_by and killed["pid"] not in recorded_by, (first, recorded_by, killed)


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
    from hpctune.execution.batches import batch_outcome

    runs, release = tmp_path / "runs", tmp_path / "release"
    with private_cluster() as client:
        # computed again, the batch ends only once the test creates `release`
        future = client.submit(tests_support.fast_then_slow, str(runs), str(release), pure=False)
        lose_the_result(client, future)
        stop = threading.Event()
        stop.set()
        try:
            with pytest.raises(RunStopped):
                batch_outcome(future, stop)
            assert runs.read_text().count("end") == 1, "waited for the batch computed again"
            assert future.cancelled()
        finally:
            release.touch()


def test_a_batch_computed_again_after_its_worker_died_is_waited_for_while_the_run_goes_on():
    """Not stopped, the run takes the outcome of the batch computed again."""
    from hpctune.execution.batches import batch_outcome

    with private_cluster() as client:
        future = client.submit(lambda: 7, pure=False)
        lose_the_result(client, future)
        assert batch_outcome(future, threading.Event()) == 7


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 KiB filesystem: a tmpfs root mounts (without root: a skip, a failure under CI)."""
    with mounted_tmpfs(tmp_path / "disk", "size=600k") as mount:
        yield mount


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
    with pytest.raises(OutputError, match="no space left on the device") as info:
        hpctune.run(write_spec(tmp_path, spec), client=dask_client)
    # the models fill the disk first, the records seldom: either is named, as a full disk
    out = re.escape(str(tiny_disk / "out"))
    written = rf"cannot (write {out}/models/\S+\.pack|append to {out}/parts/\S+\.log): no space"
    assert re.match(written, str(info.value)), str(info.value)
    store = Store(tiny_disk / "out")
    finished = store.finished()
    assert 0 < len(finished) < 20
    for record in finished.values():  # every recorded model is whole (crc32 checked)
        assert len(store.read_model(location_of(record, 20))) == record["model"]["size"] > 0
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
    """For root, who ignores file modes, the folder is a read-only mount."""
    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    with read_only_folder(tmp_path / "ro") as folder:
        spec = synthetic_spec(tmp_path / "cells.nc", output=str(folder / "out"))
        with pytest.raises(OutputError, match=r"permission denied|read-only"):
            hpctune.run(write_spec(tmp_path, spec), client=dask_client)


def _finished(client: Any, fn: Any, *args: Any) -> Any:
    from distributed import wait

    future = client.submit(fn, *args, pure=False)
    wait([future])
    return future


def test_a_finished_batch_whose_fetch_runs_past_the_poll_is_fetched_once_to_the_end():
    """A fetch that takes longer than the driver's poll (a loaded driver, 16 workers on 2
    cores): waited for, not cancelled and begun again. Before, each poll cancelled the fetch
    and started a new one, and the driver spun on fetches that never finished."""
    from hpctune.execution.batches import batch_outcome
    from hpctune.execution.runner import POLL_SECONDS

    outcome = {"statuses": [(0, "ok")], "seconds": 0.1, "first": False}
    with private_cluster() as client:
        future = _finished(client, tests_support.slow_to_send, 3 * POLL_SECONDS, outcome)
        fetched: list[Any] = []
        fetcher = threading.Thread(
            target=lambda: fetched.append(batch_outcome(future, threading.Event())), daemon=True
        )
        started = time.monotonic()
        fetcher.start()
        fetcher.join(timeout=30)
        assert fetched == [outcome], "the fetch never finished"
        assert time.monotonic() - started < 10 * POLL_SECONDS
        # and the client still fetches (no gather of its own left cancelled)
        assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3


def test_a_stop_ends_the_wait_for_a_slow_fetch():
    from hpctune.errors import RunStopped
    from hpctune.execution.batches import batch_outcome

    outcome = {"statuses": [(0, "ok")], "seconds": 0.1, "first": False}
    with private_cluster() as client:
        future = _finished(client, tests_support.slow_to_send, 20, outcome)
        stop = threading.Event()
        stop.set()
        started = time.monotonic()
        with pytest.raises(RunStopped):
            batch_outcome(future, stop)
        assert time.monotonic() - started < 5
        assert future.cancelled()


def test_an_unbound_local_raised_by_the_task_itself_is_its_error():
    from hpctune.execution.batches import batch_outcome

    with private_cluster() as client:
        future = _finished(client, tests_support.raise_unbound_local)
        with pytest.raises(UnboundLocalError):
            batch_outcome(future, threading.Event())
