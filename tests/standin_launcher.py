"""A whole ``cluster.mode: allocation`` run inside a stand-in batch job: what a batch system
without a server here (PBS, LSF) sets in the job's environment, and its launcher (``pbsdsh``,
``blaunch``) replaced on PATH by a script that notes its arguments and runs the worker command on
this machine, as the batch system would on the chosen node. Everything else is the real run:
the scheduler in the driver, TLS credentials on disk, one launcher per host, workers connecting,
results recorded per host. Used by the PBS and LSF tests, which differ only in the environment
and the launcher's arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec

TESTS = Path(__file__).parent
HOSTS = ("cn01", "cn02")
"""The two stand-in hosts, two slots each (the host file lists each twice)."""

STANDIN = """#!/bin/sh
# {name} stand-in: note the arguments, then run the command here
printf "%s\\n" "$*" >> "{calls}"
{skip}
{body}
"""


@dataclass
class StandinRun:
    """What a run in a stand-in job left: its process, the launcher's calls, its output."""

    process: subprocess.CompletedProcess[str]
    calls: list[str]
    output: Path


def run_in_standin_job(
    tmp_path: Path,
    kind: str,
    launcher: str,
    skip: str,
    environ: Callable[[Path], dict[str, str]],
) -> StandinRun:
    """``hpctune -v run`` of 8 synthetic cells in a ``kind`` job on :data:`HOSTS`.

    ``skip``: the shell that drops the launcher's own options before the command;
    ``environ(host_file)``: the batch system's variables for a job on the hosts in that file.
    """
    path, env, calls = standin_job(tmp_path, kind, launcher, skip, environ)
    process = subprocess.run(
        [sys.executable, "-m", "hpctune", "-v", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = sorted(calls.read_text().splitlines()) if calls.exists() else []
    return StandinRun(process, lines, tmp_path / "out" / "synthetic")


def standin_job(
    tmp_path: Path,
    kind: str,
    launcher: str,
    skip: str,
    environ: Callable[[Path], dict[str, str]],
    body: str = 'exec "$@"',
) -> tuple[Path, dict[str, str], Path]:
    """The spec, the environment and the launcher's calls file of a run in a stand-in
    ``kind`` job on :data:`HOSTS`, whose launcher runs ``body`` (by default the command)."""
    synthetic(cells=8).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        cluster__mode="allocation",
        cluster__interface="lo",
        cluster__start_timeout=120,
        scheduler__kind=kind,
        # 0.7 s per search: every worker gets partitions (tiny fits could all go to the
        # workers that connected first)
        search__estimator=["sklearn.preprocessing.StandardScaler", "tests_support.SlowRidge"],
        search__params={"slowridge__alpha": [0.1, 1.0]},
    )
    path = write_spec(tmp_path, spec)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / f"{launcher}-calls.txt"
    script = STANDIN.format(name=launcher, calls=calls, skip=skip, body=body)
    (bin_dir / launcher).write_text(script)
    (bin_dir / launcher).chmod(0o755)
    host_file = tmp_path / "hostfile"
    host_file.write_text("".join(f"{host}\n{host}\n" for host in HOSTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "PBS_", "LSB_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        **environ(host_file),
    )
    return path, env, calls


def assert_worked_on_every_host(run: StandinRun) -> None:
    """The run ended 0, one launcher per host started two workers there, every partition ran
    ok on one of the hosts, and the run's credentials are gone."""
    assert run.process.returncode == 0, run.process.stderr
    assert len(run.calls) == len(HOSTS), run.calls
    assert all("--nworkers 2" in line for line in run.calls), run.calls
    with xr.open_dataset(run.output / "results.nc") as results:
        assert set(results.status.values) == {"ok"}
        assert set(results.node.values) == set(HOSTS), run.process.stderr
    assert not list(run.output.glob(".dask-tls-*")), "credentials left behind"
