"""Smoke tests of the local SLURM test cluster itself (tests/slurm/up.sh).

They check what the hpctune integration tests rely on: two nodes that both
run job steps, sbatch --test-only, array jobs and the MaxArraySize limit,
Torque-style qsub, requeue with an immediate restart, and signals delivered
to the batch shell. Each job writes into the test's tmp_path (the emulated
nodes share this host's filesystem).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import slurmtools

pytestmark = [pytest.mark.slurm, pytest.mark.full]


def _wait_for_file(path: Path, timeout: float = 60.0, contains: str = "") -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if contains in text:
                return text
        time.sleep(0.1)
    raise TimeoutError(f"{path} (containing {contains!r}) did not appear within {timeout}s")


def test_cluster_shape(slurm_cluster):
    out = slurmtools.run(["sinfo", "-h", "-N", "-o", "%N %P %c %m"]).stdout.split("\n")
    rows = sorted(line.split() for line in out if line.strip())
    assert rows == [
        ["node1", "debug*", "2", "8192"],
        ["node2", "debug*", "2", "8192"],
    ]
    assert slurm_cluster.max_array_size == 10


def test_two_node_job_sees_both_nodes(slurm_jobs, tmp_path):
    job_id = slurm_jobs.submit(
        "srun bash -c 'echo step $SLURMD_NODENAME $SLURM_PROCID'\n"
        "echo batch $SLURMD_NODENAME $SLURM_JOB_NUM_NODES $SLURM_NTASKS\n",
        "-N",
        "2",
        "--ntasks-per-node=2",
        "-o",
        "out.txt",
    )
    states = slurm_jobs.wait(job_id, timeout=120)
    assert states == {job_id: "COMPLETED"}
    lines = (tmp_path / "out.txt").read_text().splitlines()
    steps = sorted(line.split()[1:] for line in lines if line.startswith("step "))
    assert steps == [["node1", "0"], ["node1", "1"], ["node2", "2"], ["node2", "3"]]
    assert "batch node1 2 4" in lines
    rec = slurmtools.job_info(job_id)[0]
    assert rec["NodeList"] == "node[1-2]"
    assert rec["ExitCode"] == "0:0"


def test_sbatch_test_only(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH -N 2 --ntasks-per-node=2 --mem=2G\nsrun true\n")
    ok = subprocess.run(
        ["sbatch", "--test-only", str(script)], capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"Job \d+ to start at .* on nodes node\[1-2\] in partition debug", ok.stderr)
    # Requests the cluster can never satisfy are refused.
    for bad in (["-N", "3"], ["--mem=64G"], ["--cpus-per-task=3"]):
        res = subprocess.run(
            ["sbatch", "--test-only", *bad, str(script)], capture_output=True, text=True, timeout=30
        )
        assert res.returncode != 0, (bad, res.stderr)


def test_array_job_runs_all_tasks(slurm_jobs, tmp_path):
    job_id = slurm_jobs.submit(
        "echo $SLURM_ARRAY_TASK_ID $SLURMD_NODENAME > task-$SLURM_ARRAY_TASK_ID.txt\n",
        "--array=0-5",
        "-o",
        "slurm-%A_%a.out",
    )
    states = slurm_jobs.wait(job_id, timeout=120)
    assert states == {f"{job_id}_{i}": "COMPLETED" for i in range(6)}
    for i in range(6):
        assert (tmp_path / f"task-{i}.txt").read_text().split()[0] == str(i)
    assert sorted(p.name for p in tmp_path.glob("slurm-*.out")) == sorted(
        f"slurm-{job_id}_{i}.out" for i in range(6)
    )


def test_array_larger_than_max_array_size_is_refused(slurm_cluster, tmp_path):
    limit = slurm_cluster.max_array_size
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    res = subprocess.run(
        ["sbatch", "--test-only", f"--array=0-{limit}", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    assert "Invalid job array specification" in res.stderr
    ok = subprocess.run(
        ["sbatch", "--test-only", f"--array=0-{limit - 1}", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("where", ["command-line", "directives"])
def test_qsub_torque_script(slurm_jobs, tmp_path, where):
    """qsub (slurm-wlm-torque) with -l nodes=2:ppn=2 runs 2 x 2 tasks.

    The wrapper reads only its command line; #PBS lines in the script are
    read by sbatch, except -o/-e/-j which the wrapper always overrides with
    <name>.o<jobid> / <name>.e<jobid> unless given on the qsub command line,
    and of several -l options on the command line only the last one counts.
    """
    script = tmp_path / "pbs.sh"
    body = (
        "echo nodes=$SLURM_JOB_NUM_NODES tasks=$SLURM_NTASKS\n"
        "srun bash -c 'echo step $SLURMD_NODENAME'\n"
    )
    if where == "command-line":
        script.write_text("#!/bin/bash\n" + body)
        # One -l only: the wrapper keeps just the last -l it is given.
        cmd = [
            "qsub",
            "-N",
            "hpctune-pbs",
            "-l",
            "nodes=2:ppn=2,walltime=00:05:00",
            "-o",
            str(tmp_path / "pbs.out"),
            "-j",
            "oe",
            str(script),
        ]
    else:
        script.write_text(
            "#!/bin/bash\n"
            "#PBS -N hpctune-pbs\n"
            "#PBS -l nodes=2:ppn=2\n"
            "#PBS -l walltime=00:05:00\n" + body
        )
        cmd = ["qsub", str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    job_id = slurm_jobs.track(res.stdout.strip().split(".")[0])
    assert job_id.isdigit(), res.stdout
    assert slurm_jobs.wait(job_id, timeout=120) == {job_id: "COMPLETED"}
    out = tmp_path / ("pbs.out" if where == "command-line" else f"pbs.sh.o{job_id}")
    text = out.read_text()
    assert "nodes=2 tasks=4" in text
    steps = sorted(line for line in text.splitlines() if line.startswith("step "))
    assert steps == ["step node1", "step node1", "step node2", "step node2"]
    rec = slurmtools.job_info(job_id)[0]
    assert rec["JobName"] == "hpctune-pbs"
    assert rec["TimeLimit"] == "00:05:00"


def test_requeue_restarts_at_once(slurm_jobs, tmp_path):
    job_id = slurm_jobs.submit(
        'echo "run ${SLURM_RESTART_COUNT:-0}" >> runs.txt\n'
        'if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then sleep 120; fi\n',
        "-o",
        "out.txt",
        "--open-mode=append",
    )
    _wait_for_file(tmp_path / "runs.txt", contains="run 0")
    put_off = slurmtools.requeue_now(job_id, timeout=30)
    assert put_off, "SLURM did not put the requeued job off (Reason=BeginTime)"
    assert slurm_jobs.wait(job_id, timeout=120) == {job_id: "COMPLETED"}
    assert (tmp_path / "runs.txt").read_text().split("\n")[:2] == ["run 0", "run 1"]
    info = slurmtools.job_info(job_id)[0]
    assert info["Restarts"] == "1"
    # SLURM's own clock: the second run started before the time the requeue had put it off to
    assert info["StartTime"] < put_off, (info["StartTime"], put_off)


def test_signal_to_batch_shell(slurm_jobs, tmp_path):
    """scancel --batch --signal=USR1 reaches the batch shell only (like --signal=B:USR1@N)."""
    job_id = slurm_jobs.submit(
        "trap 'echo got USR1 >> log.txt; exit 0' USR1\n"
        "bash -c 'trap \"echo child USR1 >> log.txt\" USR1; sleep 60' &\n"
        "echo ready >> log.txt\n"
        "for i in $(seq 120); do sleep 0.5 & wait $!; done\n",
        "-o",
        "out.txt",
    )
    _wait_for_file(tmp_path / "log.txt", contains="ready")
    slurmtools.cancel(job_id, signal="USR1", batch=True)
    assert slurm_jobs.wait(job_id, timeout=120) == {job_id: "COMPLETED"}
    assert (tmp_path / "log.txt").read_text().splitlines() == ["ready", "got USR1"]


@pytest.mark.slurm_slow
def test_signal_option_before_time_limit(slurm_jobs, tmp_path):
    """--signal=B:USR1@50 with a 1 minute limit: USR1 reaches the batch shell early."""
    job_id = slurm_jobs.submit(
        "start=$(date +%s)\n"
        "trap 'echo USR1 $(( $(date +%s) - start )) >> log.txt; exit 0' USR1\n"
        "for i in $(seq 400); do sleep 0.5 & wait $!; done\n",
        "-t",
        "1",
        "--signal=B:USR1@50",
        "-o",
        "out.txt",
    )
    # COMPLETED (the trap's exit 0), not TIMEOUT: USR1 came before the time limit
    assert slurm_jobs.wait(job_id, timeout=120) == {job_id: "COMPLETED"}
    (line,) = (tmp_path / "log.txt").read_text().splitlines()
    assert line.split()[0] == "USR1"
