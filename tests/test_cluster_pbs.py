"""``cluster.mode: allocation`` in a PBS job, with real processes and a stand-in ``pbsdsh``.

No PBS server runs here: the test sets what PBS sets (``PBS_JOBID``, ``PBS_NODEFILE`` naming two
hosts) and puts on PATH a ``pbsdsh`` that runs its command on this machine, as PBS would on the
chosen node. Everything else is the real run: the scheduler in the driver, TLS credentials on
disk, one launcher per host, workers connecting, results recorded per host.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

#: A whole run on stand-in PBS hosts, each starting real worker processes: the full tier.
pytestmark = pytest.mark.full

TESTS = Path(__file__).parent

PBSDSH = """#!/bin/sh
# pbsdsh stand-in: note the arguments, then run the command here
printf "%s\\n" "$*" >> "{calls}"
while [ $# -gt 0 ]; do
    case "$1" in
        -n|-h|-c) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec "$@"
"""


def test_workers_start_on_every_host_of_the_node_file(tmp_path):
    synthetic(cells=8).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        cluster__mode="allocation",
        cluster__interface="lo",
        cluster__start_timeout=120,
        scheduler__kind="pbs",
        # 0.7 s per search: every worker gets partitions (tiny fits could all go to the
        # workers that connected first)
        search__estimator=["sklearn.preprocessing.StandardScaler", "tests_support.SlowRidge"],
        search__params={"slowridge__alpha": [0.1, 1.0]},
    )
    path = write_spec(tmp_path, spec)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "pbsdsh-calls.txt"
    (bin_dir / "pbsdsh").write_text(PBSDSH.format(calls=calls))
    (bin_dir / "pbsdsh").chmod(0o755)
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("cn01\ncn01\ncn02\ncn02\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "PBS_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PBS_JOBID="4711.pbs-server",
        PBS_NODEFILE=str(nodefile),
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    )
    out = subprocess.run(
        [sys.executable, "-m", "hpctune", "-v", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "allocation (pbs job 4711.pbs-server): 4 workers" in out.stderr
    assert "on cn01,cn02 (tls://127.0.0.1:" in out.stderr
    lines = sorted(calls.read_text().splitlines())
    assert [line.split()[:3] for line in lines] == [["-n", "0", "--"], ["-n", "2", "--"]]
    assert all("--nworkers 2" in line for line in lines)
    output = tmp_path / "out" / "synthetic"
    with xr.open_dataset(output / "results.nc") as results:
        assert set(results.status.values) == {"ok"}
        assert set(results.node.values) == {"cn01", "cn02"}, out.stderr
    assert not list(output.glob(".dask-tls-*")), "credentials left behind"
