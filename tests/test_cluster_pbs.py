"""``cluster.mode: allocation`` in a PBS job, with real processes and a stand-in ``pbsdsh``.

No PBS server runs here: the test sets what PBS sets (``PBS_JOBID``, ``PBS_NODEFILE`` naming two
hosts) and puts on PATH a ``pbsdsh`` that runs its command on this machine, as PBS would on the
chosen node. Everything else is the real run: the scheduler in the driver, TLS credentials on
disk, one launcher per host, workers connecting, results recorded per host.
"""

from __future__ import annotations

import pytest
from standin_launcher import assert_worked_on_every_host, run_in_standin_job

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


def test_workers_start_on_every_host_of_the_node_file(tmp_path):
    run = run_in_standin_job(
        tmp_path,
        "pbs",
        "pbsdsh",
        PBSDSH_OPTIONS,
        lambda nodes: {"PBS_JOBID": "4711.pbs-server", "PBS_NODEFILE": str(nodes)},
    )
    assert_worked_on_every_host(run)
    stderr = run.process.stderr
    assert "allocation (pbs job 4711.pbs-server): 4 workers" in stderr
    assert "on cn01,cn02 (tls://127.0.0.1:" in stderr
    assert [line.split()[:3] for line in run.calls] == [["-n", "0", "--"], ["-n", "2", "--"]]
