"""``plan``: a timed sample and the arithmetic of the estimate, checked against a real run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.plan import EFFICIENCY, MARGIN, PlanEstimate, Resources

#: The estimate of the whole run's wall time must land within this factor of the real one.
FACTOR = 2.0


def svr_spec(data, **changes):
    """Searches of a few tenths of a second each: long enough that the run is not all startup."""
    return synthetic_spec(
        data,
        search__estimator=["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        search__params={"svr__C": [0.3, 3.0]},
        cluster={"mode": "local", "workers": 2},
        scheduler={"nodes": 1, "cores_per_node": 2, "walltime": "00:30:00"},
        **changes,
    )


@pytest.mark.full
def test_estimate_lands_within_a_factor_of_two_of_the_real_run(tmp_path, dask_client):
    """``plan`` on 4 of 16 partitions, then the whole run, on the same two worker processes
    (the spec's 1 node x 2 cores)."""
    synthetic(cells=16, steps=1500).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, svr_spec(tmp_path / "cells.nc"))
    estimate = api.plan(job, sample=4, client=dask_client)
    assert not api.load_spec(job).output_dir.exists(), "plan writes nothing"
    started = time.monotonic()
    summary = api.run(job, client=dask_client)
    real = time.monotonic() - started
    assert summary.ok == 16
    ratio = estimate.wall_seconds / real
    print(f"plan estimate {estimate.wall_seconds:.1f} s, real run {real:.1f} s: x{ratio:.2f}")
    assert 1 / FACTOR <= ratio <= FACTOR, (
        f"estimate {estimate.wall_seconds:.1f} s, real run {real:.1f} s (x{ratio:.2f})\n"
        + estimate.text()
    )


@pytest.mark.full
def test_estimate_of_a_run_on_its_own_cluster(tmp_path):
    """As a user runs them: ``hpctune plan`` and ``hpctune run``, each a process of its own
    that starts its own local cluster, so that the estimate's startup includes starting and
    warming up workers (in one Python process the second would find the first's forkserver
    ready)."""
    synthetic(cells=16, steps=1500).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, svr_spec(tmp_path / "cells.nc"))
    command = [sys.executable, "-m", "hpctune"]
    planned = subprocess.run(
        [*command, "plan", str(job), "--sample", "4", "--json"], capture_output=True, text=True
    )
    assert planned.returncode == 0, planned.stderr
    estimate = json.loads(planned.stdout)
    started = time.monotonic()
    ran = subprocess.run([*command, "run", str(job), "--quiet"], capture_output=True, text=True)
    real = time.monotonic() - started
    assert ran.returncode == 0, ran.stderr
    ratio = estimate["wall_seconds"] / real
    print(
        f"own cluster: plan estimate {estimate['wall_seconds']:.1f} s, real {real:.1f} s: "
        f"x{ratio:.2f}"
    )
    assert 1 / FACTOR <= ratio <= FACTOR, (
        f"estimate {estimate['wall_seconds']:.1f} s, real run {real:.1f} s (x{ratio:.2f})\n"
        + json.dumps(estimate, indent=1)
    )


def sample(seconds, cpu=None, rss=2**30, status="ok"):
    return [
        {
            "index": i,
            "status": status,
            "seconds": s,
            "cpu_seconds": s if cpu is None else cpu,
            "peak_rss": rss,
        }
        for i, s in enumerate(seconds)
    ]


def resources(**changes):
    values = {
        "nodes": 2,
        "cores_per_node": 32,
        "workers_per_node": 32,
        "threads": 1,
        "memory_per_node": 64 * 2**30,
        "walltime": 2 * 3600,
        "grace": 120,
        "source": "scheduler.nodes x scheduler.cores_per_node",
    }
    values.update(changes)
    return Resources(**values)


def estimate(seconds, **changes):
    values = {
        "name": "job",
        "partitions": 100_000,
        "fits_per_partition": 19,
        "sample": sample(seconds),
        "resources": resources(),
        "startup_seconds": 30.0,
        "measured_on": "local cluster",
        "target_walltime": 4 * 3600,
    }
    values.update(changes)
    return PlanEstimate(**values)


