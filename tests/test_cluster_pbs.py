"""``cluster.mode: allocation`` in a PBS job, with real processes and a stand-in ``pbsdsh``.

No PBS server runs here: the test sets what PBS sets (``PBS_JOBID``, ``PBS_NODEFILE`` naming two
hosts) and puts on PATH a ``pbsdsh`` that runs its command on this machine, as PBS would on the
chosen node. Everything else is the real run: the scheduler in the driver, TLS credentials on
disk, one launcher per host, workers connecting, results recorded per host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import alive
from standin_launcher import HOSTS, assert_worked_on_every_host, run_in_standin_job, standin_job

#: A whole run on stand-in PBS hosts, each starting real worker processes: the full tier.
pytestmark = pytest.mark.full

PBSDSH_OPTIONS = """while [ $# -gt 0 ]; do
    case "$1" in
        -n|-h|-c) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done"""


def pbs_environment(job_id: str):
    """What PBS sets in job ``job_id`` on the hosts of a node file."""
    return lambda nodes: {"PBS_JOBID": job_id, "PBS_NODEFILE": str(nodes)}


def test_workers_start_on_every_host_of_the_node_file(tmp_path):
    run = run_in_standin_job(
        tmp_path, "pbs", "pbsdsh", PBSDSH_OPTIONS, pbs_environment("4711.pbs-server")
    )
    assert_worked_on_every_host(run)
    stderr = run.process.stderr
    assert "allocation (pbs job 4711.pbs-server): 4 workers" in stderr
    assert "on cn01,cn02 (tls://127.0.0.1:" in stderr
    assert [line.split()[:3] for line in run.calls] == [["-n", "0", "--"], ["-n", "2", "--"]]


STUCK = """echo $$ >> "{pids}"
trap '' TERM
while :; do sleep 1; done"""

KILL_WAIT = 10.0
"""The test SLURM's ``KillWait`` (tests/slurm/slurm.conf.in): the batch system's SIGKILL this
long after its SIGTERM; SLURM's default is 30 s."""


def test_a_stop_while_a_launcher_ignores_sigterm_ends_the_run_before_the_kill(tmp_path):
    """SIGTERM while the workers start, their launcher stuck and deaf to SIGTERM (an ``srun``
    whose step is being cancelled can be): hpctune kills it and exits 143 within the batch
    system's grace. Once it waited 3 s, then 10 s after its own SIGTERM, and the job's SIGKILL
    came first: no exit code at all (seen in CI on the real SLURM)."""
    pids = tmp_path / "launchers.pid"
    path, env, _ = standin_job(
        tmp_path,
        "pbs",
        "pbsdsh",
        PBSDSH_OPTIONS,
        pbs_environment("4712.pbs-server"),
        body=STUCK.format(pids=pids),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "hpctune", "-v", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not pids.exists() or len(pids.read_text().split()) < len(HOSTS):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the launchers never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, err = process.communicate(timeout=120)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in pids.read_text().split() if pids.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    assert process.returncode == 143, err
    assert "stopped while waiting for pbsdsh workers (0 of 4 connected)" in err
    assert err.rstrip().endswith("stopped    by SIGTERM; run the same command to resume"), err
    assert took < KILL_WAIT, f"the run took {took:.1f} s to end after SIGTERM: {err[-2000:]}"
    for pid in pids.read_text().split():
        assert not alive(int(pid)), "a launcher outlived the run"


SIGNAL_AT_START = """
import os, signal, sys
import distributed
from hpctune.cli import app

Started = distributed.LocalCluster


class SignalledWhileStarting(Started):
    def __init__(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as the scheduler starts
        super().__init__(*args, **kwargs)


distributed.LocalCluster = SignalledWhileStarting
sys.argv = ["hpctune", "-v", "run", sys.argv[1]]
app.main()
"""


def test_a_stop_while_the_scheduler_starts_starts_no_launcher(tmp_path):
    """SIGTERM while the allocation's scheduler starts: the run stops there, 143, and no
    launcher is started (it once went on to start the workers and waited for them, up to
    ``cluster.start_timeout`` if they never came)."""
    path, env, calls = standin_job(
        tmp_path, "pbs", "pbsdsh", PBSDSH_OPTIONS, pbs_environment("4713.pbs-server")
    )
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_START, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 143, done.stderr
    assert "stopped while waiting for pbsdsh workers (0 of 4 connected)" in done.stderr
    assert not calls.exists(), calls.read_text()
    assert "Traceback" not in done.stderr
