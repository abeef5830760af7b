"""Static inputs: a variable on the space dims alone is broadcast over time. A region model
(``partition.by``) learns from it; a cell's model keeps it as a constant column. Both equal
scikit-learn's search on the same broadcast rows of the real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from helpers import REAL_DATA, real_data_spec, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune
from sklearn import model_selection as ms
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import hpctune as api
from hpctune.data import CellReader, check_data
from hpctune.search.partition import select_rows
from hpctune.spec import from_mapping

INPUTS = ["TG1", "WG1", "BIOMA1"]
STATIC = "tg1_mean"
ALPHAS = [0.1, 10.0, 1000.0]
REGION = np.array([1, 1, 2, 2, 2])


@pytest.fixture(scope="module")
def static_file(tmp_path_factory):
    """The real data's per-cell mean of TG1 (a static input) and a region of each cell, in a
    second file beside the real data."""
    folder = tmp_path_factory.mktemp("static")
    with xr.open_dataset(REAL_DATA) as ds:
        means = ds.TG1.mean("time").values
    extra = xr.Dataset({STATIC: ("space", means), "region": ("space", REGION)})
    extra.to_netcdf(folder / "static.nc")
    return folder / "static.nc"


def run_with_static(folder, static_file, by):
    spec = real_data_spec(
        REAL_DATA,
        data__paths=[str(REAL_DATA), str(static_file)],
        data__inputs=[*INPUTS, STATIC],
        partition__by=by,
        search__params={"ridge__alpha": ALPHAS},
        cluster__processes=False,
        cluster__workers=2,
        output=str(folder / "out"),
    )
    path = write_spec(folder, spec)
    return path, api.run(path)


def broadcast_rows(cells):
    """The rows of ``cells`` as hpctune builds them: each cell's series with its static value
    repeated at every step, the cells' rows ordered by time."""
    with xr.open_dataset(REAL_DATA) as ds:
        ds = ds.load()
    static = ds.TG1.mean("time").values
    times = ds.time.values
    xs, ys = [], []
    for cell in cells:
        series = [ds[v].isel(space=cell).values for v in INPUTS]
        xs.append(np.stack([*series, np.full(times.size, static[cell])], axis=-1))
        ys.append(ds.sig.isel(space=cell).values)
    t = np.tile(times, len(cells))
    order = np.argsort(t, kind="stable")
    x = np.concatenate(xs)[order]
    y = np.concatenate(ys)[order]
    return select_rows(x, y, t[order], np.datetime64("2016-01-01"))


def sklearn_search(x, y):
    search = ms.GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        {"ridge__alpha": ALPHAS},
        cv=ms.KFold(n_splits=3),
        scoring=["r2"],
        refit="r2",
        error_score="raise",
    )
    return search.fit(x, y)


def check_against_sklearn(path, results, index, cells):
    rows = broadcast_rows(cells)
    reference = sklearn_search(rows.x_train, rows.y_train)
    row = results.isel({results.status.dims[0]: index})
    assert str(row.status.values) == "ok", str(row.reason.values)
    assert int(row.n_train) == rows.y_train.size
    assert float(row.best_ridge__alpha) == reference.best_params_["ridge__alpha"]
    assert float(row.best_score) == pytest.approx(reference.best_score_, rel=1e-9)
    model = api.load_model(path, index)
    assert model.n_features_in_ == len(INPUTS) + 1  # the static input is a column
    ours, theirs = model[-1].coef_, reference.best_estimator_[-1].coef_
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        model.predict(rows.x_test), reference.best_estimator_.predict(rows.x_test), rtol=1e-9
    )
    return ours


def test_a_region_model_learns_from_a_static_input_as_scikit_learn_does(tmp_path, static_file):
    path, summary = run_with_static(tmp_path, static_file, "region")
    results = summary.results
    assert list(results.partition.values) == [1, 2]
    for index, label in enumerate((1, 2)):
        coef = check_against_sklearn(path, results, index, np.flatnonzero(label == REGION))
        assert abs(coef[-1]) > 1e-3  # the static input varies across the region's cells
    # predict broadcasts it the same way: the pooled test-period r2 of a region is test_r2
    predicted = api.prediction(path, data=[str(REAL_DATA), str(static_file)]).compute()
    with xr.open_dataset(REAL_DATA) as ds:
        sig, times = ds.sig.values, ds.time.values
    test = times >= np.datetime64("2016-01-01")
    for index, label in enumerate((1, 2)):
        cells = label == REGION
        y, p = sig[cells][:, test].ravel(), predicted.values[cells][:, test].ravel()
        keep = np.isfinite(y) & np.isfinite(p)
        r2 = 1 - ((y[keep] - p[keep]) ** 2).sum() / ((y[keep] - y[keep].mean()) ** 2).sum()
        assert r2 == pytest.approx(float(results.test_r2.values[index]), rel=1e-9)


