"""``predict``: each partition's best model applied to new data, checked against results.nc."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, real_data_spec, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from sklearn.metrics import r2_score

import hpctune as api

TEST_FROM = np.datetime64("2016-01-01")


def test_r2_of_predictions_on_the_test_period_equals_results_test_r2(
    tmp_path, real_data, dask_client
):
    """The demo's data and layout (a quick Ridge instead of the SVR): predicting the same
    file gives, on the test period of each cell, exactly the r2 that the run recorded."""
    spec = real_data_spec(real_data)
    job = write_spec(tmp_path, spec)
    results = api.run(job, client=dask_client).results
    summary = api.predict(job, data=real_data, out=tmp_path / "pred.nc", client=dask_client)
    assert summary.partitions == 5 and summary.blocks >= 2

    predicted = xr.open_dataset(tmp_path / "pred.nc")
    data = xr.open_dataset(real_data)
    assert predicted.prediction.dims == data.sig.dims
    np.testing.assert_array_equal(predicted.latitude.values, data.latitude.values)
    np.testing.assert_array_equal(predicted.time.values, data.time.values)
    late = data.time.values >= TEST_FROM
    for cell in range(5):
        y = data.sig.values[cell, late]
        yp = predicted.prediction.values[cell, late]
        valid = np.isfinite(y) & np.isfinite(yp)
        assert valid.sum() == results.n_test.values[cell]
        assert abs(r2_score(y[valid], yp[valid]) - results.test_r2.values[cell]) < 1e-9
    # NaN exactly where an input is missing.
    inputs_ok = np.all([np.isfinite(data[v].values) for v in INPUTS], axis=0)
    assert (np.isfinite(predicted.prediction.values) == inputs_ok).all()
    assert summary.predicted == int(inputs_ok.sum())


@pytest.fixture
def sea_job(tmp_path, dask_client):
    """A 3 x 4 lat/lon grid with three sea cells (skipped), run once."""
    sea = np.zeros(12, dtype=bool)
    sea[[0, 5, 11]] = True
    synthetic(grid=(3, 4), sea=sea, steps=300).to_netcdf(tmp_path / "grid.nc")
    spec = synthetic_spec(tmp_path / "grid.nc", data__space=["lat", "lon"])
    job = write_spec(tmp_path, spec)
    api.run(job, client=dask_client)
    return job, sea


def test_grid_new_time_axis_and_transposed_dims(tmp_path, sea_job, dask_client):
    """New data of the same grid, another period and (time, lon, lat) order: the output keeps
    the new data's dims, coordinates and order; skipped cells are NaN."""
    job, sea = sea_job
    new = synthetic(grid=(3, 4), steps=50, seed=7)
    new = new.assign_coords(time=new.time + np.timedelta64(3650, "D"))
    new.transpose("time", "lon", "lat").to_netcdf(tmp_path / "new.nc")
    out = tmp_path / "sub" / "new-pred.nc"
    summary = api.predict(job, data=[tmp_path / "new.nc"], out=out, client=dask_client)
    predicted = xr.open_dataset(out)
    assert predicted.prediction.dims == ("time", "lon", "lat")
    assert dict(predicted.sizes) == {"time": 50, "lon": 4, "lat": 3}
    np.testing.assert_array_equal(predicted.time.values, new.time.values)
    values = predicted.prediction.transpose("lat", "lon", "time").values.reshape(12, 50)
    assert np.isnan(values[sea]).all()
    assert np.isfinite(values[~sea]).all()
    assert summary.partitions == 9

    # Each cell's values are its own model's predictions.
    model = api.load_model(api.load_spec(job), 1)
    x = np.stack(
        [
            new[v].transpose("lat", "lon", "time").values.reshape(12, 50)[1]
            for v in ("x1", "x2", "x3")
        ],
        axis=-1,
    )
    np.testing.assert_allclose(values[1], model.predict(x.astype(float)), rtol=1e-12)

    # The lazy DataArray gives the same values as the file.
    lazy = api.prediction(job, data=tmp_path / "new.nc")
    assert lazy.chunks is not None
    np.testing.assert_array_equal(
        lazy.compute(scheduler="sync").transpose(*predicted.prediction.dims).values,
        predicted.prediction.values,
    )


