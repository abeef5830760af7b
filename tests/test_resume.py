"""A run killed halfway resumes: finished partitions are kept, the rest computed, same results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

from hpctune.output.folder import Store

#: Whole runs killed and run again, in processes of their own: the full tier.
pytestmark = pytest.mark.full
SLOW_SEARCH = {
    "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
    "params": {"svr__C": [0.3, 3.0], "svr__gamma": ["scale"]},
    "cv": {"kind": "kfold", "splits": 3},
    "scoring": ["r2"],
    "min_samples": 20,
}


def start(spec_path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "hpctune", "run", str(spec_path), "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finished_count(output):
    return len(Store(output).finished())


@pytest.mark.parametrize(
    "workers",
    [
        ["--set", "cluster.workers=2"],  # whole searches in two worker processes
        ["--set", "cluster.workers=2", "--set", "cluster.processes=false"],  # fits in threads
    ],
    ids=["processes", "threads"],
)
def test_killed_run_resumes_to_the_same_results(tmp_path, workers):
    synthetic(cells=12, steps=3000).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", search=SLOW_SEARCH, data__chunk=12)
    killed = write_spec(tmp_path, {**spec, "output": "killed"}, "killed.yaml")
    whole = write_spec(tmp_path, {**spec, "output": "whole"}, "whole.yaml")

    process = start(killed, *workers)
    deadline = time.monotonic() + 120
    while finished_count(tmp_path / "killed") < 3:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no partition finished in time"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = finished_count(tmp_path / "killed")
    assert 3 <= done_before < 12, "the kill should land halfway"
    assert not (tmp_path / "killed" / "results.nc").exists()

    resumed = start(killed, "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    summary = json.loads(out)
    assert summary["resumed"] >= done_before
    assert summary["ok"] == 12

    uninterrupted = start(whole)
    _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err
    with (
        xr.open_dataset(tmp_path / "killed" / "results.nc") as a,
        xr.open_dataset(tmp_path / "whole" / "results.nc") as b,
    ):
        same = ["status", "best_score", "n_train", "n_test", "best_svr__C", "best_svr__gamma"]
        xr.testing.assert_equal(a[same], b[same])
