"""``cluster.mode: allocation`` on the real two-node SLURM: the run's scheduler in the batch
step or the salloc shell, workers on both nodes through srun, TLS, a worker killed mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from collections import Counter

import psutil
import pytest
import yaml
from cluster_support import (
    cancel_by_name,
    children_of,
    hpctune_command,
    make_job,
    name_of,
    nannies_of,
    output_of,
    processes_with,
    results,
    salloc_command,
    wait_until,
    worker_env,
)

from hpctune.output.folder import Store

pytestmark = [pytest.mark.slurm, pytest.mark.full]

ALLOCATION = ["-N", "2", "--ntasks-per-node=2", "--mem-per-cpu=1G"]


def assert_clean(spec):
    output = output_of(spec)
    assert not list(output.glob(".dask-tls-*")), "credentials left behind"
    assert not processes_with("hpctune.worker", str(output)), "workers left running"


def run_in_salloc(spec, *run_options, timeout=300):
    """``hpctune run SPEC RUN_OPTIONS`` in an salloc of :data:`ALLOCATION`, from the spec's
    folder. If it outlasts ``timeout`` seconds, salloc and the run under it are ended (the run
    is salloc's child on this host, which cancelling the allocation does not reach); the
    allocation is cancelled whatever happens."""
    process = subprocess.Popen(
        [*salloc_command(spec, *ALLOCATION, "-t", "10"), *run_options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=spec.parent,
        env=worker_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # salloc gives its command a process group of its own: end the whole tree
        for child in [*psutil.Process(process.pid).children(recursive=True), process]:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                child.kill()
        process.communicate()
        raise
    finally:
        cancel_by_name(name_of(spec))
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_sbatch_job_computes_on_both_nodes_over_tls(slurm_jobs, tmp_path):
    spec = make_job(tmp_path, cluster__mode="allocation")
    command = shlex.join(hpctune_command(spec))
    job_id = slurm_jobs.submit(f"{command}\n", *ALLOCATION, "-t", "10", "-o", "run.out")
    states = slurm_jobs.wait(job_id, timeout=300)
    log = (tmp_path / "run.out").read_text()
    assert states == {job_id: "COMPLETED"}, log
    assert f"allocation (slurm job {job_id}): 4 workers x 1 thread(s) on node1,node2" in log
    assert "(tls://127.0.0.1:" in log
    ds = results(spec)
    assert set(ds.status.values) == {"ok"}, log
    assert set(ds.node.values) == {"node1", "node2"}, log
    assert_clean(spec)


def test_salloc_shell_runs_workers_on_the_allocated_nodes(slurm_cluster, tmp_path):
    spec = make_job(tmp_path)  # mode auto: a two-node allocation means mode allocation
    out = run_in_salloc(spec)
    assert out.returncode == 0, out.stderr
    assert "4 workers x 1 thread(s) on node1,node2 (tls://127.0.0.1:" in out.stderr
    ds = results(spec)
    assert set(ds.status.values) == {"ok"}
    assert set(ds.node.values) == {"node1", "node2"}
    assert_clean(spec)


def test_one_partitions_search_spreads_its_fits_over_both_nodes(slurm_cluster, tmp_path):
    """One cell, 8 candidates x 3 folds, two workers on each node: granularity ``auto`` makes
    each fit a task, and the fits run on node1 and node2 (each logs its node)."""
    fits = tmp_path / "fits.log"
    spec = make_job(tmp_path, cells=1)
    job = yaml.safe_load(spec.read_text())
    job["search"]["estimator"] = [
        "sklearn.preprocessing.StandardScaler",
        "cluster_support.NodeRidge",
    ]
    job["search"]["params"] = {
        "noderidge__alpha": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
        "noderidge__log": [str(fits)],
    }
    spec.write_text(yaml.safe_dump(job, sort_keys=False))
    out = run_in_salloc(spec, "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["granularity"] == "fit", summary
    assert "4 workers x 1 thread(s) on node1,node2" in out.stderr
    nodes = Counter(fits.read_text().split())
    assert sum(nodes.values()) == 8 * 3 + 1, nodes  # every fit of every fold, and the refit
    assert set(nodes) == {"node1", "node2"}, nodes
    ds = results(spec)
    assert list(ds.status.values) == ["ok"]
    assert_clean(spec)


def test_a_killed_worker_is_replaced_and_every_partition_finishes(slurm_cluster, tmp_path):
    spec = make_job(tmp_path, cells=12, slow=True, cluster__mode="allocation")
    output = output_of(spec)
    process = subprocess.Popen(
        salloc_command(spec, *ALLOCATION, "-t", "10"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=worker_env(fit_seconds=0.3),
        start_new_session=True,
    )
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
        nannies = nannies_of(output)
        assert len(nannies) == 4, nannies
        # each nanny runs its worker in a child process (multiprocessing's spawn)
        workers = [c for n in nannies for c in children_of(n) if _is_worker(c)]
        assert workers, "no worker process found under the nannies"
        os.kill(workers[0], signal.SIGKILL)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        cancel_by_name(name_of(spec))
    assert process.returncode == 0, err
    ds = results(spec)
    assert set(ds.status.values) == {"ok"}, err
    assert ds.sizes["space"] == 12
    worker_logs = "".join(p.read_text() for p in (output / "logs").glob("workers-*.log"))
    assert "Restarting worker" in worker_logs
    assert_clean(spec)


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False
