"""Shared fixtures: the real five-cell data, small synthetic datasets, one Dask cluster."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL_DATA, synthetic, synthetic_spec, write_spec


@pytest.fixture
def real_data(tmp_path: Path) -> Path:
    """A private copy of the real five-cell data (tests may write next to it)."""
    target = tmp_path / "data" / REAL_DATA.name
    target.parent.mkdir()
    shutil.copy(REAL_DATA, target)
    return target


@pytest.fixture
def synthetic_job(tmp_path: Path) -> Path:
    """A spec file for a six-cell synthetic dataset in tmp_path."""
    data = tmp_path / "cells.nc"
    synthetic().to_netcdf(data)
    return write_spec(tmp_path, synthetic_spec(data))


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """One local cluster of two worker processes for the whole test session."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(autouse=True)
def _no_user_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never read the developer's own ~/.config/hpctune or template folders."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("HPCTUNE_TEMPLATE_DIR", raising=False)
    # Whether this is a login node (a batch system's commands on PATH, no job) is for each
    # test to say: the test machine has SLURM's commands, another may not.
    monkeypatch.setenv("HPCTUNE_LOGIN_NODE", "0")
    os.environ.pop("HPCTUNE_DEBUG", None)
