"""``cluster.mode: allocation`` on the real two-node SLURM: what estimators print on the workers
started by srun stays off ``hpctune run --json``'s stdout."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from cluster_support import cancel_by_name, make_job, name_of, output_of, salloc_command, worker_env

pytestmark = [pytest.mark.slurm, pytest.mark.full]

LIBSVM = "optimization finished"


def test_run_json_in_an_allocation_prints_one_document_while_estimators_print(
    slurm_cluster, tmp_path
):
    spec = make_job(tmp_path, cells=2, cluster__mode="allocation")
    job = yaml.safe_load(spec.read_text())
    job["search"]["estimator"] = ["tests_support.PrintsOnFit", "sklearn.svm.SVR"]
    job["search"]["params"] = {"svr__C": [1.0], "svr__verbose": [True]}
    spec.write_text(yaml.safe_dump(job, sort_keys=False))
    command = salloc_command(spec, "-N", "2", "--ntasks-per-node=1", "--mem-per-cpu=1G", "-t", "5")
    try:
        done = subprocess.run(
            [*command, "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=worker_env(),
            timeout=300,
        )
    finally:
        cancel_by_name(name_of(spec))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # one document, nothing around it
    assert summary["ok"] == 2 and summary["cluster"].startswith("allocation"), summary
    workers = "".join(p.read_text() for p in (output_of(spec) / "logs").glob("workers-*.log"))
    assert LIBSVM in workers  # the estimators did print, on the workers
    assert not list(output_of(spec).glob(".lock*"))
