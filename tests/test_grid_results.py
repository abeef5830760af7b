"""results.nc on the input's grid: a stacked ``data.space`` gives variables on (lat, lon)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.execution.prepare import prepare
from hpctune.output.dataset import results_dataset
from hpctune.output.folder import Store
from hpctune.output.grid import grid_dims, on_grid, rows
from hpctune.output.lookup import from_results
from hpctune.search.metrics import test_metric_names

SEA = np.zeros(12, dtype=bool)
SEA[[0, 5, 11]] = True


def grid_spec(folder, **changes):
    synthetic(grid=(3, 4), sea=SEA, steps=200).to_netcdf(folder / "grid.nc")
    spec = synthetic_spec(
        folder / "grid.nc",
        data__space=["lat", "lon"],
        cluster__processes=False,
        cluster__workers=2,
        **changes,
    )
    return write_spec(folder, spec)


@pytest.fixture(scope="module")
def grid_job(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    job = grid_spec(folder)
    api.run(job)
    return job


def flat_results(job):
    """results.nc as one row per cell, built from the records as before the grid layout."""
    spec = api.load_spec(job)
    prepared = prepare(spec)
    records = Store(spec.output_dir).records()
    metrics = test_metric_names(spec.search)
    return results_dataset(spec, prepared.plan, prepared.coords, records, metrics)


def test_a_stacked_grid_results_nc_is_laid_out_on_lat_lon(grid_job):
    spec = api.load_spec(grid_job)
    with xr.open_dataset(spec.output_dir / "results.nc") as ds:
        ds = ds.load()
    data = xr.open_dataset(spec.data.paths[0])
    assert dict(ds.sizes) == {"lat": 3, "lon": 4}
    assert ds.best_score.dims == ("lat", "lon") and ds.status.dims == ("lat", "lon")
    np.testing.assert_array_equal(ds.lat.values, data.lat.values)  # 50.0, 49.5, 49.0
    np.testing.assert_array_equal(ds.lon.values, data.lon.values)
    assert ds.lat.attrs == data.lat.attrs
    sea = SEA.reshape(3, 4)
    assert set(ds.status.values[sea]) == {"skipped"} and set(ds.status.values[~sea]) == {"ok"}
    assert np.isnan(ds.best_score.values[sea]).all()
    assert np.isfinite(ds.best_score.values[~sea]).all()
    assert str(ds.model_file.values[0, 1]).endswith(".pack") and ds.model_file.values[0, 0] == ""
    assert ds.model_size.values[0, 1] > 0 and ds.model_size.values[0, 0] == 0
    # a cell's model is found in results.nc on the grid (partition 1: row 0, column 1)
    found = from_results(spec.output_dir / "results.nc", 1, spec.fingerprint())
    assert found is not None and found.relative == ds.model_file.values[0, 1]
    assert (found.offset, found.size) == (ds.model_offset.values[0, 1], ds.model_size.values[0, 1])
    assert ds.best_score.attrs["long_name"].startswith("mean cross-validated r2")

    # Every variable holds, per cell, what the one-row-per-cell layout holds.
    flat = flat_results(grid_job)
    assert flat.sizes == {"space": 12}
    for name in flat.data_vars:
        np.testing.assert_array_equal(ds[name].values.reshape(-1), flat[name].values)
    stacked = ds.stack(cell=["lat", "lon"])  # what the README tells users
    np.testing.assert_array_equal(stacked.best_score.values, flat.best_score.values)
    back = rows(ds)
    for name in ("status", "reason", "best_score", "best_ridge__alpha", "n_train", "lat", "lon"):
        np.testing.assert_array_equal(back[name].values, flat[name].values)
    assert back[name].dims == ("space",)

    # The map users draw first.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import QuadMesh

    try:
        assert isinstance(ds.best_score.plot(), QuadMesh)
    finally:
        plt.close("all")
    assert api.results(grid_job).best_score.dims == ("lat", "lon")


def test_report_status_and_predict_read_a_gridded_results_nc(grid_job, tmp_path, capsys):
    report = api.report(grid_job)
    assert (report.folder / "map_best_score.png").exists()
    assert "over the latitude/longitude grid" in report.index.read_text()

    shown = hpctune(capsys, "status", grid_job)
    assert shown.code == 0, shown.err
    assert "12 partitions: 9 ok, 3 skipped, 0 failed, 0 pending" in shown.out

    new = synthetic(grid=(3, 4), steps=30, seed=5)
    new.to_netcdf(tmp_path / "new.nc")
    summary = api.predict(grid_job, data=[tmp_path / "new.nc"], out=tmp_path / "p.nc")
    assert summary.partitions == 9
    predicted = xr.open_dataset(tmp_path / "p.nc").prediction.transpose("lat", "lon", "time")
    assert np.isnan(predicted.values[SEA.reshape(3, 4)]).all()


def test_merge_of_slices_writes_the_gridded_results(tmp_path, capsys):
    job = grid_spec(tmp_path)
    for index in range(2):
        assert api.run(job, slice=f"{index}/2").results is None
    merged = api.merge(job)
    assert merged.best_score.dims == ("lat", "lon")
    shown = hpctune(capsys, "merge", job)
    assert shown.code == 0, shown.err
    assert "9 ok, 3 skipped, 0 failed, 0 pending" in shown.out
    with xr.open_dataset(api.load_spec(job).output_dir / "results.nc") as ds:
        assert dict(ds.sizes) == {"lat": 3, "lon": 4}
        np.testing.assert_array_equal(ds.status.values, merged.status.values)
        assert (ds.status.values == "ok").sum() == 9


def rows_of(n, **coords):
    """A results dataset of ``n`` rows along ``space`` with ``coords`` on them."""
    return xr.Dataset(
        {"best_score": ("space", np.arange(n, dtype=float)), "status": ("space", ["ok"] * n)},
        coords={name: ("space", values) for name, values in coords.items()},
        attrs={"space_dims": "y x"},
    )


def test_a_curvilinear_coordinate_stays_2d_and_comes_back():
    lat2d = np.array([[10.0, 10.5, 11.0], [20.0, 20.5, 21.0]])
    ds = rows_of(6, y=np.repeat([0, 1], 3), x=np.tile([5, 6, 7], 2), lat=lat2d.reshape(-1))
    grid = on_grid(ds, {"y": 2, "x": 3})
    assert grid.best_score.dims == ("y", "x") and grid_dims(grid) == ("y", "x")
    assert list(grid.y.values) == [0, 1] and list(grid.x.values) == [5, 6, 7]
    assert grid.lat.dims == ("y", "x")
    np.testing.assert_array_equal(grid.lat.values, lat2d)
    back = rows(grid)
    for name in ("best_score", "status", "y", "x", "lat"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)


def test_one_space_dim_and_groups_keep_their_rows():
    ds = rows_of(4, latitude=np.arange(4.0))
    assert on_grid(ds, {"space": 4}) is ds
    assert on_grid(ds, None) is ds
    assert rows(ds) is ds
    grouped = ds.rename({"space": "partition"})
    assert rows(grouped) is grouped
    with pytest.raises(ValueError, match="do not fill"):
        on_grid(ds, {"y": 3, "x": 2})
