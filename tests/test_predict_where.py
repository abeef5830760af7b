"""``hpctune predict --where``: only the cells of a mask variable or a coordinate box are
predicted, every other cell NaN; the blocks with no such cell are not read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers import real_data_spec, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api

BOX = {"latitude": [45.0, 54.0], "longitude": [6.0, 13.0]}


@pytest.fixture
def real_job(tmp_path, real_data):
    spec = real_data_spec(
        real_data,
        search__params={"ridge__alpha": [1.0]},
        cluster__processes=False,
        cluster__workers=2,
    )
    job = write_spec(tmp_path, spec)
    api.run(job)
    with xr.open_dataset(real_data) as ds:
        lat, lon = ds.latitude.values, ds.longitude.values
    inside = (lat >= 45) & (lat <= 54) & (lon >= 6) & (lon <= 13)
    assert 0 < inside.sum() < inside.size  # the box cuts the five cells
    return job, inside


def test_a_box_predicts_its_cells_as_a_full_prediction_does_and_nan_elsewhere(
    real_job, tmp_path, capsys
):
    job, inside = real_job
    everything = api.prediction(job).compute().values
    out = tmp_path / "box.nc"
    shown = hpctune(
        capsys,
        "predict",
        job,
        "-o",
        out,
        "--where",
        "{latitude: [45, 54], longitude: [6, 13]}",
        "--json",
    )
    assert shown.code == 0, shown.err
    summary = json.loads(shown.out)
    assert summary["where"] == {"cells": int(inside.sum()), "of": 5}
    predicted = xr.open_dataset(out).prediction.values
    np.testing.assert_array_equal(predicted[inside], everything[inside])
    assert np.isnan(predicted[~inside]).all()
    assert summary["predicted"] == int(np.isfinite(everything[inside]).sum())
    assert summary["predicted"] + summary["missing"] == predicted.size
    lazy = api.prediction(job, where=BOX).compute().values  # the API: a mapping
    np.testing.assert_array_equal(lazy, predicted)


def test_a_mask_in_a_file_of_its_own_selects_the_cells(real_job, real_data, tmp_path, dask_client):
    job, _ = real_job
    keep = np.array([1, 0, 0, 1, 0], dtype="int8")
    xr.Dataset({"keep": ("space", keep)}).to_netcdf(tmp_path / "mask.nc")
    out = tmp_path / "masked.nc"
    data = [real_data, tmp_path / "mask.nc"]
    summary = api.predict(job, data=data, out=out, where="keep", client=dask_client)
    assert "from 5 models on 2 of 5 cells, " in summary.line()
    plain = api.predict(job, data=data, out=tmp_path / "all.nc", client=dask_client)
    assert plain.where is None and " on " not in plain.line().split(" -> ")[0]
    predicted = xr.open_dataset(out).prediction.values
    assert np.isfinite(predicted[keep == 1]).any(axis=1).all()
    assert np.isnan(predicted[keep == 0]).all()


def test_a_region_model_predicts_only_the_selected_cells_of_its_region(tmp_path, dask_client):
    ds = synthetic(grid=(3, 4), steps=120)
    ds["region"] = (("lat", "lon"), np.array([[1, 1, 2, 2]] * 3))
    ds.to_netcdf(tmp_path / "grid.nc")
    spec = synthetic_spec(
        tmp_path / "grid.nc",
        data__space=["lat", "lon"],
        partition__by="region",
        cluster__processes=False,
        cluster__workers=2,
    )
    job = write_spec(tmp_path, spec)
    api.run(job)
    everything = api.prediction(job).compute()
    where = {"lat": [49.75, 50.0]}
    summary = api.predict(job, out=tmp_path / "row.nc", where=where, client=dask_client)
    assert summary.where == (4, 12)
    assert summary.blocks == 1  # the rows of lat 49.5 and 49 hold no selected cell: not read
    predicted = xr.open_dataset(tmp_path / "row.nc").prediction
    selected = predicted.lat.values >= 49.75
    np.testing.assert_array_equal(
        predicted.values[selected], everything.values[selected]
    )  # both regions' models, on their cells of the first row
    assert np.isfinite(predicted.values[selected]).all()
    assert np.isnan(predicted.values[~selected]).all()


REFUSED = {
    "no such variable": ("nomask", "--where: no variable 'nomask' in the data"),
    "a mask along time": ("x1", "--where: variable 'x1' has dims (lat, lon, time)"),
    "an unknown coordinate": (
        "{latitude: [40, 50]}",
        "--where.latitude: no coordinate 'latitude' along the space dims",
    ),
    "a box holding no cell": ("{lat: [10, 20]}", "--where: selects none of the 12 cells"),
    "a box upside down": ("{lat: [50, 40]}", "--where: lat: low 50 is above high 40"),
    "a box of text": ("{lat: [a, b]}", "--where: lat: give [low, high]"),
    "unreadable text": ("{lat: [40, 50}", "--where: cannot read"),
}


@pytest.fixture(scope="module")
def grid_job(tmp_path_factory):
    folder = tmp_path_factory.mktemp("where")
    synthetic(grid=(3, 4), steps=60).to_netcdf(folder / "grid.nc")
    spec = synthetic_spec(
        folder / "grid.nc",
        data__space=["lat", "lon"],
        search__params={"ridge__alpha": [1.0]},
        cluster__processes=False,
        cluster__workers=2,
        output=str(folder / "out"),
    )
    job = write_spec(folder, spec)
    api.run(job)
    return job


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_where_exits_2_naming_it_and_writes_nothing(case, grid_job, tmp_path, capsys):
    where, expected = REFUSED[case]
    shown = hpctune(capsys, "predict", grid_job, "-o", tmp_path / "p.nc", "--where", where)
    assert shown.code == 2, shown
    lines = shown.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpctune: error: {expected}"), lines
    assert not list(tmp_path.iterdir())