def test_group_partitions_apply_the_group_model_to_each_cell(tmp_path, dask_client):
    ds = synthetic(cells=6, steps=200)
    ds["region"] = ("space", np.array([2, 1, 2, 1, 3, 2]))
    ds.to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", partition__by="region"))
    api.run(job, client=dask_client)
    # New data without the group variable: the training data's groups apply.
    ds.drop_vars("region").to_netcdf(tmp_path / "new.nc")
    api.predict(job, data=tmp_path / "new.nc", out=tmp_path / "pred.nc", client=dask_client)
    predicted = xr.open_dataset(tmp_path / "pred.nc").prediction.values
    spec = api.load_spec(job)
    for group, cells in enumerate([[1, 3], [0, 2, 5], [4]]):
        model = api.load_model(spec, group)
        for cell in cells:
            x = np.stack([ds[v].values[cell] for v in ("x1", "x2", "x3")], axis=-1)
            valid = np.isfinite(x).all(axis=-1)
            np.testing.assert_allclose(
                predicted[cell, valid], model.predict(x[valid].astype(float))
            )

    # New data with its own region variable: a cell moved to region 3 takes region 3's model.
    moved = ds.copy()
    moved["region"] = ("space", np.array([3, 1, 2, 1, 3, 7]))
    moved.to_netcdf(tmp_path / "moved.nc")
    api.predict(job, data=tmp_path / "moved.nc", out=tmp_path / "moved-pred.nc", client=dask_client)
    again = xr.open_dataset(tmp_path / "moved-pred.nc").prediction.values
    x0 = np.stack([ds[v].values[0] for v in ("x1", "x2", "x3")], axis=-1)
    valid = np.isfinite(x0).all(axis=-1)
    np.testing.assert_allclose(
        again[0, valid], api.load_model(spec, 2).predict(x0[valid].astype(float))
    )
    assert np.isnan(again[5]).all(), "region 7 has no model"


def test_cli_predict_json_and_errors(tmp_path, capsys, dask_client):
    synthetic(cells=4, steps=120).to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))

    before = hpctune(capsys, "predict", job, "-o", tmp_path / "p.nc")
    assert before.code == 2 and "no results" in before.err and "Traceback" not in before.err

    api.run(job, client=dask_client)
    synthetic(cells=5, steps=120).to_netcdf(tmp_path / "other.nc")
    other = hpctune(
        capsys, "predict", job, "--data", tmp_path / "other.nc", "-o", tmp_path / "p.nc"
    )
    assert other.code == 2
    assert "the new data has 5 cells, the results 4" in other.err
    missing = synthetic(cells=4, steps=10).drop_vars("x2")
    missing.to_netcdf(tmp_path / "missing.nc")
    bad = hpctune(
        capsys, "predict", job, "--data", tmp_path / "missing.nc", "-o", tmp_path / "p.nc"
    )
    assert bad.code == 2 and "data.inputs: no variable 'x2' in the new data" in bad.err
    assert not (tmp_path / "p.nc").exists()

    # The command starts the job's own (local) cluster, as a user's shell would.
    done = hpctune(
        capsys, "predict", job, "-o", tmp_path / "p.nc", "--json", "--set", "cluster.workers=1"
    )
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["variable"] == "prediction"
    assert report["dims"] == {"space": 4, "time": 120}
    assert report["output"] == str(tmp_path / "p.nc")
    assert (tmp_path / "p.nc").exists()
    assert not list(tmp_path.glob(".p.nc.*")), "no temporary file is left behind"
