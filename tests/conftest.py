"""Shared fixtures: the real five-cell data, small synthetic datasets, one Dask cluster.

Also the test tiers: ``pytest`` runs the fast tier; tests marked ``full`` (whole runs of many
seconds, faults, the SLURM cluster) are deselected unless ``--full`` or ``HPCTUNE_FULL=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL_DATA, synthetic, synthetic_spec, write_spec

FULL_HINT = "pytest --full (or HPCTUNE_FULL=1)"
_FULL_DESELECTED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="also run the full tier, the tests marked full (as CI does); HPCTUNE_FULL=1 too",
    )


def full_tier(config: pytest.Config) -> bool:
    return bool(config.getoption("--full")) or os.environ.get("HPCTUNE_FULL") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --full, the tests marked full are deselected (pytest counts them as such)."""
    if full_tier(config):
        return
    slow = [item for item in items if item.get_closest_marker("full") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("full") is None]
    config.stash[_FULL_DESELECTED] = len(slow)


def pytest_report_header(config: pytest.Config) -> str:
    if full_tier(config):
        return "tier: full (every test)"
    return f"tier: fast (the tests marked full are deselected; all of them: {FULL_HINT})"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    count = config.stash.get(_FULL_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f"fast tier: {count} test(s) of the full tier deselected; run them with {FULL_HINT}"
        )


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
