"""``report``: figures and index.html from results.nc, for every layout of cells."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr
from helpers import synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from matplotlib.image import imread

import hpctune as api
from hpctune.reporting.layout import cell_layout
from hpctune.reporting.page import page_context, render_index


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dask_client):
    """A run of eight cells along a coast, with a test period and one all-NaN (sea) cell."""
    folder = tmp_path_factory.mktemp("report")
    sea = np.zeros(8, dtype=bool)
    sea[3] = True
    ds = synthetic(cells=8, steps=400, sea=sea)
    ds = ds.assign_coords(
        latitude=("space", np.array([43.1, 43.5, 44.2, 45.0, 45.8, 46.3, 47.2, 48.0])),
        longitude=("space", np.array([-1.5, -1.2, -1.3, -1.1, -1.6, -2.1, -2.5, -4.2])),
    )
    ds.to_netcdf(folder / "coast.nc")
    spec = synthetic_spec(
        folder / "coast.nc",
        data__test={"from": "2010-05-01"},
        search__params={"ridge__alpha": [0.01, 0.1, 1.0, 10.0], "ridge__fit_intercept": [True]},
    )
    job = write_spec(folder, spec)
    api.run(job, client=dask_client)
    return job


def png_size(path):
    image = imread(path)
    return image.shape[1], image.shape[0]


def test_report_writes_every_figure_and_the_page(finished):
    report = api.report(finished)
    folder = report.folder
    assert folder == api.load_spec(finished).output_dir / "report"
    names = {f.name for f in report.figures}
    expected = {
        "map_best_score.png",
        "map_test_r2.png",
        "map_test_rmse.png",
        "map_test_mae.png",
        "map_test_pearson.png",
        "map_best_ridge__alpha.png",
        "map_status.png",
        "params.png",
        "score_vs_n_train.png",
        "fit_seconds.png",
        "score_surface.png",
    }
    assert names == expected
    for name in names:
        width, height = png_size(folder / name)
        assert width >= 300 and height >= 250, name
    page = report.index.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(names)
    for text in ("synthetic", "scikit-learn", "dask-ml", "fingerprint", "ridge__alpha", "0.01"):
        assert text in page
    assert "7 ok" in page and "1 skipped" in page
    assert "valid training rows, fewer than search.min_samples" in page
    # A second report replaces the first as a whole.
    (folder / "stale.png").write_bytes(b"old")
    again = api.report(finished)
    assert not (again.folder / "stale.png").exists()


def test_maps_place_the_cells_at_their_coordinates(finished):
    job = api.load_spec(finished)
    results = api.results(job)
    layout = cell_layout(job, results, {})
    assert layout.geographic and layout.grid_shape is None
    np.testing.assert_array_equal(layout.x, results.longitude.values)
    np.testing.assert_array_equal(layout.y, results.latitude.values)
    assert layout.x_label.startswith("longitude") and layout.y_label.startswith("latitude")


def test_lat_lon_grid_is_drawn_as_an_image(tmp_path, dask_client):
    sea = np.zeros(12, dtype=bool)
    sea[[0, 11]] = True
    synthetic(grid=(3, 4), sea=sea, steps=200).to_netcdf(tmp_path / "grid.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "grid.nc", data__space=["lat", "lon"]))
    api.run(job, client=dask_client)
    spec = api.load_spec(job)
    manifest = json.loads((spec.output_dir / "hpctune.json").read_text())
    layout = cell_layout(spec, api.results(spec), manifest)
    assert layout.grid_shape == (3, 4)
    report = api.report(job)
    assert (report.folder / "map_best_score.png").exists()
    assert (report.folder / "map_status.png").exists()


def test_groups_colour_each_of_their_cells(tmp_path, dask_client):
    ds = synthetic(cells=6, steps=200)
    ds["region"] = ("space", np.array([2, 1, 2, 1, 3, 2]))
    ds.to_netcdf(tmp_path / "cells.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc", partition__by="region"))
    api.run(job, client=dask_client)
    spec = api.load_spec(job)
    layout = cell_layout(spec, api.results(spec), {})
    assert list(layout.row_of_cell) == [1, 0, 1, 0, 2, 1]
    np.testing.assert_array_equal(layout.y, ds.latitude.values)
    report = api.report(job)
    assert "Each cell has the value of its group." in report.index.read_text()


def test_cells_without_coordinates_are_drawn_by_index(tmp_path, dask_client):
    ds = synthetic(cells=5, steps=200).drop_vars(["latitude", "longitude"])
    ds.to_netcdf(tmp_path / "plain.nc")
    job = write_spec(tmp_path, synthetic_spec(tmp_path / "plain.nc"))
    api.run(job, client=dask_client)
    spec = api.load_spec(job)
    layout = cell_layout(spec, api.results(spec), {})
    assert layout.x is None
    report = api.report(job)
    assert "against the cell index" in report.index.read_text()
    assert "map_status.png" not in {f.name for f in report.figures}, "every cell is ok"


def test_page_escapes_what_it_shows(finished):
    job = api.load_spec(finished)
    results = api.results(job)
    results["status"].values[0] = "failed"
    results["reason"].values[0] = "ValueError: <script>alert(1)</script>"
    context = page_context(
        job, results, {"versions": {"x<y": "1"}}, [], [{"job_id": "<b>1</b>"}], generated="now"
    )
    page = render_index(context)
    assert render_index(context) == page, "the page is a pure function of its context"
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x&lt;y" in page and "&lt;b&gt;1&lt;/b&gt;" in page


def test_cli_report(tmp_path, capsys, finished):
    made = hpctune(capsys, "report", finished, "--json", "-o", tmp_path / "elsewhere")
    assert made.code == 0, made.err
    data = json.loads(made.out)
    assert data["index"] == str(tmp_path / "elsewhere" / "index.html")
    assert len(data["figures"]) == 11  # score_surface.png included

    synthetic(cells=2).to_netcdf(tmp_path / "cells.nc")
    fresh = write_spec(tmp_path, synthetic_spec(tmp_path / "cells.nc"))
    before = hpctune(capsys, "report", fresh)
    assert before.code == 2
    assert "no results yet" in before.err and "Traceback" not in before.err


def test_results_nc_is_not_changed_by_a_report(finished):
    path = api.load_spec(finished).output_dir / "results.nc"
    before = path.read_bytes()
    api.report(finished)
    assert path.read_bytes() == before
    with xr.open_dataset(path) as ds:
        assert "status" in ds
