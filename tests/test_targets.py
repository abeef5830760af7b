"""Several targets per partition (``data.target`` a list), on the real data's sig, slop and
curv: one model per partition predicts them all, results.nc's ``test_*`` have a ``target`` dim,
predict writes one variable per target, and the spec and data checks refuse what cannot work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from helpers import INPUTS, real_data_spec, synthetic, synthetic_spec, write_spec
from helpers_cli import hpctune

import hpctune as api
from hpctune.output.record import PartitionResult
from hpctune.search import PartitionSearch, select_rows
from hpctune.search.targets import native_multi_output
from hpctune.spec.load import load_spec

TARGETS = ["sig", "slop", "curv"]
TEST_FROM = np.datetime64("2016-01-01", "ns")


def _rows(path, cell):
    """The real data's inputs, targets and times of ``cell``, read here with xarray."""
    with xr.open_dataset(path) as ds:
        x = np.stack([ds[v].isel(space=cell).values for v in INPUTS], axis=-1)
        y = np.stack([ds[v].isel(space=cell).values for v in TARGETS], axis=-1)
        return x.astype(np.float64), y.astype(np.float64), ds.time.values


def _valid(x, y):
    return np.isfinite(x).all(axis=-1) & np.isfinite(y).all(axis=-1)


def test_a_string_target_keeps_its_spec_and_fingerprint_data():
    single = load_spec(synthetic_spec("cells.nc"), base_dir="/b")
    assert single.result_defining()["data"]["target"] == "y"
    assert single.data.targets == ["y"] and not single.data.multi_target
    several = load_spec(
        synthetic_spec("cells.nc", data__target=["y", "x3"], data__inputs=["x1", "x2"]),
        base_dir="/b",
    )
    assert several.data.targets == ["y", "x3"] and several.data.multi_target
    assert several.result_defining()["data"]["target"] == ["y", "x3"]


def test_rows_with_any_missing_target_are_dropped():
    x = np.ones((6, 2))
    y = np.arange(18, dtype=float).reshape(6, 3)
    y[1, 2] = np.nan
    y[4, 0] = np.inf
    times = np.arange(6).astype("datetime64[D]").astype("datetime64[ns]")
    rows = select_rows(x, y, times, test_start=times[3])
    assert rows.y_train.shape == (2, 3) and rows.y_test.shape == (2, 3)
    np.testing.assert_array_equal(rows.y_train[:, 0], [0.0, 6.0])
    np.testing.assert_array_equal(rows.y_test[:, 0], [9.0, 15.0])


def test_per_target_scores_survive_the_journal_record():
    result = PartitionResult(index=0, status="ok", test_scores={"r2": [0.5, float("nan"), 0.25]})
    record = json.loads(json.dumps(result.record()))
    assert record["test_scores"]["r2"] == [0.5, None, 0.25]
    back = PartitionResult.from_record(record)
    assert back.test_scores["r2"][0] == 0.5 and np.isnan(back.test_scores["r2"][1])


def test_multi_output_detection():
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    for native in (Ridge(), RandomForestRegressor(), MLPRegressor()):
        assert native_multi_output(native), native
    assert native_multi_output(make_pipeline(StandardScaler(), Ridge()))
    for wrapped in (SVR(), GradientBoostingRegressor(), make_pipeline(StandardScaler(), SVR())):
        assert not native_multi_output(wrapped), wrapped


