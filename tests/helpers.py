"""Builders shared by the tests: synthetic datasets and specs like the real ones, and folders
that refuse writes or run out of space."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT / "data" / "ascat_isba_5cells.nc"
INPUTS = ["TG1", "TG2", "TG3", "WG1", "WG2", "WG3", "BIOMA1", "BIOMA2"]


REQUIRE_MOUNTS = "HPCTUNE_REQUIRE_ROOT"
"""Set to 1 (``.ci/run`` does, as does ``CI=true``), a test that needs root's mounts fails
instead of skipping where it cannot have them."""


RUN_SPECIFIC = ("fit_seconds", "node", "model_file", "model_offset", "model_size")
"""results.nc variables that differ between two runs of one spec: timings, hosts, and where
each model was written (which process's pack, at which offset)."""


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def skip_or_fail_without_mounts(reason: str) -> None:
    """Skip the test, or fail it where CI asks for every test to run."""
    import pytest

    if _truthy(REQUIRE_MOUNTS) or _truthy("CI"):
        pytest.fail(f"{REQUIRE_MOUNTS}=1 or CI=true, but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """``folder`` (created) as a tmpfs mounted with ``options`` (``ro,size=1m``,
    ``size=600k``) for the block; needs root, else skips (fails under CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        skip_or_fail_without_mounts(f"mounting a tmpfs on {folder} needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        skip_or_fail_without_mounts(f"cannot mount a tmpfs here: {' '.join(done.stderr.split())}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder`` (created, empty) refuses every write for the block: its mode for a user, a
    read-only tmpfs mounted on it for root (who ignores modes)."""
    if os.geteuid() == 0:
        with mounted_tmpfs(folder, "ro,size=1m"):
            yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    try:
        yield folder
    finally:
        folder.chmod(0o700)


def synthetic(
    cells: int = 6,
    steps: int = 240,
    seed: int = 0,
    grid: tuple[int, int] | None = None,
    sea: np.ndarray | None = None,
) -> Any:
    """A small dataset like the real one: inputs x1..x3, target y, 12-hourly from 2010.

    ``grid=(nlat, nlon)`` gives dims (lat, lon, time) instead of (space, time); ``sea`` is a
    boolean mask over the cells (flattened) whose target and inputs are all NaN.
    """
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    n = cells if grid is None else grid[0] * grid[1]
    time = pd.date_range("2010-01-01", periods=steps, freq="12h")
    season = np.sin(2 * np.pi * np.arange(steps) / 730.5)
    x = rng.normal(size=(3, n, steps)) + season
    coef = rng.uniform(0.5, 2.0, size=(3, n, 1))
    y = np.tanh(coef[0] * x[0]) + coef[1] * x[1] * 0.5 - coef[2] * x[2] ** 2 * 0.1
    y = y + rng.normal(scale=0.1, size=y.shape)
    gaps = rng.random(size=(n, steps)) < 0.1
    y[gaps] = np.nan
    if sea is not None:
        x[:, sea, :] = np.nan
        y[sea, :] = np.nan
    if grid is None:
        dims = ("space", "time")
        coords = {
            "time": time,
            "latitude": ("space", 40.0 + 0.25 * np.arange(n)),
            "longitude": ("space", 5.0 + 0.25 * np.arange(n)),
        }
        shape = (n, steps)
    else:
        dims = ("lat", "lon", "time")
        coords = {
            "time": time,
            "lat": 50.0 - 0.5 * np.arange(grid[0]),
            "lon": 2.0 + 0.5 * np.arange(grid[1]),
        }
        shape = (*grid, steps)
    data = {f"x{i + 1}": (dims, x[i].reshape(shape).astype("float32")) for i in range(3)}
    data["y"] = (dims, y.reshape(shape).astype("float32"))
    return xr.Dataset(data, coords=coords)


def synthetic_spec(data_path: Path, **changes: Any) -> dict[str, Any]:
    """A quick Ridge search on a :func:`synthetic` dataset, as a spec mapping."""
    spec: dict[str, Any] = {
        "name": "synthetic",
        "data": {
            "paths": str(data_path),
            "inputs": ["x1", "x2", "x3"],
            "target": "y",
            "chunk": 4,
        },
        "search": {
            "estimator": ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.Ridge"],
            "params": {"ridge__alpha": [0.1, 1.0, 10.0]},
            "cv": {"kind": "kfold", "splits": 3},
            "scoring": ["r2"],
            "min_samples": 20,
        },
        "output": "out/{name}",
    }
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return spec


def real_data_spec(data_path: Path, **changes: Any) -> dict[str, Any]:
    """:func:`synthetic_spec`'s quick Ridge on the real data laid out as the demo reads it
    (``jobs/example.yaml``: the eight inputs, target ``sig``, test period from 2016)."""
    real = {
        "data__inputs": INPUTS,
        "data__target": "sig",
        "data__test": {"from": "2016-01-01"},
        "data__chunk": 500,
    }
    return synthetic_spec(data_path, **{**real, **changes})


def write_spec(folder: Path, spec: dict[str, Any], name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def rewrite_schema(source: Path, target: Path, change: Any) -> None:
    """A copy of the skops file ``source`` at ``target`` whose ``schema.json`` (the objects to
    rebuild) ``change(schema)`` edited in place: a tampered model file."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(source) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    schema = json.loads(members["schema.json"])
    change(schema)
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    target.write_bytes(buffer.getvalue())


def tamper_model(job: Any, index: int, change: Any) -> None:
    """Partition ``index``'s model with its ``schema.json`` edited by ``change(schema)``
    (:func:`rewrite_schema`), appended to a new model pack with a new record, as a partition
    computed again, and results.nc merged again: a tampered model."""
    import hpctune
    from hpctune.output.folder import Store
    from hpctune.output.journal import Journal, read_journal
    from hpctune.search.model_file import model_location

    store = Store(job.output_dir)
    original = job.output_dir / "original.skops"
    original.write_bytes(store.read_model(model_location(job, index)))
    rewrite_schema(original, original, change)
    record = next(
        r for p in store.parts.glob("*.log") for r in read_journal(p)[0] if r["index"] == index
    )
    journal = Journal(store.parts)
    journal.append({k: v for k, v in record.items() if k != "model"}, model=original.read_bytes())
    journal.close()
    original.unlink()
    hpctune.merge(job)


def alive(pid: int) -> bool:
    """The process ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return status != "Z"
