"""``data.where``: the cells trained, from a mask variable or a box over coordinates; cells
outside keep their place in results.nc, ``skipped`` with the reason ``outside data.where``."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.data.where import where_mask
from hpctune.output.grid import rows
from hpctune.reporting.page import page_context, render_index
from hpctune.spec import from_mapping

RIDGE = ["sklearn.preprocessing.StandardScaler", "sklearn.linear_model.Ridge"]


def test_a_box_trains_exactly_the_real_cells_inside_it(real_data, tmp_path, capsys):
    box = {"latitude": [45.0, 54.0], "longitude": [6.0, 13.0]}
    spec = {
        "name": "box",
        "data": {"paths": str(real_data), "inputs": INPUTS, "target": "sig", "where": box},
        "search": {"estimator": RIDGE, "params": {"ridge__alpha": [1.0]}},
        "cluster": {"workers": 2, "processes": False},
        "output": str(tmp_path / "out"),
    }
    ds = xr.open_dataset(real_data)
    lat, lon = ds.latitude.values, ds.longitude.values
    inside = (lat >= 45) & (lat <= 54) & (lon >= 6) & (lon <= 13)
    assert 0 < inside.sum() < inside.size  # the box cuts the five cells
    path = write_spec(tmp_path, spec)
    checked = hpctune(capsys, "validate", path)
    assert checked.code == 0, checked.err
    assert f"5 (by cell), {int((~inside).sum())} outside data.where" in checked.out
    results = api.run(path).results
    assert list(results.status.values == "ok") == list(inside), list(results.reason.values)
    assert set(results.reason.values[~inside]) == {"outside data.where"}
    assert (results.n_train.values[~inside] == 0).all()
    assert np.isnan(results.best_score.values[~inside]).all()
    np.testing.assert_array_equal(results.latitude.values, lat)  # every cell keeps its row


def grid_with_mask(folder, mask):
    ds = synthetic(grid=(3, 4))
    ds["land"] = (("lat", "lon"), mask)
    ds.to_netcdf(folder / "grid.nc")
    return ds


def test_a_mask_variable_selects_its_cells_of_a_stacked_grid(tmp_path):
    mask = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]], dtype="int8")
    ds = grid_with_mask(tmp_path, mask)
    spec = synthetic_spec(
        tmp_path / "grid.nc",
        data__space=["lat", "lon"],
        data__where="land",
        cluster__processes=False,
        cluster__workers=2,
    )
    results = rows(api.run(write_spec(tmp_path, spec)).results)  # (lat, lon) as rows
    inside = mask.reshape(-1) == 1
    assert list(np.flatnonzero(results.status.values == "ok")) == list(np.flatnonzero(inside))
    assert set(results.reason.values[~inside]) == {"outside data.where"}
    valid = np.isfinite(ds.y.values).sum(axis=-1).reshape(-1)
    assert list(results.n_train.values) == list(np.where(inside, valid, 0))
    summary = api.run(write_spec(tmp_path, spec))  # resumed: nothing to compute again
    assert summary.resumed == 12 and summary.skipped == int((~inside).sum())


def test_a_region_model_pools_only_its_cells_inside(tmp_path):
    ds = synthetic(cells=6)
    ds["region"] = ("space", np.array([1, 1, 2, 2, 3, 3]))
    ds["keep"] = ("space", np.array([True, False, True, True, False, False]))
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(
        tmp_path / "cells.nc",
        partition__by="region",
        data__where="keep",
        cluster__processes=False,
        cluster__workers=2,
    )
    path = write_spec(tmp_path, spec)
    results = api.run(path).results
    assert list(results.partition.values) == [1, 2, 3]  # region 3 keeps its row
    assert list(results.n_cells.values) == [1, 2, 0]
    assert list(results.status.values) == ["ok", "ok", "skipped"]
    assert results.reason.values[2] == "outside data.where"
    valid = np.isfinite(ds.y.values).sum(axis=1)
    assert list(results.n_train.values) == [valid[0], valid[2] + valid[3], 0]
    page = render_index(page_context(api.load_spec(path), results, {}, [], [], generated="now"))
    assert "cells where keep" in page


def test_a_mask_of_floats_with_nan_and_of_booleans():
    base = synthetic_spec("cells.nc")
    job = from_mapping({**base, "data": {**base["data"], "where": "mask"}})
    ds = synthetic(cells=4)
    ds["mask"] = ("space", np.array([1.0, np.nan, 0.0, 1.0]))
    assert list(where_mask(job.data, ds)) == [True, False, False, True]
    ds["mask"] = ("space", np.array([False, True, True, False]))
    assert list(where_mask(job.data, ds)) == [False, True, True, False]
    assert where_mask(from_mapping(base).data, ds) is None


@pytest.fixture
def folder(tmp_path):
    grid_with_mask(tmp_path, np.array([[0, 1, 2, 0], [0, 1, 0, 0], [1, 0, 0, 1]], dtype="int8"))
    xr.open_dataset(tmp_path / "grid.nc").assign(
        none=(("lat", "lon"), np.zeros((3, 4), dtype=bool))
    ).to_netcdf(tmp_path / "grid2.nc")
    return tmp_path


REFUSED = {
    "no such variable": ("nomask", "data.where: no variable 'nomask' in the data"),
    "a variable along time": (
        "x1",
        "data.where: variable 'x1' has dims (lat, lon, time); expected the space dims (lat, lon)",
    ),
    "values other than 0 and 1": (
        "land",
        "data.where: variable 'land' holds values other than 0 and 1 (e.g. 2)",
    ),
    "a mask selecting no cell": ("none", "data.where: selects none of the 12 cells of the data"),
    "an unknown coordinate": (
        {"latitude": [40, 50]},
        "data.where.latitude: no coordinate 'latitude' along the space dims; coordinates: lat, lon",
    ),
    "a box holding no cell": (
        {"lat": [10, 20]},
        "data.where: selects none of the 12 cells of the data",
    ),
    "a box upside down": ({"lat": [50, 40]}, "data.where: lat: low 50 is above high 40"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_where_exits_2_with_one_line(case, folder, capsys):
    where, expected = REFUSED[case]
    spec = synthetic_spec(folder / "grid2.nc", data__space=["lat", "lon"], data__where=where)
    path = write_spec(folder, spec)
    before = sorted(folder.rglob("*"))
    for command in ("validate", "run"):
        result = hpctune(capsys, command, path)
        assert result.code == 2, (case, command, result)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"hpctune: error: {expected}"), lines
    assert sorted(folder.rglob("*")) == before, "a refused spec wrote files"


def test_an_unset_where_leaves_the_fingerprint_of_existing_specs():
    base = synthetic_spec("cells.nc")
    assert "where" not in from_mapping(base).result_defining()["data"]
    box = from_mapping({**base, "data": {**base["data"], "where": {"lat": [40, 50]}}})
    assert box.data.where == {"lat": [40.0, 50.0]}
    assert from_mapping(box.to_dict()).fingerprint() == box.fingerprint()


def test_a_slice_wholly_outside_records_its_cells_and_starts_no_cluster(tmp_path, monkeypatch):
    from hpctune.execution import driver

    started = []
    monkeypatch.setattr(driver.ClusterStart, "begin", lambda self: started.append(self))
    monkeypatch.setattr(driver.ClusterStart, "handle", lambda self: started.append(self))
    mask = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1]], dtype="int8")
    grid_with_mask(tmp_path, mask)
    spec = synthetic_spec(tmp_path / "grid.nc", data__space=["lat", "lon"], data__where="land")
    summary = api.run(write_spec(tmp_path, spec), slice="0/2")  # cells 0..5: all outside
    assert summary.skipped == 6 and summary.ok == 0
    assert not started, "a cluster was started for partitions outside data.where"