@pytest.mark.full
def test_three_targets_test_r2_and_best_score_match_scikit_learn(tmp_path, real_data, dask_client):
    """A Ridge on sig, slop and curv: rows missing one target are dropped and counted; each
    target's test r2 is scikit-learn's r2 of the saved model on the same test rows; best_score
    is GridSearchCV's on the same training rows and folds (multi-output r2, uniform average);
    predict writes sig, slop and curv; the report draws a map per target."""
    from sklearn.base import clone
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, KFold

    with xr.open_dataset(real_data) as ds:
        data = ds.load()
    slop = data["slop"].values
    present = np.flatnonzero(np.isfinite(slop[0]))
    slop[0, present[:300]] = np.nan  # cell 0 lacks slop where sig and curv are there
    data["slop"] = (data["slop"].dims, slop, data["slop"].attrs)
    data.to_netcdf(real_data.with_name("holes.nc"))
    path = real_data.with_name("holes.nc")
    spec = real_data_spec(path, data__target=TARGETS)
    job = write_spec(tmp_path, spec)
    results = api.run(job, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 5
    assert results.test_r2.dims == ("space", "target")
    assert list(results.target.values) == TARGETS
    assert results.best_score.dims == ("space",)
    on_disk = xr.open_dataset(tmp_path / "out" / "synthetic" / "results.nc")
    assert on_disk.attrs["hpctune_multi_output"] == "native"
    assert on_disk.test_rmse.dims == ("space", "target")
    loaded = api.load_spec(job)
    for cell in range(5):
        x, y, times = _rows(path, cell)
        valid = _valid(x, y)
        train, test = valid & (times < TEST_FROM), valid & (times >= TEST_FROM)
        assert int(results.n_train[cell]) == int(train.sum())
        assert int(results.n_test[cell]) == int(test.sum())
        model = api.load_model(loaded, cell)
        predicted = model.predict(x[test])
        for j in range(3):
            expected = r2_score(y[test][:, j], predicted[:, j])
            assert float(results.test_r2[cell, j]) == pytest.approx(expected, abs=1e-9)
        grid = GridSearchCV(
            clone(model), {"ridge__alpha": [0.1, 1.0, 10.0]}, cv=KFold(3), scoring="r2"
        ).fit(x[train], y[train])
        assert float(results.best_score[cell]) == pytest.approx(grid.best_score_, abs=1e-9)
        assert float(results.best_ridge__alpha[cell]) == grid.best_params_["ridge__alpha"]
    assert int(results.n_train[0]) < int(results.n_train[1])  # the missing slop rows
    out = tmp_path / "pred.nc"
    summary = api.predict(job, out=out, client=dask_client)
    assert summary.to_dict()["variables"] == TARGETS
    with xr.open_dataset(out) as written:
        assert set(TARGETS) <= set(written.data_vars) and "prediction" not in written
        x, _, _ = _rows(path, 3)
        rows = np.isfinite(x).all(axis=-1)
        model = api.load_model(loaded, 3)
        for j, target in enumerate(TARGETS):
            np.testing.assert_allclose(
                written[target].isel(space=3).values[rows], model.predict(x[rows])[:, j]
            )
    report = api.report(job)
    maps = {f.name for f in report.figures}
    assert {f"map_test_r2_{t}.png" for t in TARGETS} <= maps


@pytest.mark.full
def test_an_svr_is_wrapped_in_multi_output_regressor(tmp_path, real_data, dask_client, capsys):
    """SVR fits one target: wrapped, with the spec's parameter names in best_* and the
    searched C reaching every target's copy."""
    from sklearn.multioutput import MultiOutputRegressor

    spec = real_data_spec(
        real_data,
        data__target=TARGETS,
        data__train={"from": "2015-01-01"},
        search__estimator=["sklearn.preprocessing.StandardScaler", "sklearn.svm.SVR"],
        search__params={"svr__C": [0.1, 1.0]},
    )
    job = write_spec(tmp_path, spec)
    checked = hpctune(capsys, "validate", job)
    assert checked.code == 0 and "wrapped in MultiOutputRegressor" in checked.out
    results = api.run(job, client=dask_client).results
    assert list(results.status.values) == ["ok"] * 5
    assert "best_svr__C" in results and results.test_r2.shape == (5, 3)
    on_disk = xr.open_dataset(tmp_path / "out" / "synthetic" / "results.nc")
    assert on_disk.attrs["hpctune_multi_output"] == "MultiOutputRegressor"
    model = api.load_model(api.load_spec(job), 0)
    assert isinstance(model, MultiOutputRegressor) and len(model.estimators_) == 3
    chosen = float(results.best_svr__C[0])
    assert [e.named_steps["svr"].C for e in model.estimators_] == [chosen] * 3


def test_per_target_metrics_equal_single_target_searches(real_data):
    """Ridge fits its targets independently: with one alpha, the three-target search's
    metrics of each target are those of a search of that target alone (same rows: the real
    data's targets are missing together)."""
    spec = real_data_spec(real_data, data__target=TARGETS, search__params={"ridge__alpha": [1.0]})
    several = PartitionSearch(load_spec(spec, base_dir="/b").search, test_start=TEST_FROM)
    x, y, times = _rows(real_data, 2)
    together = several.run(2, x, y, times)
    assert together.status == "ok" and set(together.test_scores) == {"r2", "rmse", "mae", "pearson"}
    for j in range(3):
        alone = several.run(2, x, y[:, j], times)
        for metric, values in together.test_scores.items():
            assert values[j] == pytest.approx(alone.test_scores[metric], abs=1e-9)


@pytest.mark.parametrize(
    ("target", "extra", "key", "words"),
    [
        (["y", "y"], {}, "data.target", "names a target twice: y"),
        (["y", "x3"], {}, "data", "target 'x3' is also listed in inputs"),
        (["y", "nope"], {}, "data.target", "no variable 'nope'"),
        (["y", "label"], {}, "data.target", "variable 'label' has dtype"),
        ([], {}, "data.target", "at least one"),
        (
            ["y", "z"],
            {
                "search__estimator": "sklearn.svm.SVC",
                "search__params": {"C": [1.0]},
                "search__scoring": ["accuracy"],
            },
            "data.target",
            "need a regressor",
        ),
        (
            ["y", "z"],
            {"search__scoring": ["r2", "neg_max_error"]},
            "search.scoring",
            "'neg_max_error' does not score several targets",
        ),
    ],
)
def test_bad_targets_exit_2_naming_the_key(tmp_path, capsys, target, extra, key, words):
    ds = synthetic(cells=2, steps=60)
    ds["z"] = ds["y"] * 2
    ds["label"] = (ds["y"].dims, np.full(ds["y"].shape, "a", dtype=object))
    ds.to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", data__target=target, **extra)
    outcome = hpctune(capsys, "validate", write_spec(tmp_path, spec))
    assert outcome.code == 2, outcome
    line = outcome.err.strip()
    assert "\n" not in line and line.startswith(f"hpctune: error: {key}: ") and words in line
    assert not (tmp_path / "out").exists()


@pytest.mark.full
def test_a_wrapped_halving_search_keeps_the_resource_and_parameter_names(real_data):
    """GradientBoosting is wrapped; a halving search on its n_estimators still runs, with the
    spec's names in best_params (the resource included, as scikit-learn reports it)."""
    spec = real_data_spec(
        real_data,
        data__target=TARGETS,
        data__train={"from": "2015-01-01"},
        search__estimator="sklearn.ensemble.GradientBoostingRegressor",
        search__params={"max_depth": [2, 3], "learning_rate": [0.1, 0.3]},
        search__method="halving",
        search__halving={"resource": "n_estimators", "min_resources": 10, "max_resources": 30},
    )
    job = load_spec(spec, base_dir="/b")
    search = PartitionSearch(job.search, test_start=TEST_FROM, window=job.data.train)
    x, y, times = _rows(real_data, 1)
    result = search.run(1, x, y, times)
    assert result.status == "ok", result.reason
    assert set(result.best_params) == {"max_depth", "learning_rate", "n_estimators"}
    assert result.halving["n_resources_last"] == 30
    assert len(result.test_scores["r2"]) == 3


def test_init_takes_several_targets_out_of_the_inputs(tmp_path, real_data, capsys):
    out = tmp_path / "job.yaml"
    made = hpctune(capsys, "init", real_data, "--set", "data.target=[sig,slop,curv]", "-o", out)
    assert made.code == 0, made.err
    assert "target sig, slop, curv" in made.out
    job = load_spec(out)
    assert job.data.targets == TARGETS and not set(TARGETS) & set(job.data.inputs)
    refused = hpctune(
        capsys, "init", real_data, "--set", "data.target=[sig,nope]", "-o", tmp_path / "other.yaml"
    )
    assert refused.code == 2 and "data.target: no numeric variable 'nope'" in refused.err
    assert not (tmp_path / "other.yaml").exists()
