"""Zarr stores as data.paths: the same results as the same data in NetCDF, by path, glob or
list, consolidated or not; data.engine names the engines installed here."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers import INPUTS, REAL_DATA, ROOT, RUN_SPECIFIC, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

from hpctune import api
from hpctune.data import CellReader, check_data, open_dataset
from hpctune.spec import engines
from hpctune.spec.load import load_spec

HAS_ZARR = importlib.util.find_spec("zarr") is not None
needs_zarr = pytest.mark.skipif(
    not HAS_ZARR, reason="zarr is not installed (pip install 'hpctune[zarr]')"
)

#: The store layouts xarray writes: Zarr format 3 and 2, with and without consolidated metadata.
LAYOUTS = {
    "v3-consolidated": {"zarr_format": 3, "consolidated": True},
    "v3": {"zarr_format": 3, "consolidated": False},
    "v2-consolidated": {"zarr_format": 2, "consolidated": True},
    "v2": {"zarr_format": 2, "consolidated": False},
}


def to_zarr(ds: xr.Dataset, path: Path, **layout) -> Path:
    with warnings.catch_warnings():  # zarr: format 3 has no consolidated metadata in its spec
        warnings.filterwarnings("ignore", "Consolidated metadata is currently not part")
        ds.to_zarr(path, **layout)
    return path


def comparable(results: xr.Dataset) -> xr.Dataset:
    return results.drop_vars(list(RUN_SPECIFIC)).drop_attrs()


def demo_spec(tmp_path: Path, data: Path, output: str) -> Path:
    """The demo spec on ``data`` with a Ridge grid: the real data in seconds."""
    spec = yaml.safe_load((ROOT / "jobs" / "example.yaml").read_text())
    spec["data"]["paths"] = str(data)
    spec["search"]["estimator"] = [
        "sklearn.preprocessing.StandardScaler",
        "sklearn.linear_model.Ridge",
    ]
    spec["search"]["params"] = {"ridge__alpha": [0.01, 1.0, 100.0]}
    spec["cluster"] = {"mode": "local", "workers": 2, "granularity": "fit"}
    spec["output"] = str(tmp_path / output)
    return write_spec(tmp_path, spec, f"{output}.yaml")


# --------------------------------------------------------------------------- the real data


@needs_zarr
def test_the_real_data_as_zarr_gives_the_netcdf_results(tmp_path):
    store = to_zarr(
        xr.open_dataset(REAL_DATA), tmp_path / "cells.zarr", **LAYOUTS["v3-consolidated"]
    )
    netcdf = api.run(demo_spec(tmp_path, REAL_DATA, "nc"))
    zarr = api.run(demo_spec(tmp_path, store, "zarr"))
    assert netcdf.ok == zarr.ok == 5
    with (
        xr.open_dataset(tmp_path / "nc" / "results.nc") as reference,
        xr.open_dataset(tmp_path / "zarr" / "results.nc") as got,
    ):
        assert sorted(got.data_vars) == sorted(reference.data_vars)
        xr.testing.assert_identical(comparable(got), comparable(reference))
        assert list(got.status.values) == ["ok"] * 5
        assert np.isfinite(got.best_score).all()
        different = {k for k in reference.attrs if reference.attrs[k] != got.attrs.get(k)}
        assert different <= {"hpctune_spec", "hpctune_fingerprint", "created"}, different


@needs_zarr
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_cell_reads_as_from_netcdf(tmp_path, layout):
    """Every store layout, opened lazily and chunked along space as NetCDF is, reads the same
    series for every cell, a few cells at a time as workers read them."""
    store = to_zarr(xr.open_dataset(REAL_DATA), tmp_path / "cells.zarr", **LAYOUTS[layout])
    nc_job = load_spec(demo_spec(tmp_path, REAL_DATA, "nc"), ["data.chunk=2"])
    zarr_job = load_spec(demo_spec(tmp_path, store, "zarr"), ["data.chunk=2"])
    nc_ds, zarr_ds = open_dataset(nc_job.data), open_dataset(zarr_job.data)
    assert zarr_ds["sig"].chunks == nc_ds["sig"].chunks
    assert zarr_ds["sig"].chunks[0] == (2, 2, 1)
    nc_info, zarr_info = check_data(nc_job, nc_ds), check_data(zarr_job, zarr_ds)
    assert zarr_info.variables == nc_info.variables
    np.testing.assert_array_equal(zarr_info.times, nc_info.times)
    nc_reader, zarr_reader = CellReader(nc_job.data, nc_info), CellReader(zarr_job.data, zarr_info)
    for cells in ([0, 1], [4], [3, 1, 2]):
        got, expected = zarr_reader.read(np.array(cells)), nc_reader.read(np.array(cells))
        np.testing.assert_array_equal(got.x, expected.x)
        np.testing.assert_array_equal(got.y, expected.y)
        assert got.x.shape == (len(cells), 8506, len(INPUTS))


@needs_zarr
def test_a_read_touches_only_the_stored_chunks_of_its_cells(tmp_path):
    """One stored chunk per cell, the last cell's chunks overwritten with garbage: the other
    cells read as from NetCDF (their reads never open it), and reading the last cell fails."""
    ds = xr.open_dataset(REAL_DATA)
    encoding = {name: {"chunks": (1, ds.sizes["time"])} for name in ds.data_vars}
    store = to_zarr(ds, tmp_path / "cells.zarr", encoding=encoding, **LAYOUTS["v3"])
    spoiled = sorted(store.glob("*/c/4/0"))
    assert len(spoiled) == len(ds.data_vars)
    for chunk in spoiled:
        chunk.write_bytes(b"not a compressed chunk")
    nc_job = load_spec(demo_spec(tmp_path, REAL_DATA, "nc"), ["data.chunk=2"])
    zarr_job = load_spec(demo_spec(tmp_path, store, "zarr"), ["data.chunk=2"])
    nc_reader = CellReader(nc_job.data, check_data(nc_job))
    zarr_reader = CellReader(zarr_job.data, check_data(zarr_job))
    for cells in ([0, 1], [2, 3], [3]):
        got, expected = zarr_reader.read(np.array(cells)), nc_reader.read(np.array(cells))
        np.testing.assert_array_equal(got.y, expected.y)
        np.testing.assert_array_equal(got.x, expected.x)
    with pytest.raises(RuntimeError, match="decompression"):
        zarr_reader.read(np.array([4]))


@needs_zarr
def test_validate_and_plan_on_a_zarr_spec(tmp_path, capsys):
    store = to_zarr(xr.open_dataset(REAL_DATA), tmp_path / "cells.zarr", **LAYOUTS["v2"])
    job = demo_spec(tmp_path, store, "out")
    reference = api.validate(demo_spec(tmp_path, REAL_DATA, "nc"))
    checked = api.validate(job)
    assert checked["data"] == reference["data"]
    assert checked["partitions"] == reference["partitions"]
    inferred = hpctune(capsys, "validate", job)
    named = hpctune(capsys, "validate", job, "--set", "data.engine=zarr")
    assert inferred.code == named.code == 0, inferred.err + named.err
    assert inferred.out == named.out
    assert "space=5, 8506 time steps" in inferred.out
    estimate = api.plan(job, sample=1)
    assert estimate.partitions == 5
    assert [s["status"] for s in estimate.sample] == ["ok"]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- several stores


@needs_zarr
def test_one_store_per_year_by_glob_or_list_equals_one_netcdf_file(tmp_path, dask_client):
    ds = synthetic(cells=3, steps=1600)  # 12-hourly from 2010: parts of 2010, 2011 and 2012
    ds.to_netcdf(tmp_path / "whole.nc")
    (tmp_path / "years").mkdir()
    stores = []
    for year, part in ds.groupby("time.year"):
        layout = LAYOUTS["v2-consolidated"] if year == 2011 else LAYOUTS["v3"]
        stores.append(to_zarr(part, tmp_path / "years" / f"cells_{year}.zarr", **layout))
    whole = write_spec(tmp_path, synthetic_spec(tmp_path / "whole.nc"), "w.yaml")
    by_glob = write_spec(
        tmp_path, synthetic_spec("years/cells_*.zarr", output="glob/{name}"), "g.yaml"
    )
    listed = synthetic_spec("unused", output="list/{name}")
    listed["data"]["paths"] = [str(stores[2]), "years/cells_2010.zarr", str(stores[1])]
    listed_file = write_spec(tmp_path, listed, "l.yaml")
    for spec_file in (by_glob, listed_file):  # the list is out of order: coordinates rule
        info = api.validate(spec_file)["data"]
        assert info["files"] == 3
        assert info["time"]["steps"] == 1600
    reference = api.run(whole, client=dask_client).results
    combined = api.run(by_glob, client=dask_client).results
    assert list(combined.status.values) == ["ok"] * 3
    xr.testing.assert_identical(comparable(combined), comparable(reference))


# --------------------------------------------------------------------------- errors


def one_line_error(capsys, spec_file: Path, *args: str) -> str:
    result = hpctune(capsys, "validate", spec_file, *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0].removeprefix("hpctune: error: ")


def test_an_unknown_engine_lists_the_engines_installed_here(tmp_path, capsys):
    synthetic().to_netcdf(tmp_path / "cells.nc")
    spec_file = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", data__engine="foo"))
    installed = "netcdf4, h5netcdf" + (", zarr" if HAS_ZARR else "")
    assert one_line_error(capsys, spec_file) == (
        f"data.engine: 'foo' is not an engine installed here: {installed}"
    )


def test_zarr_without_the_package_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    synthetic().to_netcdf(tmp_path / "cells.nc")
    spec_file = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", data__engine="zarr"))
    real = engines._importable
    monkeypatch.setattr(engines, "_importable", lambda package: package != "zarr" and real(package))
    assert one_line_error(capsys, spec_file) == (
        "data.engine: 'zarr' is not an engine installed here: netcdf4, h5netcdf "
        "(zarr needs pip install 'hpctune[zarr]')"
    )
    (tmp_path / "cells.zarr").mkdir()
    (tmp_path / "cells.zarr" / "zarr.json").write_text('{"node_type": "group"}')
    store_spec = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.zarr"), "store.yaml")
    assert one_line_error(capsys, store_spec) == (
        "data.paths: cells.zarr is a Zarr store and zarr is not installed here: "
        "pip install 'hpctune[zarr]'"
    )


@needs_zarr
def test_paths_and_engines_that_do_not_fit(tmp_path, capsys):
    ds = synthetic()
    ds.to_netcdf(tmp_path / "cells.nc")
    to_zarr(ds, tmp_path / "cells.zarr", **LAYOUTS["v2"])
    (tmp_path / "empty.zarr").mkdir()
    (tmp_path / "plain").mkdir()
    zarr = pytest.importorskip("zarr")
    zarr.create_array(tmp_path / "array.zarr", shape=(3,), dtype="f4")
    cases = {
        "array.zarr": "data.paths: a Zarr array, not a group of variables (a dataset): "
        f"{tmp_path / 'array.zarr'}",
        "empty.zarr": "data.paths: a folder that is not a Zarr store (no zarr.json or .zgroup "
        f"in it): {tmp_path / 'empty.zarr'}",
        "plain": "data.paths: a folder, not a file or Zarr store (no zarr.json or .zgroup in "
        f"it): {tmp_path / 'plain'}",
        "missing.zarr": f"data.paths: no such file or Zarr store: {tmp_path / 'missing.zarr'}",
        "e*": f"data.paths: the pattern {tmp_path / 'e*'} matches a folder that is not a Zarr "
        f"store (no zarr.json or .zgroup in it): {tmp_path / 'empty.zarr'}",
    }
    for path, expected in cases.items():
        spec_file = write_spec(tmp_path, synthetic_spec(tmp_path / path), "bad.yaml")
        assert one_line_error(capsys, spec_file) == expected
    store = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.zarr"), "store.yaml")
    netcdf = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"), "file.yaml")
    assert one_line_error(capsys, store, "--set", "data.engine=netcdf4") == (
        "data.engine: 'netcdf4' opens NetCDF files; cells.zarr is a Zarr store "
        "(data.engine: zarr, or leave it out)"
    )
    assert one_line_error(capsys, netcdf, "--set", "data.engine=zarr") == (
        "data.engine: 'zarr' opens Zarr stores; cells.nc is a file"
    )
    both = synthetic_spec("unused")
    both["data"]["paths"] = [str(tmp_path / "cells.zarr"), str(tmp_path / "cells.nc")]
    assert one_line_error(capsys, write_spec(tmp_path, both, "both.yaml")) == (
        "data.paths: mixes Zarr stores (cells.zarr) and NetCDF files (cells.nc); "
        "one spec reads one kind"
    )
    assert not (tmp_path / "out").exists()