def test_the_arithmetic():
    plan = estimate([1.0, 2.0, 3.0, 2.0])
    assert plan.mean_seconds == 2.0 and plan.max_seconds == 3.0
    assert plan.core_seconds == 200_000.0
    assert plan.core_hours == pytest.approx(55.56, abs=0.01)
    assert plan.resources.slots == 64
    assert plan.compute_seconds == pytest.approx(200_000 / (64 * EFFICIENCY))
    assert plan.wall_seconds == pytest.approx(30 + 200_000 / (64 * EFFICIENCY))
    # 3936 s x 1.5 + 120 s = 6024 s, rounded up to whole 5 minutes.
    assert plan.suggested_walltime == 6300
    usable = 4 * 3600 / MARGIN - 30 - 120
    assert plan.nodes_for_target == -(-200_000 // int(32 * EFFICIENCY * usable))
    text = plan.text()
    assert "100000 x 2.000 s = 200000.0 s = 55.6 core-hours" in text
    assert "2 nodes x 32 workers x 1 threads = 64" in text
    assert "200000.0 s / (64 slots x 0.8 efficiency) = 3906.2 s" in text
    assert "= 01:45:00 (scheduler.walltime 02:00:00: enough)" in text
    assert "1900000 fits" in text
    assert "32.0 GiB per node; scheduler.memory 64.0 GiB: fits" in text
    assert json.loads(json.dumps(plan.to_dict()))["nodes_for_target"] == plan.nodes_for_target


def test_limits_and_warnings():
    too_long = estimate([10_000.0], target_walltime=3 * 3600)
    assert too_long.nodes_for_target is None
    assert "none fits 03:00:00" in too_long.text()
    # The longest partition is the floor of the wall time when partitions are the tasks.
    few = estimate([100.0, 500.0], partitions=2)
    assert few.wall_seconds == pytest.approx(30 + 500)
    busy = estimate([1.0, 1.0], sample=sample([2.0, 2.0], cpu=0.5))
    assert "the machine that timed them was busy" in busy.text()
    fat = estimate([1.0], sample=sample([1.0], rss=4 * 2**30))
    assert "does NOT fit" in fat.text()
    short = estimate([1.0], resources=resources(walltime=600))
    assert "too short" in short.text()


def test_the_layout_and_the_memory_of_a_run_on_worker_threads():
    processes = estimate([1.0], partitions=2, granularity="fit")
    threads = estimate([1.0], partitions=2, granularity="fit", workers="threads")
    whole = estimate([1.0])
    assert "each fit and score of a search is a task, on worker processes" in processes.text()
    assert "on threads of the hpctune process" in threads.text()
    assert "each partition's whole search is a task, on worker processes" in whole.text()
    # worker processes each hold a copy; threads share one process
    assert "peak 1.0 GiB per worker x 32 workers = 32.0 GiB per node" in processes.text()
    assert "peak 1.0 GiB in the one hpctune process; scheduler.memory 64.0 GiB: fits" in (
        threads.text()
    )
    assert threads.to_dict()["workers"] == "threads"


@pytest.mark.parametrize(
    ("cells", "workers", "granularity"),
    [(1, "threads", "fit"), (12, "processes", "partition")],
)
def test_plan_says_which_workers_a_local_run_would_have(tmp_path, cells, workers, granularity):
    synthetic(cells=cells, steps=200).to_netcdf(tmp_path / "cells.nc")
    spec = svr_spec(tmp_path / "cells.nc")
    del spec["scheduler"]
    estimate = api.plan(write_spec(tmp_path, spec), sample=1)
    assert (estimate.workers, estimate.granularity) == (workers, granularity)
    summary = api.run(write_spec(tmp_path, spec))
    assert summary.granularity == granularity
    assert ("in this process" in summary.cluster) is (workers == "threads")


def test_sample_on_a_cluster_writes_nothing(tmp_path, dask_client):
    synthetic(cells=10, steps=200).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    first = api.plan(job, sample=3, client=dask_client, target_walltime="00:10:00")
    again = api.plan(job, sample=3, client=dask_client)
    assert first.to_dict()["sample"]["indices"] == again.to_dict()["sample"]["indices"]
    assert len(set(first.to_dict()["sample"]["indices"])) == 3
    assert first.partitions == 10 and first.fits_per_partition == 3 * 3 + 1
    assert first.target_walltime == 600
    assert all(
        s["status"] == "ok" and s["seconds"] > 0 and s["peak_rss"] > 2**20 for s in first.sample
    )
    assert not api.load_spec(job).output_dir.exists()
    # Without a scheduler section the resources are this machine's.
    assert first.resources.source.startswith("this machine")


def test_cli_plan(tmp_path, capsys):
    synthetic(cells=4, steps=150).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    bad = hpctune(capsys, "plan", job, "--target-walltime", "soon")
    assert bad.code == 2 and "--target-walltime must look like HH:MM:SS" in bad.err
    done = hpctune(
        capsys,
        "plan",
        job,
        "--sample",
        "1",
        "--json",
        "--set",
        "scheduler.nodes=3",
        "--set",
        "scheduler.cores_per_node=8",
    )
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["sample"]["size"] == 1 and data["partitions"] == 4
    assert data["resources"]["slots"] == 3 * 8 and data["resources"]["workers_per_node"] == 8
    assert data["efficiency"] == EFFICIENCY
    assert any(line.startswith("core-hours") for line in data["lines"])
    assert data["suggested_walltime"] == "00:05:00"
