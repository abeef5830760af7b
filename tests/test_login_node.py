"""A run on a login node (a batch system's commands on PATH, outside any job) in mode ``auto``
says so in one warning line and uses LOGIN_NODE_CORES cores; ``cluster.mode: local`` runs on
what the spec says, without a word."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import synthetic, synthetic_spec, write_spec

from hpctune import cluster
from hpctune.cluster import (
    LOGIN_NODE_CORES,
    local_layout,
    login_node,
    login_node_warning,
    start_cluster,
)
from hpctune.spec import load_spec


def stub(folder: Path, name: str) -> Path:
    """An executable ``name`` that only records that it was called."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\ntouch "{folder}/{name}.called"\nexit 1\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def login_path(tmp_path: Path) -> str:
    """A PATH whose only batch command is a stand-in ``sbatch``."""
    stub(tmp_path / "bin", "sbatch")
    return str(tmp_path / "bin")


def test_login_node_is_a_batch_command_outside_any_job(tmp_path, login_path):
    stub(tmp_path / "pbs", "qsub")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert login_node({"PATH": login_path}) == "sbatch on PATH, outside any batch job"
    assert login_node({"PATH": str(tmp_path / "pbs")}) == "qsub on PATH, outside any batch job"
    assert login_node({"PATH": str(empty)}) is None
    assert login_node({"PATH": login_path, "SLURM_JOB_ID": "42"}) is None
    assert login_node({"PATH": login_path, "PBS_JOBID": "7.server"}) is None
    assert login_node({"PATH": login_path, "HPCTUNE_LOGIN_NODE": "0"}) is None
    assert login_node({"PATH": str(empty), "HPCTUNE_LOGIN_NODE": "1"}) == "HPCTUNE_LOGIN_NODE=1"
    assert not (tmp_path / "bin" / "sbatch.called").exists()


@pytest.mark.parametrize(
    ("mode", "workers", "threads", "layout"),
    [
        ("auto", None, 1, (LOGIN_NODE_CORES, 1)),
        ("auto", None, 2, (max(1, LOGIN_NODE_CORES // 2), 2)),
        ("auto", 16, 1, (LOGIN_NODE_CORES, 1)),  # cluster.workers is meant for the nodes
        ("local", None, 1, (64, 1)),  # local on purpose: every core
        ("local", 16, 1, (16, 1)),
    ],
)
def test_a_login_node_caps_auto_mode_only(monkeypatch, login_path, mode, workers, threads, layout):
    monkeypatch.setenv("PATH", login_path)
    monkeypatch.delenv("HPCTUNE_LOGIN_NODE")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("PBS_JOBID", raising=False)
    monkeypatch.setattr(cluster.plan, "available_cores", lambda: 64)
    overrides = [f"cluster.mode={mode}", f"cluster.threads={threads}"]
    if workers:
        overrides.append(f"cluster.workers={workers}")
    job = load_spec(synthetic_spec(Path("cells.nc")), overrides, base_dir="/base")
    assert local_layout(job) == layout
    warning = login_node_warning(job)
    if mode == "local":
        assert warning is None
        return
    assert "login node (sbatch on PATH, outside any batch job)" in warning
    assert f"on {layout[0] * layout[1]} of its 64 cores" in warning
    for way_out in ("hpctune submit", "salloc", "cluster.mode: local"):
        assert way_out in warning
    monkeypatch.setenv("HPCTUNE_LOGIN_NODE", "0")  # not a login node after all: every core
    assert local_layout(job) == (workers or 64 // threads, threads)


@pytest.mark.parametrize("mode", ["auto", "local"])
def test_the_local_cluster_of_a_login_node_starts_capped_and_says_so(monkeypatch, login_path, mode):
    monkeypatch.setenv("PATH", login_path)
    monkeypatch.delenv("HPCTUNE_LOGIN_NODE")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("PBS_JOBID", raising=False)
    monkeypatch.setattr(cluster.plan, "available_cores", lambda: 64)
    job = load_spec(synthetic_spec(Path("cells.nc")), [f"cluster.mode={mode}"], base_dir="/base")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("hpctune")
    logger.addHandler(handler)
    try:
        with start_cluster(job, in_process=True) as handle:  # worker threads: nothing to start
            slots = handle.workers * handle.threads
    finally:
        logger.removeHandler(handler)
    said = [m for m in seen if "login node" in m]
    if mode == "auto":
        assert slots == LOGIN_NODE_CORES
        assert said == [login_node_warning(job)]
    else:
        assert slots == 64 and said == []


@pytest.mark.full
def test_run_on_a_login_node_warns_in_one_line(tmp_path, login_path):
    """``hpctune run`` as a user runs it on a login node: a stand-in ``sbatch`` on PATH (never
    called), no job. Its workers are threads (``cluster.processes: false``): nothing to start."""
    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "PBS_JOBID")}
    env.pop("HPCTUNE_LOGIN_NODE")
    env["PATH"] = f"{login_path}{os.pathsep}{Path(sys.executable).parent}"
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    command = [sys.executable, "-m", "hpctune", "run", str(job), "--json"]
    done = subprocess.run(
        [*command, "--set", "cluster.processes=false"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "login node" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("hpctune: this looks like a login node (sbatch on PATH")
    for way_out in ("hpctune submit", "salloc", "cluster.mode: local"):
        assert way_out in warnings[0]
    assert json.loads(done.stdout)["ok"] == 2
    assert not (Path(login_path) / "sbatch.called").exists()