def test_a_cell_model_keeps_a_static_input_as_a_constant_column(tmp_path, static_file):
    path, summary = run_with_static(tmp_path, static_file, "cell")
    assert summary.ok == 5
    for cell in range(5):
        coef = check_against_sklearn(path, summary.results, cell, [cell])
        assert coef[-1] == 0.0  # scaled to 0: nothing learnt from it


def test_validate_says_which_inputs_are_static(tmp_path, static_file, capsys):
    for by, said in (
        ("cell", "constant within a cell"),
        ("region", "each region model learns from its cells"),
    ):
        spec = real_data_spec(
            REAL_DATA,
            data__paths=[str(REAL_DATA), str(static_file)],
            data__inputs=[*INPUTS, STATIC],
            partition__by=by,
        )
        path = write_spec(tmp_path, spec)
        shown = hpctune(capsys, "validate", path)
        assert shown.code == 0, shown.err
        line = next(x for x in shown.out.splitlines() if x.strip().startswith("static:"))
        assert f"static:     {STATIC} (no time dim: broadcast over time" in line and said in line
        report = json.loads(hpctune(capsys, "validate", path, "--json").out)
        assert report["data"]["static"] == [STATIC]
    plain = write_spec(tmp_path, real_data_spec(REAL_DATA), "plain.yaml")
    shown = hpctune(capsys, "validate", plain)
    assert "static:" not in shown.out
    assert json.loads(hpctune(capsys, "validate", plain, "--json").out)["data"]["static"] == []


def test_a_static_input_in_any_dim_order_reaches_every_step_of_its_cell(tmp_path):
    ds = synthetic(grid=(3, 4), steps=30)
    elevation = np.arange(12.0).reshape(3, 4) * 10
    ds["elevation"] = (("lon", "lat"), elevation.T)  # stored the other way round
    ds.to_netcdf(tmp_path / "grid.nc")
    spec = synthetic_spec(
        tmp_path / "grid.nc", data__space=["lat", "lon"], data__inputs=["x1", "elevation", "x2"]
    )
    job = from_mapping(spec)
    info = check_data(job)
    assert info.static == ("elevation",)
    cells = np.array([7, 1, 2, 11])
    block = CellReader(job.data, info).read(cells)
    assert block.x.shape == (4, 30, 3)
    expected = np.broadcast_to(elevation.reshape(-1)[cells][:, None], (4, 30))
    np.testing.assert_array_equal(block.x[:, :, 1], expected)
    np.testing.assert_array_equal(block.x[:, :, 0], ds.x1.values.reshape(12, 30)[cells])


@pytest.fixture
def folder(tmp_path):
    ds = synthetic(grid=(3, 4), steps=30)
    ds["elevation"] = (("lat", "lon"), np.ones((3, 4)))
    ds["along_lon"] = ("lon", np.ones(4))
    ds["soil"] = (("lat", "lon"), np.full((3, 4), "clay"))
    ds.to_netcdf(tmp_path / "grid.nc")
    return tmp_path


REFUSED = {
    "a static target": (
        {"data__target": "elevation"},
        "data.target: variable 'elevation' has dims (lat, lon); expected (lat, lon, time)",
    ),
    "an input on part of the space dims": (
        {"data__inputs": ["x1", "along_lon"]},
        "data.inputs: variable 'along_lon' has dims (lon); expected (lat, lon, time), "
        "or (lat, lon) for a static input",
    ),
    "a static input of text": (
        {"data__inputs": ["x1", "soil"]},
        "data.inputs: variable 'soil' has dtype <U4; it must be numeric",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_static_input_exits_2_with_one_line(case, folder, capsys):
    changes, expected = REFUSED[case]
    spec = synthetic_spec(folder / "grid.nc", data__space=["lat", "lon"], **changes)
    path = write_spec(folder, spec)
    for command in ("validate", "run"):
        shown = hpctune(capsys, command, path)
        assert shown.code == 2, (case, command, shown)
        lines = shown.err.strip().splitlines()
        assert lines == [f"hpctune: error: {expected}"], lines
    assert not (folder / "out").exists()


def test_init_offers_a_float_variable_on_the_grid_as_a_static_input(tmp_path, capsys):
    ds = synthetic(grid=(3, 4), steps=60)
    ds["elevation"] = (("lat", "lon"), np.linspace(0, 500, 12).reshape(3, 4))
    ds.to_netcdf(tmp_path / "grid.nc")
    job = tmp_path / "job.yaml"
    shown = hpctune(capsys, "init", tmp_path / "grid.nc", "--target", "y", "-o", job, "--json")
    assert shown.code == 0, shown.err
    written = json.loads(shown.out)
    assert written["inputs"] == ["x1", "x2", "x3", "elevation"]
    assert written["static"] == ["elevation"]
    text = job.read_text()
    assert "static (no time dim, broadcast): elevation" in text
    assert yaml.safe_load(text)["data"]["inputs"][-1] == "elevation"
    checked = json.loads(hpctune(capsys, "validate", job, "--json").out)
    assert checked["data"]["static"] == ["elevation"]
