"""``hpctune init``: a starter spec from a data file's metadata validates and runs as written
(once a target is chosen), on the real data and on a lat/lon grid; refusals write nothing."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers import REAL_DATA, synthetic
from helpers_cli import hpctune

import hpctune as api

REAL_INPUTS = ["slop", "curv", "TG1", "TG2", "TG3", "WG1", "WG2", "WG3", "BIOMA1", "BIOMA2"]
EXAMPLE = REAL_DATA.parents[1] / "jobs" / "example.yaml"
SMALL = ["--set", "search.params={svr__C: [1], svr__gamma: [scale]}", "--set", "search.cv.splits=2"]
"""Overrides that make the search one candidate, two folds (a short run)."""
RIDGE = [
    "search.estimator=[sklearn.preprocessing.StandardScaler, sklearn.linear_model.Ridge]",
    "search.params={ridge__alpha: [1.0]}",
    "search.cv.splits=2",
]
"""Overrides that make a search on the real data's 6800 training steps per cell a short one:
the starter spec's data section (dims, inputs, target, test period) is what runs."""


def grid_data(tmp_path, **changes):
    """A 3 x 4 lat/lon grid of 120 12-hourly steps (inputs x1..x3, target y) with a static
    elevation and an integer region, written to NetCDF."""
    ds = synthetic(grid=(3, 4), steps=120, **changes)
    ds["elevation"] = (("lat", "lon"), np.linspace(0, 500, 12).reshape(3, 4))
    ds["region"] = (("lat", "lon"), np.arange(12).reshape(3, 4) % 2)
    path = tmp_path / "grid.nc"
    ds.to_netcdf(path)
    return path


def validated(capsys, job, *more):
    shown = hpctune(capsys, "validate", job, "--json", *more)
    assert shown.code == 0, shown.err
    return json.loads(shown.out)


