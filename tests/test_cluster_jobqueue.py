"""``cluster.mode: jobqueue``: what hpctune asks of dask-jobqueue, and what it leaves to the
user's jobqueue.yaml. Building a cluster starts its scheduler but submits no job."""

from __future__ import annotations

from pathlib import Path

import dask
import pytest
from helpers import synthetic_spec

from hpctune.cluster.jobqueue import build, import_dask_jobqueue, lifetime, plan
from hpctune.cluster.security import write_credentials
from hpctune.errors import ClusterError
from hpctune.spec import load_spec

import_dask_jobqueue()  # its defaults in the config before a test changes it


def job_with(tmp_path: Path, **changes):
    return load_spec(synthetic_spec(tmp_path / "cells.nc", **changes), base_dir=tmp_path)


FULL = {
    "cluster__mode": "jobqueue",
    "cluster__interface": "lo",
    "cluster__jobs": 3,
    "scheduler__cores_per_node": 4,
    "scheduler__memory": "4GB",
    "scheduler__walltime": "01:00:00",
    "scheduler__queue": "debug",
    "scheduler__account": "proj-1",
    "scheduler__extra": ["--gres=gpu:1"],
    "scheduler__setup": ["module load python"],
    "scheduler__env": {"PROJ": "a b"},
}


@pytest.fixture
def credentials(tmp_path):
    creds = write_credentials(tmp_path)
    yield creds
    creds.remove()


def test_the_spec_becomes_dask_jobqueue_arguments(tmp_path, credentials):
    job = job_with(tmp_path, **FULL)
    p = plan(job, credentials.security())
    kw = p.kwargs
    assert p.cluster_class == "SLURMCluster"
    assert (kw["cores"], kw["memory"], kw["processes"]) == (4, 4 * 2**30, 4)
    assert (p.threads, p.minimum_jobs, p.maximum_jobs, p.expected_workers) == (1, 3, 3, 12)
    assert kw["walltime"] == "01:00:00"
    assert (kw["queue"], kw["account"], kw["interface"]) == ("debug", "proj-1", "lo")
    assert kw["job_name"] == "synthetic-worker"
    assert kw["job_extra_directives"] == ["--gres=gpu:1"]
    assert kw["job_script_prologue"][:2] == ["module load python", "export PROJ='a b'"]
    assert "export OMP_NUM_THREADS=1" in kw["job_script_prologue"]
    assert kw["scheduler_options"]["dashboard_address"] == "127.0.0.1:0"
    assert kw["protocol"] == "tls://" and kw["security"].require_encryption
    args = kw["worker_extra_args"]
    # 1 h walltime: leave 2 min (scheduler.grace) + 3 min stagger before it
    assert args[args.index("--lifetime") + 1] == "3300s"
    assert args[args.index("--lifetime-stagger") + 1] == "180s"
    assert kw["local_directory"] == '"${SLURM_TMPDIR:-${TMPDIR:-/tmp}}"'
    assert kw["log_directory"].endswith("out/synthetic/logs/workers")
    assert kw["worker_command"] == "hpctune.worker"


def test_jobqueue_yaml_decides_what_the_spec_leaves_open(tmp_path, credentials):
    job = job_with(tmp_path, cluster__mode="jobqueue", scheduler__extra=["--gres=gpu:1"])
    settings = {
        "jobqueue.slurm.cores": 8,
        "jobqueue.slurm.memory": "30GiB",
        "jobqueue.slurm.walltime": "02:00:00",
        "jobqueue.slurm.queue": "big",
        "jobqueue.slurm.name": "my-workers",
        "jobqueue.slurm.local-directory": "/scratch/me",
        "jobqueue.slurm.job-extra-directives": ["--qos=low"],
        "jobqueue.slurm.worker-extra-args": ["--resources", "GPU=1"],
    }
    with dask.config.set(settings):
        p = plan(job, credentials.security())
    kw = p.kwargs
    for key in ("walltime", "queue", "account", "job_name", "local_directory"):
        assert key not in kw, key
    assert (kw["cores"], kw["memory"], kw["processes"]) == (8, "30GiB", 8)
    assert kw["job_extra_directives"] == ["--qos=low", "--gres=gpu:1"]
    args = kw["worker_extra_args"]
    assert args[:2] == ["--resources", "GPU=1"]
    assert args[args.index("--lifetime") + 1] == "6780s"  # from the config's 2 h walltime


def test_the_job_script_keeps_memory_in_powers_of_two(tmp_path, credentials):
    job = job_with(tmp_path, **{**FULL, "cluster__workers": 2, "cluster__threads": 2})
    with dask.config.set({"jobqueue.slurm.job-extra-directives": ["--qos=low"]}):
        p = plan(job, credentials.security())
        cluster = build(p)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
    lines = script.splitlines()
    for directive in (
        "#SBATCH -J synthetic-worker",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=4G",
        "#SBATCH -t 01:00:00",
        "#SBATCH -p debug",
        "#SBATCH -A proj-1",
        "#SBATCH --qos=low",
        "#SBATCH --gres=gpu:1",
    ):
        assert directive in lines, (directive, script)
    command = lines[-1]
    for part in (
        "--nthreads 2",
        "--nworkers 2",
        "--memory-limit 2.00GiB",
        "--lifetime 3300s",
        "--interface lo",
        "--dashboard-address 127.0.0.1:0",
        f"--tls-key {credentials.key_file}",
    ):
        assert part in command, (part, command)


def test_pbs_and_torque_resources(tmp_path, credentials):
    pbs = plan(job_with(tmp_path, **{**FULL, "scheduler__kind": "pbs"}), credentials.security())
    assert pbs.cluster_class == "PBSCluster" and "resource_spec" not in pbs.kwargs
    torque = plan(
        job_with(tmp_path, **{**FULL, "scheduler__kind": "torque", "scheduler__extra": []}),
        credentials.security(),
    )
    assert torque.kwargs["resource_spec"] == "nodes=1:ppn=4,mem=4096mb"


def test_memory_must_come_from_somewhere(tmp_path, credentials):
    job = job_with(tmp_path, cluster__mode="jobqueue")
    with (
        dask.config.set({"jobqueue.slurm.memory": None}),
        pytest.raises(ClusterError, match=r"set scheduler\.memory"),
    ):
        plan(job, credentials.security())


def test_more_workers_than_cores_is_refused(tmp_path, credentials):
    job = job_with(tmp_path, **{**FULL, "cluster__workers": 3, "cluster__threads": 2})
    with pytest.raises(ClusterError, match="3 x 2 is more than the 4 cores"):
        plan(job, credentials.security())


def test_adaptive_bounds(tmp_path, credentials):
    job = job_with(tmp_path, **FULL, cluster__adaptive={"minimum": 0, "maximum": 5})
    p = plan(job, credentials.security())
    assert (p.minimum_jobs, p.maximum_jobs, p.expected_workers) == (0, 5, 20)


@pytest.mark.parametrize(
    ("walltime", "grace", "expected"),
    [(3600, 120, (3300, 180)), (60, 120, (45, 3)), (86400, 600, (85500, 300))],
)
def test_workers_leave_before_the_walltime(walltime, grace, expected):
    life, stagger = lifetime(walltime, grace)
    assert (life, stagger) == expected
    assert life + stagger < walltime
