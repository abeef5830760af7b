"""Odd cells get a status and a reason while normal cells stay ok; odd datasets exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.data.inspect import check_variables
from hpctune.errors import DataError
from hpctune.spec.load import load_spec


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory, dask_client):
    folder = tmp_path_factory.mktemp("hostile")
    ds = synthetic(cells=6, steps=200)
    ds["y"][0, :] = np.nan  # all-NaN target
    ds["y"][1, :] = 3.5  # constant target
    ds["x2"][2, :50] = np.inf  # +-inf inputs: rows dropped
    ds["x3"][2, 50:60] = -np.inf
    ds["y"][3, :10] = np.arange(10.0)
    ds["y"][3, 10:] = np.nan  # 10 valid samples
    ds["latitude"][4] = np.nan  # a coordinate with NaN
    ds.to_netcdf(folder / "cells.nc")
    spec = synthetic_spec(folder / "cells.nc")
    summary = api.run(write_spec(folder, spec), client=dask_client)
    return ds, summary


def test_each_odd_cell_has_a_status_and_a_reason(hostile_results):
    _, summary = hostile_results
    results = summary.results
    status = list(results.status.values)
    reason = list(results.reason.values)
    assert status == ["skipped", "skipped", "ok", "skipped", "ok", "ok"], reason
    assert reason[0] == "0 valid training rows, fewer than search.min_samples=20"
    assert reason[1].startswith("the target is constant (3.5)")
    assert reason[3] == "10 valid training rows, fewer than search.min_samples=20"
    assert summary.exit_code == 0


def test_rows_with_infinite_inputs_are_dropped(hostile_results):
    ds, summary = hostile_results
    finite = (
        np.isfinite(ds.y.values[2]) & np.isfinite(ds.x2.values[2]) & np.isfinite(ds.x3.values[2])
    )
    assert int(summary.results.n_train[2]) == int(finite.sum())
    assert int(summary.results.n_train[2]) < int(np.isfinite(ds.y.values[2]).sum())


def test_a_nan_coordinate_is_carried(hostile_results):
    _, summary = hostile_results
    assert np.isnan(summary.results.latitude.values[4])
    assert summary.results.status.values[4] == "ok"


@pytest.mark.parametrize("dtype", ["int16", "int64", "float32"])
def test_integer_variables(tmp_path, dask_client, dtype):
    ds = synthetic(cells=2, steps=200)
    for name in ("x1", "x2", "x3"):
        ds[name] = (ds[name] * 100).astype(dtype)
    ds.to_netcdf(tmp_path / "cells.nc")
    results = api.run(
        write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc")), client=dask_client
    ).results
    assert list(results.status.values) == ["ok", "ok"]


def test_half_precision_variables_through_h5netcdf(tmp_path, dask_client):
    """netCDF cannot hold float16; an HDF5 file written by h5netcdf can. (netCDF-C itself
    crashes on such a variable, so these files are read with data.engine: h5netcdf.)"""
    ds = synthetic(cells=2, steps=200)
    ds["x1"] = ds["x1"].astype("float16")
    ds.to_netcdf(tmp_path / "cells.h5", engine="h5netcdf", invalid_netcdf=True)
    path = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.h5", data__engine="h5netcdf"))
    summary = api.run(path, client=dask_client)
    assert api.validate(path)["data"]["variables"]["x1"] == "float16"
    assert list(summary.results.status.values) == ["ok", "ok"]


def test_unsorted_time_is_sorted_and_gives_the_same_results(tmp_path, dask_client):
    ds = synthetic(cells=2, steps=300)
    ds.to_netcdf(tmp_path / "sorted.nc")
    order = np.random.default_rng(1).permutation(300)
    ds.isel(time=order).to_netcdf(tmp_path / "shuffled.nc")
    spec = synthetic_spec(
        tmp_path / "sorted.nc",
        search__cv={"kind": "timeseries", "splits": 3},
        data__test={"from": "2010-04-01"},
    )
    runs = {}
    for name in ("sorted", "shuffled"):
        spec["data"]["paths"] = str(tmp_path / f"{name}.nc")
        spec["output"] = f"out-{name}"
        runs[name] = api.run(write_spec(tmp_path, spec, f"{name}.yaml"), client=dask_client).results
    same = ["status", "best_score", "n_train", "n_test", "best_ridge__alpha", "test_r2"]
    xr.testing.assert_equal(runs["sorted"][same], runs["shuffled"][same])


def test_duplicated_time_stamps_are_a_dataset_fault(tmp_path, capsys):
    ds = synthetic(cells=2, steps=100)
    times = ds.time.values.copy()
    times[50] = times[49]
    ds.assign_coords(time=times).to_netcdf(tmp_path / "cells.nc")
    result = hpctune(capsys, "run", write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc")))
    assert result.code == 2
    assert "data.time: 1 duplicated time stamps (first: 2010-01-25T12:00" in result.err
    assert not (tmp_path / "out").exists()


def test_training_and_new_data_pass_the_same_variable_check(tmp_path):
    """Bool inputs are numbers to the search: the data a model was trained on can be predicted
    on (the new data's check once refused bool), and complex ones fail both alike."""
    ds = synthetic(cells=2, steps=20)
    ds["x1"] = ds["x1"] > 0
    job = load_spec(synthetic_spec(tmp_path / "cells.nc"), base_dir=tmp_path)
    inputs = [("data.inputs", name) for name in job.data.inputs]
    assert check_variables(ds, job.data, inputs, where="the new data").dtypes["x1"] == "bool"
    ds["x1"] = ds["x1"].astype(complex)
    for where in ("the data", "the new data"):
        with pytest.raises(DataError, match="it must be numeric"):
            check_variables(ds, job.data, inputs, where=where)
