"""``plan``: a timed sample (on an injected clock) and the arithmetic of the estimate. How close
the estimate comes to a real run's wall time is measured by benchmarks/plan_accuracy.py."""

from __future__ import annotations

import importlib
import json

import pytest
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.plan import EFFICIENCY, MARGIN, PlanEstimate, Resources


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


class Clock:
    """An injected clock for hpctune.plan.sample: each of its three clocks reads ``step``
    seconds more at every reading."""

    def __init__(self, step):
        self.step, self.readings = step, {}

    def _reader(self, name):
        def read():
            self.readings[name] = self.readings.get(name, 0) + 1
            return 1000.0 + self.step * self.readings[name]

        return read

    def __getattr__(self, name):
        if name not in {"perf_counter", "process_time", "monotonic"}:
            raise AttributeError(name)
        return self._reader(name)


def test_the_estimate_is_built_from_the_sample_on_an_injected_clock(tmp_path, monkeypatch):
    """The plan's figures come from its own clock readings, deterministically: each sampled
    partition reads the wall clock three times (start, rows read, search done) and the CPU
    clock twice, so with clocks of 0.5 s steps each takes 1.0 s wall and 0.5 s CPU; the run
    then computes every partition the plan counted.
    How close the estimate comes to a real run's wall time is benchmarks/plan_accuracy.py."""
    from distributed import Client, LocalCluster

    plan_module = importlib.import_module("hpctune.plan.sample")  # where the sample is timed
    synthetic(cells=16, steps=300).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, svr_spec(tmp_path / "cells.nc"))
    monkeypatch.setattr(plan_module, "time", Clock(0.5))
    # one worker thread in this process: the partitions are timed one after the other
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        estimate = api.plan(job, sample=4, client=client)
        assert not api.load_spec(job).output_dir.exists(), "plan writes nothing"
        assert [s["seconds"] for s in estimate.sample] == [1.0] * 4
        assert [s["cpu_seconds"] for s in estimate.sample] == [0.5] * 4
        assert [s["status"] for s in estimate.sample] == ["ok"] * 4
        # started, prepared, ready: the given client is warm, its warm-up is not startup
        assert estimate.startup_seconds == 0.5
        assert (estimate.partitions, estimate.resources.slots) == (16, 2)
        assert estimate.core_seconds == 16 * 1.0
        assert estimate.wall_seconds == pytest.approx(0.5 + 16 * 1.0 / (2 * EFFICIENCY))
        assert estimate.fits_per_partition == 2 * 3 + 1
        monkeypatch.undo()
        summary = api.run(job, client=client)
    assert (summary.total, summary.ok) == (estimate.partitions, 16)


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
    assert bad.code == 2 and "--target-walltime must be minutes, M:S, H:M:S" in bad.err
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