def test_init_on_the_real_data_validates_and_runs(
    tmp_path, capsys, real_data, dask_client, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # DATA given relative to here: written relative to the spec
    job = tmp_path / "jobs" / "job.yaml"
    shown = hpctune(capsys, "init", "data/ascat_isba_5cells.nc", "--target", "sig", "-o", job)
    assert shown.code == 0, shown.err
    assert shown.out.splitlines() == [
        f"wrote {job}: space=5, 8506 time steps, test from 2018-04-17, 10 inputs, target sig",
        f"next: hpctune validate {job} && hpctune run {job}",
    ]
    spec = yaml.safe_load(job.read_text())
    assert spec["data"]["paths"] == "../data/ascat_isba_5cells.nc"  # relative to the spec
    assert spec["data"]["space"] == "space" and spec["data"]["time"] == "time"
    assert spec["data"]["inputs"] == REAL_INPUTS
    assert spec["data"]["target"] == "sig"
    assert spec["search"] == yaml.safe_load(EXAMPLE.read_text())["search"]
    report = validated(capsys, job)
    times = xr.open_dataset(REAL_DATA).time.values
    assert report["partitions"]["count"] == 5
    test_steps = report["partitions"]["test_steps"]
    assert test_steps == int((times >= np.datetime64("2018-04-17")).sum())
    assert 0.19 < test_steps / times.size < 0.21
    summary = api.run(job, RIDGE, client=dask_client)
    assert summary.ok == 5 and summary.exit_code == 0
    assert np.isfinite(summary.results.test_r2.values).all()


def test_init_on_a_lat_lon_grid_stacks_lat_and_lon(tmp_path, capsys, dask_client):
    data = grid_data(tmp_path)
    shown = hpctune(capsys, "init", data, "--target", "y", "-o", tmp_path / "job.yaml", "--json")
    assert shown.code == 0, shown.err
    written = json.loads(shown.out)
    assert written["space"] == {"lat": 3, "lon": 4}
    assert written["inputs"] == ["x1", "x2", "x3", "elevation"]  # elevation: static
    text = (tmp_path / "job.yaml").read_text()
    spec = yaml.safe_load(text)
    assert spec["data"]["space"] == ["lat", "lon"]
    assert spec["data"]["test"] == {"from": "2010-02-18"}  # step 96 of 120: the last 20%
    assert spec["cluster"] == {"mode": "local"}
    assert "static (no time dim, broadcast): elevation" in text
    assert "here: region" in text  # a partition.by candidate
    report = validated(capsys, tmp_path / "job.yaml")
    assert report["data"]["space"] == {"lat": 3, "lon": 4}
    assert report["partitions"]["count"] == 12 and report["partitions"]["test_steps"] == 24
    summary = api.run(tmp_path / "job.yaml", SMALL[1::2], client=dask_client)
    assert summary.ok == 12 and summary.exit_code == 0


@pytest.mark.full
def test_a_user_runs_the_starter_spec_of_a_grid_as_written(tmp_path, capsys):
    """init, validate and run as a user types them: the search of jobs/example.yaml (6
    candidates, 3 folds) on a local cluster of the spec's own."""
    data = grid_data(tmp_path)
    job = tmp_path / "job.yaml"
    assert hpctune(capsys, "init", data, "--target", "y", "-o", job).code == 0
    assert hpctune(capsys, "validate", job).code == 0
    shown = hpctune(capsys, "run", job, "--json")
    assert shown.code == 0, shown.err
    summary = json.loads(shown.out)
    assert summary["ok"] == 12 and summary["failed"] == 0


def test_without_a_target_the_comment_lists_the_candidates_and_one_edit_makes_it_valid(
    tmp_path, capsys
):
    data = grid_data(tmp_path)
    job = tmp_path / "job.yaml"
    shown = hpctune(capsys, "init", data, "-o", job)
    assert shown.code == 0, shown.err
    assert "choose data.target" in shown.out and "x1, x2, x3, y" in shown.out
    text = job.read_text()
    assert "CHOOSE one of: x1, x2, x3, y" in text
    refused = hpctune(capsys, "validate", job)
    assert refused.code == 2 and refused.err.startswith("hpctune: error: data.target:")
    # the user's edit: the target chosen, and deleted from the inputs
    text = text.replace("target: null", "target: y").replace(", y, elevation]", ", elevation]")
    job.write_text(text)
    assert validated(capsys, job)["partitions"]["count"] == 12


def test_set_data_target_is_the_same_as_target(tmp_path, capsys):
    data = grid_data(tmp_path)
    for args, name in ((["--target", "y"], "a.yaml"), (["--set", "data.target=y"], "b.yaml")):
        assert hpctune(capsys, "init", data, *args, "-o", tmp_path / name).code == 0
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()


def test_a_time_axis_without_dates_gets_no_test_period(tmp_path, capsys):
    ds = synthetic(grid=(2, 2), steps=120).drop_vars("time")
    ds.to_netcdf(tmp_path / "steps.nc")
    job = tmp_path / "job.yaml"
    assert hpctune(capsys, "init", tmp_path / "steps.nc", "--target", "y", "-o", job).code == 0
    text = job.read_text()
    assert "test" not in yaml.safe_load(text)["data"]
    assert "No test period" in text
    assert validated(capsys, job)["partitions"]["test_steps"] == 0


def test_an_existing_file_is_kept_unless_force(tmp_path, capsys):
    data = grid_data(tmp_path)
    job = tmp_path / "job.yaml"
    job.write_text("mine\n")
    refused = hpctune(capsys, "init", data, "--target", "y", "-o", job)
    assert refused.code == 2 and refused.out == ""
    assert refused.err == f"hpctune: error: -o: {job} exists; --force overwrites it\n"
    assert job.read_text() == "mine\n"
    assert hpctune(capsys, "init", data, "--target", "y", "-o", job, "--force").code == 0
    assert yaml.safe_load(job.read_text())["data"]["target"] == "y"


@pytest.mark.parametrize(
    ("make", "args", "starts"),
    [
        (lambda p: p.write_text("not netcdf\n"), [], "hpctune: error: DATA: cannot open bad.nc"),
        (lambda p: None, [], "hpctune: error: DATA: no such file"),
        (None, ["--target", "z"], "hpctune: error: --target: no numeric variable 'z'"),
        (None, ["--target", "region"], "hpctune: error: --target: no numeric variable 'region'"),
        (None, ["--set", "search.cv.splits=1"], "hpctune: error: search.cv.splits:"),
    ],
)
def test_refusals_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, make, args, starts):
    data = tmp_path / "bad.nc"
    if make is None:
        data = grid_data(tmp_path)
    else:
        make(data)
    before = set(tmp_path.iterdir())
    shown = hpctune(capsys, "init", data, *args, "-o", tmp_path / "out" / "job.yaml")
    assert shown.code == 2
    assert shown.err.startswith(starts) and shown.err.count("\n") == 1, shown.err
    assert set(tmp_path.iterdir()) == before


def test_several_files_are_read_as_a_run_reads_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = synthetic(grid=(2, 2), steps=120)
    for year, part in ((1, ds.isel(time=slice(0, 60))), (2, ds.isel(time=slice(60, None)))):
        part.to_netcdf(tmp_path / f"part{year}.nc")
    job = tmp_path / "job.yaml"
    shown = hpctune(capsys, "init", "part*.nc", "--target", "y", "-o", job)
    assert shown.code == 0, shown.err
    assert yaml.safe_load(job.read_text())["data"]["paths"] == "part*.nc"
    report = validated(capsys, job)
    assert report["data"]["files"] == 2 and report["data"]["time"]["steps"] == 120


@pytest.mark.skipif(
    importlib.util.find_spec("zarr") is None,
    reason="zarr is not installed (pip install 'hpctune[zarr]')",
)
def test_a_zarr_store_is_read_as_a_run_reads_it(tmp_path, capsys):
    synthetic(grid=(3, 4), steps=120).to_zarr(tmp_path / "grid.zarr", zarr_format=2)
    job = tmp_path / "job.yaml"
    assert hpctune(capsys, "init", tmp_path / "grid.zarr", "--target", "y", "-o", job).code == 0
    assert yaml.safe_load(job.read_text())["data"]["space"] == ["lat", "lon"]
    assert validated(capsys, job)["partitions"]["count"] == 12
