"""``cluster.mode: jobqueue`` on the real two-node SLURM: dask-jobqueue submits worker jobs,
they do the work, and they leave the queue when the run ends or is stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from cluster_support import (
    cancel_by_name,
    hpctune_command,
    make_job,
    name_of,
    output_of,
    results,
    wait_until,
    worker_env,
)

from hpctune.output.folder import Store

pytestmark = [pytest.mark.slurm, pytest.mark.full]

WORKER_JOBS = {
    "cluster__mode": "jobqueue",
    "cluster__jobs": 2,
    "cluster__start_timeout": 240,
    "scheduler__cores_per_node": 1,
    "scheduler__memory": "1GB",
    "scheduler__walltime": "00:10:00",
}


RUN_TIMEOUT = 480.0
"""Seconds a run of these tests may take before the test fails: its worker jobs may wait in
the queue behind other tests' jobs (cluster.start_timeout is 240 s)."""


def worker_jobs(name: str) -> dict[str, str]:
    """Job id -> state of the worker jobs named ``<name>-worker`` in squeue."""
    out = subprocess.run(
        ["squeue", "-h", "-n", f"{name}-worker", "-o", "%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def start(spec, fit_seconds):
    return subprocess.Popen(
        hpctune_command(spec),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=spec.parent,
        env=worker_env(fit_seconds=fit_seconds),
        start_new_session=True,
    )


def stop(process, name):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    cancel_by_name(f"{name}-worker")


def test_worker_jobs_do_the_work_and_leave_the_queue(slurm_cluster, tmp_path):
    spec = make_job(tmp_path, slow=True, **WORKER_JOBS)
    name = name_of(spec)
    process = start(spec, fit_seconds=0.2)
    seen: dict[str, set[str]] = {}  # every state each worker job was seen in
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while process.poll() is None:
            assert time.monotonic() < deadline, f"the run still going after {RUN_TIMEOUT} s"
            for job_id, state in worker_jobs(name).items():
                seen.setdefault(job_id, set()).add(state)
            time.sleep(0.5)
        _, err = process.communicate(timeout=60)
    finally:
        stop(process, name)
    assert process.returncode == 0, err
    assert len(seen) >= 2 and any("RUNNING" in states for states in seen.values()), seen
    assert "jobqueue: 2 slurm jobs x 1 workers x 1 thread(s)" in err
    assert "(tls://127.0.0.1:" in err
    # dask-jobqueue cancels its jobs when the cluster closes: none is left behind
    wait_until(lambda: not worker_jobs(name), 60, f"worker jobs still queued: {worker_jobs(name)}")
    ds = results(spec)
    assert set(ds.status.values) == {"ok"}, err
    assert set(ds.node.values) <= {"node1", "node2"}
    assert not list(output_of(spec).glob(".dask-tls-*"))
    assert list((output_of(spec) / "logs" / "workers").glob(f"{name}-worker-*.err"))


def test_ctrl_c_stops_the_run_and_cancels_the_worker_jobs(slurm_cluster, tmp_path):
    spec = make_job(tmp_path, cells=12, slow=True, **WORKER_JOBS)
    name, output = name_of(spec), output_of(spec)
    process = start(spec, fit_seconds=0.5)
    try:
        wait_until(
            lambda: (
                process.poll() is not None
                or (output.exists() and len(Store(output).finished()) >= 1)
            ),
            240,
            "no partition finished",
        )
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        stop(process, name)
    assert process.returncode == 130, err
    assert "stopped by SIGINT, run again to resume" in out
    wait_until(lambda: not worker_jobs(name), 60, f"worker jobs still queued: {worker_jobs(name)}")
    assert 1 <= len(Store(output).finished()) < 12


@pytest.mark.slurm_slow
def test_workers_leave_before_their_walltime_and_are_replaced(slurm_cluster, tmp_path):
    """1 min worker jobs: each worker leaves after 47 ± 3 s (--lifetime), a new job replaces
    it, and the run goes on to the end with every partition ok."""
    changes = {**WORKER_JOBS, "scheduler__walltime": "00:01:00", "scheduler__grace": 10}
    spec = make_job(tmp_path, cells=40, slow=True, **changes)
    name = name_of(spec)
    process = start(spec, fit_seconds=0.5)
    seen: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 2 * RUN_TIMEOUT
        while process.poll() is None:
            assert time.monotonic() < deadline, f"the run still going after {2 * RUN_TIMEOUT} s"
            seen.update(worker_jobs(name))
            time.sleep(1.0)
        _, err = process.communicate(timeout=60)
    finally:
        stop(process, name)
    assert process.returncode == 0, err
    assert len(seen) >= 3, seen  # the first two jobs, and at least one replacement
    assert set(results(spec).status.values) == {"ok"}
    timeouts = [
        job
        for job in seen
        if "TIMEOUT"
        in subprocess.run(
            ["scontrol", "-o", "show", "job", job], capture_output=True, text=True, check=False
        ).stdout
    ]
    assert not timeouts, f"worker jobs ran into their walltime: {timeouts}"
